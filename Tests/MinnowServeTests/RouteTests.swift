@testable import MinnowServe
import XCTest

final class RouteTests: XCTestCase {
    func testTFServingRoutes() throws {
        XCTAssertEqual(try Route.match(method: "GET", path: "/v1/models/ctr"), .tfStatus(model: "ctr", version: nil))
        XCTAssertEqual(try Route.match(method: "GET", path: "/v1/models/ctr/versions/3"), .tfStatus(model: "ctr", version: 3))
        XCTAssertEqual(try Route.match(method: "GET", path: "/v1/models/ctr/metadata"), .tfMetadata(model: "ctr", version: nil))
        XCTAssertEqual(try Route.match(method: "GET", path: "/v1/models/ctr/versions/3/metadata"), .tfMetadata(model: "ctr", version: 3))
        XCTAssertEqual(try Route.match(method: "POST", path: "/v1/models/ctr:predict"), .tfPredict(model: "ctr", version: nil))
        XCTAssertEqual(try Route.match(method: "POST", path: "/v1/models/ctr/versions/12:predict?x=1"), .tfPredict(model: "ctr", version: 12))
    }

    func testKServeRoutes() throws {
        XCTAssertEqual(try Route.match(method: "GET", path: "/v2"), .v2Server)
        XCTAssertEqual(try Route.match(method: "GET", path: "/v2/health/live"), .v2Live)
        XCTAssertEqual(try Route.match(method: "GET", path: "/v2/health/ready"), .v2Ready)
        XCTAssertEqual(try Route.match(method: "GET", path: "/v2/models/ctr"), .v2Model(model: "ctr", version: nil))
        XCTAssertEqual(try Route.match(method: "GET", path: "/v2/models/ctr/versions/2/ready"), .v2ModelReady(model: "ctr", version: 2))
        XCTAssertEqual(try Route.match(method: "POST", path: "/v2/models/ctr/infer"), .v2Infer(model: "ctr", version: nil))
        XCTAssertEqual(try Route.match(method: "POST", path: "/v2/models/ctr/versions/7/infer"), .v2Infer(model: "ctr", version: 7))
        XCTAssertEqual(try Route.match(method: "GET", path: "/metrics"), .metrics)
        XCTAssertEqual(try Route.match(method: "HEAD", path: "/v2/health/ready"), .v2Ready)
    }

    func testUnknownRoutesVerbsAndMethodsAreNamed() {
        let cases: [(String, String, Int, String)] = [
            ("GET", "/", 404, "no route"),
            ("POST", "/v1/models/ctr:classify", 404, "':classify' is not supported"),
            ("GET", "/v1/models/ctr/versions/x", 404, "version 'x' is not a number"),
            ("GET", "/v2/models/ctr/versions/-1/ready", 404, "not a number"),
            ("GET", "/v2/models/ctr/explain", 404, "no KServe v2 route"),
            ("GET", "/v1/models/ctr:predict", 405, "use POST"),
            ("POST", "/v1/models/ctr", 405, "use GET"),
            ("DELETE", "/v2/models/ctr/infer", 405, "use POST"),
        ]
        for (method, path, status, fragment) in cases {
            XCTAssertThrowsError(try Route.match(method: method, path: path), path) { e in
                let e = e as! ServeError
                XCTAssertEqual(e.status, status, path)
                XCTAssertTrue(e.message.contains(fragment), "\(path): \(e.message)")
            }
        }
    }

    func testVersionPolicies() throws {
        XCTAssertEqual(try VersionPolicy(parsing: "latest:1").select(from: [1, 5, 3]), [5])
        XCTAssertEqual(try VersionPolicy(parsing: "latest:2").select(from: [1, 5, 3]), [5, 3])
        XCTAssertEqual(try VersionPolicy(parsing: "latest").select(from: [1, 5, 3]), [5])
        XCTAssertEqual(try VersionPolicy(parsing: "all").select(from: [1, 5, 3]), [1, 3, 5])
        XCTAssertEqual(try VersionPolicy(parsing: "specific:1, 3,9").select(from: [1, 5, 3]), [1, 3])
        for bad in ["latest:0", "latest:x", "specific:", "specific:a", "newest", "all:2", ""] {
            XCTAssertThrowsError(try VersionPolicy(parsing: bad), bad)
        }
    }
}
