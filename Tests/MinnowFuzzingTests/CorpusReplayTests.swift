import Foundation
import MinnowFuzzing
import XCTest

/// Every committed fuzz input (seeds, and inputs that once found a bug) runs through its target
/// on every test run, so a fixed crash stays fixed without a fuzzing build. Seeds are accepted;
/// files named `reject-*` (and `crash-*`, inputs that once crashed) must be refused cleanly.
final class CorpusReplayTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/corpus")

    func replay(_ target: FuzzTarget) throws {
        let dir = Self.corpus.appendingPathComponent(target.rawValue)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertGreaterThan(files.count, 3, "fuzz/corpus/\(target.rawValue) holds its seeds")
        for name in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            let accepted = data.withUnsafeBytes { target.run($0) }
            let shouldAccept = !name.hasPrefix("reject-") && !name.hasPrefix("crash-")
            if shouldAccept { XCTAssertTrue(accepted, "\(target.rawValue)/\(name) was refused") }
            if name.hasPrefix("reject-") { XCTAssertFalse(accepted, "\(target.rawValue)/\(name) was accepted") }
        }
    }

    func testModelCorpus() throws { try replay(.model) }
    func testNumpyCorpus() throws { try replay(.npz) }
    func testONNXCorpus() throws { try replay(.onnx) }
    func testHTTPCorpus() throws { try replay(.http) }
}
