import Foundation
import Logging
import MinnowConvert
import MinnowRuntime
@testable import MinnowServe

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
func fixture(_ name: String, _ file: String) -> String { repoRoot.appendingPathComponent("fixtures/\(name)/\(file)").path }

/// Converted fixture bytes, made once per test process.
enum Models {
    static func convert(_ name: String, maxBatch: Int = 64) -> [UInt8] {
        var o = ConvertOptions()
        o.maxBatch = maxBatch
        o.calibrationPath = fixture(name, "calibration.npz")
        return try! Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o).bytes
    }
    nonisolated(unsafe) static let ctr = convert("ctr_mlp")
    nonisolated(unsafe) static let digits = convert("digits_mlp", maxBatch: 16)
}

/// A temporary model repository.
final class TempRepository {
    let root: String

    init() {
        root = NSTemporaryDirectory() + "minnow-serve-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ model: String, _ version: Int) -> String { "\(root)/\(model)/\(version)/model.minnow" }

    /// Writes a version file; `age` back-dates its modification time (seconds).
    func write(_ model: String, _ version: Int, _ bytes: [UInt8], age: Double = 60) {
        let dir = "\(root)/\(model)/\(version)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path(model, version), contents: Data(bytes))
        if age > 0 {
            try! FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -age)],
                                                   ofItemAtPath: path(model, version))
        }
    }

    func remove(_ model: String, _ version: Int) {
        try! FileManager.default.removeItem(atPath: "\(root)/\(model)/\(version)")
    }
}

func quietLogger() -> Logger {
    var l = Logger(label: "test")
    l.logLevel = .critical
    return l
}

func makeManager(_ repo: TempRepository, policy: VersionPolicy = .latest(1), workers: Int = 1,
                 settle: Double = 0, execution: ExecutionOptions? = nil) -> ModelManager {
    var o = ModelManager.Options()
    o.policy = policy
    o.settleSeconds = settle
    o.execution = execution ?? ExecutionOptions(workers: workers)
    return ModelManager(repository: ModelRepository(root: repo.root), options: o, metrics: ServeMetrics(), logger: quietLogger())
}

/// The same bytes with one byte flipped inside the weight segments (near the end of the file).
func corrupted(_ bytes: [UInt8]) -> [UInt8] {
    var b = bytes
    b[b.count - 100] ^= 0x5A
    return b
}

extension Array where Element == UInt8 {
    var string: String { String(decoding: self, as: UTF8.self) }
}
