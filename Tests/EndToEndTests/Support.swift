import Foundation
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fixtureNames = ["digits_mlp", "ctr_mlp", "regression_mlp", "cnn_digits"]

func fixture(_ name: String, _ file: String) -> String { repoRoot.appendingPathComponent("fixtures/\(name)/\(file)").path }

/// The `minnow` executable built beside this test bundle (whatever the build path: the
/// sanitizer runs build into .build/asan and .build/tsan).
var minnowBinary: String {
    let testRunner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
    let beside = testRunner.deletingLastPathComponent().appendingPathComponent("minnow").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    #if DEBUG
    let config = "debug"
    #else
    let config = "release"
    #endif
    return repoRoot.appendingPathComponent(".build/\(config)/minnow").path
}

struct CLIResult {
    var code: Int32
    var stdout: String
    var stderr: String
}

/// Runs the CLI as a user would, capturing both streams; `environment` adds to this process's.
func minnow(_ args: [String], environment: [String: String] = [:]) throws -> CLIResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: minnowBinary)
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CLIResult(code: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
