import Foundation
import MinnowFormat
import XCTest

/// Golden samples: bundled at conversion, rerun on the box by `minnow verify --self-test`.
final class GoldenSampleTests: XCTestCase {
    func bundled(_ name: String, _ dir: URL, count: Int = 8) throws -> String {
        let out = dir.appendingPathComponent("\(name).minnow").path
        // Static mode: its integer-only graphs are the ones checked bit-exactly.
        let c = try minnow(["convert", fixture(name, "model.onnx"), "-o", out, "--calibration", fixture(name, "calibration.npz"), "--mode", "static",
                            "--bundle-reference", fixture(name, "reference.npz"), "--bundle-count", String(count)])
        XCTAssertEqual(c.code, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("golden samples: \(count) bundled"), c.stdout)
        return out
    }

    func testSelfTestPassesAndIsExactOnIntegerPaths() throws {
        let dir = try temporaryDirectory()
        let reg = try bundled("regression_mlp", dir)
        let v = try minnow(["verify", reg, "--self-test"])
        XCTAssertEqual(v.code, 0, v.stdout + v.stderr)
        XCTAssertTrue(v.stdout.contains("y: max difference 0.0 (bit-exact required)"), v.stdout)
        XCTAssertTrue(v.stdout.contains("self-test: 8 golden samples match"), v.stdout)
        let digits = try bundled("digits_mlp", dir, count: 5)
        let d = try minnow(["verify", digits, "--self-test"])
        XCTAssertEqual(d.code, 0, d.stdout + d.stderr)
        XCTAssertTrue(d.stdout.contains("tolerance"), d.stdout)  // softmax runs in float
    }

    func testADifferentResultFailsTheSelfTest() throws {
        let dir = try temporaryDirectory()
        let path = try bundled("regression_mlp", dir)
        // Rewrite the file with one golden output nudged, as if another machine computed it.
        let file = try ModelFile(path: path)
        var d = file.description
        var segments = try d.buffers.indices.map { SegmentPayload(bytes: try file.segment($0 + 1).elements(as: UInt8.self)) }
        let out = Int(d.golden!.outputs[0]) - 1
        var values = segments[out].bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        values[3] += 0.25
        segments[out] = SegmentPayload(bytes: values.withUnsafeBytes { Array($0) })
        d.golden!.tolerance = 0
        let tampered = dir.appendingPathComponent("tampered.minnow")
        try Data(ModelFileWriter.write(d, segments: segments)).write(to: tampered)
        let v = try minnow(["verify", tampered.path, "--self-test"])
        XCTAssertEqual(v.code, 1)
        XCTAssertTrue(v.stdout.contains("y: max difference 0.25"), v.stdout)
        XCTAssertTrue(v.stderr.contains("self-test failed"), v.stderr)
    }

    func testVerifyWithoutGoldenSamples() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("plain.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", out, "--mode", "float"]).code, 0)
        let v = try minnow(["verify", out])
        XCTAssertEqual(v.code, 0)
        XCTAssertTrue(v.stdout.contains("verified (format 1.8"), v.stdout)
        let s = try minnow(["verify", out, "--self-test"])
        XCTAssertEqual(s.code, 1)
        XCTAssertTrue(s.stderr.contains("no golden samples bundled"), s.stderr)
    }
}
