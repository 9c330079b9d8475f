import Foundation
import XCTest

/// `minnow parity --report DIR`: the three files a CI job publishes, checked for content.
final class ParityReportTests: XCTestCase {
    func convertedCTR(_ dir: URL) throws -> String {
        let out = dir.appendingPathComponent("ctr.minnow").path
        let c = try minnow(["convert", fixture("ctr_mlp", "model.onnx"), "-o", out, "--calibration", fixture("ctr_mlp", "calibration.npz")])
        XCTAssertEqual(c.code, 0, c.stderr)
        return out
    }

    func testPassingReportFiles() throws {
        let dir = try temporaryDirectory()
        let model = try convertedCTR(dir)
        let reports = dir.appendingPathComponent("reports")
        let p = try minnow(["parity", model, "--reference", fixture("ctr_mlp", "reference.npz"), "--spec", fixture("ctr_mlp", "parity.json"),
                            "--report", reports.path])
        XCTAssertEqual(p.code, 0, p.stdout + p.stderr)

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("parity.json"))) as! [String: Any]
        XCTAssertEqual(json["verdict"] as? String, "pass")
        let outputs = json["outputs"] as! [String: [String: Any]]
        for metric in ["max_abs_error", "mean_abs_error", "rmse", "cosine_mean", "cosine_min", "snr_db"] {
            XCTAssertNotNil(outputs["ctr"]?[metric], metric)
        }
        let task = json["task"] as! [String: Any]
        XCTAssertEqual(task["name"] as? String, "binary")
        let trainerAUC = (task["trainer"] as! [String: Any])["roc_auc"] as! Double
        let oursAUC = (task["ours"] as! [String: Any])["roc_auc"] as! Double
        XCTAssertEqual(trainerAUC, 0.9927, accuracy: 0.001)
        XCTAssertLessThanOrEqual(trainerAUC - oursAUC, 0.005)
        XCTAssertEqual((json["violations"] as! [Any]).count, 0)
        XCTAssertEqual((json["checks"] as! [Any]).count, 2)

        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("tests=\"2\" failures=\"0\""), junit)
        XCTAssertEqual(junit.components(separatedBy: "<testcase ").count - 1, 2)
        XCTAssertTrue(junit.contains("classname=\"parity.ctr\" name=\"roc_auc (labels) drop &lt;= 0.0050\""), junit)

        let html = try String(contentsOf: reports.appendingPathComponent("parity.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<div class=\"verdict pass\" id=\"verdict\">PASS"), "verdict on top")
        for id in ["id=\"metrics\"", "id=\"hist-ctr\"", "id=\"scatter-ctr\"", "id=\"roc-ctr\"", "class=\"roc-trainer\"", "class=\"roc-ours\""] {
            XCTAssertTrue(html.contains(id), "missing \(id)")
        }
        // Self-contained: no scripts, no external resources.
        for banned in ["<script", "https://", "src=", "<link"] {
            XCTAssertFalse(html.contains(banned), "html contains \(banned)")
        }
        XCTAssertFalse(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        // The scatter has one point per value (171 samples).
        let scatter = html.components(separatedBy: "id=\"scatter-ctr\"")[1].components(separatedBy: "</svg>")[0]
        XCTAssertEqual(scatter.components(separatedBy: "<circle").count - 1, 171)
    }

    func testTooStrictSpecFailsWithNamedRows() throws {
        let dir = try temporaryDirectory()
        let model = try convertedCTR(dir)
        let spec = dir.appendingPathComponent("strict.json")
        try Data(#"{"outputs": {"ctr": {"max_abs_error": {"max": 1e-7}, "cosine_min": {"min": 0.5}}}, "labels": {"roc_auc": {"max_drop": 0}}}"#.utf8).write(to: spec)
        let reports = dir.appendingPathComponent("r")
        let p = try minnow(["parity", model, "--reference", fixture("ctr_mlp", "reference.npz"), "--spec", spec.path, "--report", reports.path])
        XCTAssertEqual(p.code, 1, p.stdout + p.stderr)
        XCTAssertTrue(p.stdout.contains("FAIL: 2 threshold(s) violated: ctr max_abs_error, ctr roc_auc") ||
                      p.stdout.contains("FAIL: 1 threshold(s) violated: ctr max_abs_error"), p.stdout)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("parity.json"))) as! [String: Any]
        XCTAssertEqual(json["verdict"] as? String, "fail")
        let violations = json["violations"] as! [[String: Any]]
        XCTAssertTrue(violations.contains { $0["metric"] as? String == "max_abs_error" && ($0["threshold"] as? [String: Double])?["max"] == 1e-7 })
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("<failure message=\"ctr max_abs_error = "), junit)
        let html = try String(contentsOf: reports.appendingPathComponent("parity.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<div class=\"verdict fail\" id=\"verdict\">FAIL"))
        XCTAssertTrue(html.contains("<tr class=\"bad\"><td>ctr</td><td>max_abs_error</td>"))
    }

    func testDefaultsAreStatedWithoutASpec() throws {
        let dir = try temporaryDirectory()
        let model = try convertedCTR(dir)
        let p = try minnow(["parity", model, "--reference", fixture("ctr_mlp", "reference.npz")])
        XCTAssertEqual(p.code, 0, p.stdout + p.stderr)
        XCTAssertTrue(p.stdout.contains("task: binary (inferred from output shape and labels)"), p.stdout)
        XCTAssertTrue(p.stdout.contains("thresholds: defaults for binary (roc_auc drop <= 0.0100)"), p.stdout)
    }
}
