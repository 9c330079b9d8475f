import Foundation
import XCTest

/// The outlier fixture: int8 really loses accuracy; parity catches it, --per-layer names the
/// layer, and accuracy-driven mixed precision fixes it at a stated size cost.
final class MixedPrecisionTests: XCTestCase {
    let outlier = "outlier_mlp"

    func testParityCatchesAndAttributesTheLoss() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("o.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture(outlier, "model.onnx"), "-o", out, "--calibration", fixture(outlier, "calibration.npz"),
                                   "--mode", "static"]).code, 0)
        let reports = dir.appendingPathComponent("r")
        let p = try minnow(["parity", out, "--reference", fixture(outlier, "reference.npz"), "--spec", fixture(outlier, "parity.json"),
                            "--source", fixture(outlier, "model.onnx"), "--per-layer", "--report", reports.path])
        XCTAssertEqual(p.code, 1, p.stdout + p.stderr)
        XCTAssertTrue(p.stdout.contains("FAIL: 2 threshold(s) violated: probs top1_agreement, probs accuracy"), p.stdout)
        // The layer reading the outlier activation adds nearly all of the noise.
        let attribution = p.stdout.components(separatedBy: "per-layer attribution")[1].split(separator: "\n")
        XCTAssertTrue(attribution[1].contains("fc1+relu1 [Dense, int8]"), p.stdout)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("parity.json"))) as! [String: Any]
        let layers = json["layers"] as! [[String: Any]]
        XCTAssertEqual(layers.first?["layer"] as? String, "fc1+relu1")
        XCTAssertGreaterThan(layers.first?["share"] as! Double, 0.9)
        let html = try String(contentsOf: reports.appendingPathComponent("parity.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg id=\"layers\""))
        XCTAssertEqual(html.components(separatedBy: "class=\"layer-bar\"").count - 1, layers.count)
    }

    func testMixedPrecisionKeepsTheSensitiveLayerInFloat() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("mixed.minnow").path
        let c = try minnow(["convert", fixture(outlier, "model.onnx"), "-o", out, "--calibration", fixture(outlier, "calibration.npz"),
                            "--reference", fixture(outlier, "reference.npz"), "--spec", fixture(outlier, "parity.json"), "--mode", "static"])
        XCTAssertEqual(c.code, 0, c.stdout + c.stderr)
        XCTAssertTrue(c.stdout.contains("kept in float for accuracy: fc1 (+"), c.stdout)
        XCTAssertTrue(c.stdout.contains("2 Dense in int8"), c.stdout)
        XCTAssertTrue(c.stderr.contains("mixed precision: all int8: fails"), c.stderr)
        let p = try minnow(["parity", out, "--reference", fixture(outlier, "reference.npz"), "--spec", fixture(outlier, "parity.json")])
        XCTAssertEqual(p.code, 0, p.stdout)
        // The default (auto) starts the search from its own choice, which already keeps fc1 out of
        // static int8 by measurement: nothing is left to search.
        let auto = dir.appendingPathComponent("auto.minnow").path
        let a = try minnow(["convert", fixture(outlier, "model.onnx"), "-o", auto, "--calibration", fixture(outlier, "calibration.npz"),
                            "--reference", fixture(outlier, "reference.npz"), "--spec", fixture(outlier, "parity.json")])
        XCTAssertEqual(a.code, 0, a.stdout + a.stderr)
        XCTAssertTrue(a.stderr.contains("mixed precision: auto's choice: passes"), a.stderr)
    }

    func testUnreachableSpecExitsOneAndWritesNothing() throws {
        let dir = try temporaryDirectory()
        let spec = dir.appendingPathComponent("impossible.json")
        try Data(#"{"outputs": {"probs": {"max_abs_error": {"max": 0}}}}"#.utf8).write(to: spec)
        let out = dir.appendingPathComponent("never.minnow").path
        let c = try minnow(["convert", fixture(outlier, "model.onnx"), "-o", out, "--calibration", fixture(outlier, "calibration.npz"),
                            "--reference", fixture(outlier, "reference.npz"), "--spec", spec.path])
        XCTAssertEqual(c.code, 1)
        XCTAssertTrue(c.stderr.contains("error: even the all-float model does not meet the spec"), c.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testEveryFixturePassesItsOwnSpecWithoutMixing() throws {
        for fx in fixtureNames {
            let dir = try temporaryDirectory()
            let c = try minnow(["convert", fixture(fx, "model.onnx"), "-o", dir.appendingPathComponent("m.minnow").path,
                                "--calibration", fixture(fx, "calibration.npz"),
                                "--reference", fixture(fx, "reference.npz"), "--spec", fixture(fx, "parity.json")])
            XCTAssertEqual(c.code, 0, c.stdout + c.stderr)
            XCTAssertTrue(c.stdout.contains("kept in float for accuracy: none"), c.stdout)
        }
    }
}
