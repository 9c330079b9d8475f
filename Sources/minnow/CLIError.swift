import Foundation
import MinnowRuntime

/// A failure reported as one line on stderr with a non-zero exit code (1 unless stated).
struct CLIFailure: Error, CustomStringConvertible {
    let message: String
    let code: Int32
    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }
    var description: String { message }
}

/// Runs `body`; a thrown error becomes `error: <one line>` on stderr and the exit code.
func reportingErrors(_ body: () throws -> Void) {
    do {
        try body()
    } catch let f as CLIFailure {
        FileHandle.standardError.write(Data("error: \(f.message)\n".utf8))
        exit(f.code)
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        exit(1)
    }
}

func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Loads a model for a command; the error names the file once.
func loadModel(_ file: String, code: Int32 = 1) throws -> Model {
    do { return try Model(path: file) } catch {
        let text = "\(error)"
        throw CLIFailure(text.hasPrefix(file) ? text : "\(file): \(text)", code: code)
    }
}
