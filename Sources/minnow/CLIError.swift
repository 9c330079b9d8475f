import Foundation
import MinnowFormat
import MinnowRuntime
import MinnowSigning

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

/// Loads a model for a command; the error names the file once. With `requireSignature` (a public
/// key file), the file's signature is checked before any of its contents are parsed.
func loadModel(_ file: String, code: Int32 = 1, requireSignature: String? = nil, kernels: String? = nil,
               attention: AttentionPrecision? = nil) throws -> Model {
    func fail(_ error: Error) -> CLIFailure {
        let text = "\(error)"
        return CLIFailure(text.hasPrefix(file) ? text : "\(file): \(text)", code: code)
    }
    let bytes: AlignedBytes
    do { bytes = try AlignedBytes.read(path: file) } catch { throw fail(error) }
    if let keyPath = requireSignature {
        let key = try readPublicKey(keyPath)
        do { try ModelSigning.verify(bytes.buffer, publicKey: key) } catch { throw fail(error) }
    }
    do { return try Model(bytes: bytes, kernels: kernels, attention: attention) } catch { throw fail(error) }
}

func readKeyFile(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path), data.count < 4096,
          let text = String(data: data, encoding: .utf8) else { throw CLIFailure("\(path): cannot read the key file") }
    return text
}

func readPublicKey(_ path: String) throws -> Data {
    do { return try ModelSigning.publicKey(text: try readKeyFile(path), path: path) } catch let e as SignatureError {
        throw CLIFailure(e.description)
    }
}
