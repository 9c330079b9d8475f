import Foundation
@testable import MinnowServe
import XCTest

final class ModelManagerTests: XCTestCase {
    func states(_ m: ModelManager, _ name: String) -> [String] {
        (m.status(name) ?? []).map { "\($0.version):\($0.state.rawValue)" }
    }

    func testServesTheHighestVersionAndSwapsWhenANewOneArrives() async throws {
        let repo = TempRepository()
        repo.write("ctr", 1, Models.ctr)
        let m = makeManager(repo)
        m.poll(initial: true)
        XCTAssertEqual(try m.lookup("ctr", version: nil).version, 1)
        XCTAssertTrue(m.isReady)

        repo.write("ctr", 2, Models.ctr)
        m.poll()  // first sight: waits for the file to settle
        XCTAssertEqual(states(m, "ctr"), ["1:AVAILABLE", "2:START"])
        m.poll()
        XCTAssertEqual(try m.lookup("ctr", version: nil).version, 2)
        XCTAssertEqual(states(m, "ctr"), ["2:AVAILABLE"])
        XCTAssertThrowsError(try m.lookup("ctr", version: 1)) { e in
            XCTAssertEqual((e as! ServeError).status, 404)
            XCTAssertTrue("\(e)".contains("version 1 is not served (served: 2)"), "\(e)")
        }
        await m.shutdown()
    }

    func testACorruptVersionNeverReplacesTheOneInServiceAndIsRetriedOnlyWhenItChanges() async throws {
        let repo = TempRepository()
        repo.write("ctr", 1, Models.ctr)
        let m = makeManager(repo)
        m.poll(initial: true)
        let v1 = try m.lookup("ctr", version: nil)

        repo.write("ctr", 2, corrupted(Models.ctr))
        m.poll(); m.poll()
        XCTAssertTrue(try m.lookup("ctr", version: nil) === v1, "version 1 keeps serving")
        let failed = m.status("ctr")!.first { $0.version == 2 }!
        XCTAssertEqual(failed.state, .end)
        XCTAssertTrue(failed.error!.contains("model.minnow"), failed.error!)
        let loadsBefore = m.metrics.exposition().string.components(separatedBy: "result=\"failure\"").count
        m.poll(); m.poll()
        let loadsAfter = m.metrics.exposition().string.components(separatedBy: "result=\"failure\"").count
        XCTAssertEqual(loadsBefore, loadsAfter, "an unchanged bad file is not loaded again")
        XCTAssertTrue(m.metrics.exposition().string.contains(#"minnow_model_load_total{model="ctr",version="2",result="failure"} 1"#))

        // Fixed in place: the new bytes are tried and served.
        repo.write("ctr", 2, Models.ctr)
        m.poll(); m.poll()
        XCTAssertEqual(try m.lookup("ctr", version: nil).version, 2)
        XCTAssertEqual(states(m, "ctr"), ["2:AVAILABLE"])
        await m.shutdown()
    }

    func testAFileStillBeingWrittenIsNotLoaded() async throws {
        let repo = TempRepository()
        repo.write("ctr", 1, Models.ctr)
        let m = makeManager(repo, settle: 30)
        m.poll(initial: true)
        // Half a file, just written: unchanged across scans but too fresh to trust.
        repo.write("ctr", 2, Array(Models.ctr.prefix(Models.ctr.count / 2)), age: 0)
        m.poll(); m.poll()
        XCTAssertEqual(states(m, "ctr"), ["1:AVAILABLE", "2:START"], "not attempted, not failed")
        // Completed and old enough.
        repo.write("ctr", 2, Models.ctr, age: 60)
        m.poll(); m.poll()
        XCTAssertEqual(states(m, "ctr"), ["2:AVAILABLE"])
        await m.shutdown()
    }

    func testVersionPoliciesAndRemovals() async throws {
        let repo = TempRepository()
        for v in [1, 2, 3] { repo.write("ctr", v, Models.ctr) }
        let m = makeManager(repo, policy: .latest(2))
        m.poll(initial: true)
        XCTAssertEqual(states(m, "ctr"), ["2:AVAILABLE", "3:AVAILABLE"])
        XCTAssertEqual(try m.lookup("ctr", version: 2).version, 2)

        // Removing the newest version brings the next one in.
        repo.remove("ctr", 3)
        m.poll()
        XCTAssertEqual(states(m, "ctr"), ["1:AVAILABLE", "2:AVAILABLE"])

        let all = makeManager(repo, policy: .all)
        all.poll(initial: true)
        XCTAssertEqual(states(all, "ctr"), ["1:AVAILABLE", "2:AVAILABLE"])
        let specific = makeManager(repo, policy: .specific([1]))
        specific.poll(initial: true)
        XCTAssertEqual(try specific.lookup("ctr", version: nil).version, 1)

        // A whole model directory removed: the model goes away.
        try FileManager.default.removeItem(atPath: repo.root + "/ctr")
        m.poll()
        XCTAssertNil(m.status("ctr"))
        XCTAssertThrowsError(try m.lookup("ctr", version: nil)) { e in XCTAssertEqual((e as! ServeError).status, 404) }
        for x in [m, all, specific] { await x.shutdown() }
    }

    func testAnUnlistableRootKeepsEverythingServing() async throws {
        let repo = TempRepository()
        repo.write("ctr", 1, Models.ctr)
        let m = makeManager(repo)
        m.poll(initial: true)
        let moved = repo.root + "-moved"
        try FileManager.default.moveItem(atPath: repo.root, toPath: moved)
        defer { try? FileManager.default.moveItem(atPath: moved, toPath: repo.root) }
        m.poll()
        XCTAssertEqual(try m.lookup("ctr", version: nil).version, 1)
        XCTAssertTrue(m.metrics.exposition().string.contains("minnow_repository_scan_errors_total 1"))
        await m.shutdown()
    }

    func testOnlyBadVersionsMeansUnavailableWithTheReason() async throws {
        let repo = TempRepository()
        repo.write("ctr", 4, corrupted(Models.ctr))
        let m = makeManager(repo)
        m.poll(initial: true)
        XCTAssertFalse(m.isReady)
        XCTAssertThrowsError(try m.lookup("ctr", version: nil)) { e in
            let e = e as! ServeError
            XCTAssertEqual(e.status, 503)
            XCTAssertTrue(e.message.contains("no version in service; version 4 failed to load"), e.message)
        }
        await m.shutdown()
    }
}
