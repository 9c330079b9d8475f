import Foundation

// What the fuzzers (fuzz/*, libFuzzer) and the corpus replay test (MinnowFuzzingTests) run: one
// entry per untrusted-input surface. Each takes arbitrary bytes and must return normally: a
// typed error is a pass, a crash, sanitizer report or hang is a finding. Inputs that once found
// a bug are committed to fuzz/corpus/<target>/ and replayed by every test run.

public enum FuzzTarget: String, CaseIterable, Sendable {
    case model, npz, onnx, http

    /// Runs one input; true when it was accepted (model loaded and ran, arrays parsed, ONNX
    /// converted, HTTP 200), false when refused with an error.
    @discardableResult
    public func run(_ data: UnsafeRawBufferPointer) -> Bool {
        switch self {
        case .model: ModelLoaderTarget.run(data)
        case .npz: NumpyTarget.run(data)
        case .onnx: ONNXTarget.run(data)
        case .http: HTTPTarget.run(data)
        }
    }
}

/// The repository checkout this was built from (fixtures for the HTTP target's models).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A private directory for targets whose readers take a path, removed at exit by the OS's tmp
/// cleaning (one per process; files in it are overwritten per input).
let scratchDirectory: String = {
    let dir = NSTemporaryDirectory() + "minnow-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

func writeScratch(_ name: String, _ data: UnsafeRawBufferPointer) -> String {
    let path = scratchDirectory + "/" + name
    FileManager.default.createFile(atPath: path, contents: Data(data))
    return path
}
