import ArgumentParser
import Foundation
import MinnowFormat
import MinnowRuntime
import MinnowSigning

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Make an Ed25519 key pair for signing models (minnow sign).")

    @Option(help: "Where to write the private key (created with mode 0600; keep it in your CI's secrets).") var `private`: String
    @Option(help: "Where to write the public key (ship it to the edge boxes).") var `public`: String
    @Flag(help: "Overwrite existing key files.") var force = false

    func run() {
        reportingErrors {
            let fm = FileManager.default
            for path in [`private`, `public`] where fm.fileExists(atPath: path) && !force {
                throw CLIFailure("\(path) exists (use --force to overwrite)")
            }
            let (priv, pub) = ModelSigning.generateKeys()
            guard fm.createFile(atPath: `private`, contents: Data(priv.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CLIFailure("\(`private`): cannot write")
            }
            guard fm.createFile(atPath: `public`, contents: Data(pub.utf8)) else { throw CLIFailure("\(`public`): cannot write") }
            let key = try readPublicKey(`public`)
            print("wrote \(`private`) (private) and \(`public`) (public key \(ModelSigning.fingerprint(key)))")
        }
    }
}

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign", abstract: "Sign a .minnow file in place with an Ed25519 private key (replaces an earlier signature).")

    @Argument(help: "A .minnow file.") var file: String
    @Option(help: "Private key file from minnow keygen.") var key: String

    func run() {
        reportingErrors {
            let keyText = try readKeyFile(key)
            let bytes: AlignedBytes
            do { bytes = try AlignedBytes.read(path: file) } catch { throw CLIFailure("\(file): \(error)") }
            // Only a model that loads is vouched for.
            do { _ = try Model(bytes: bytes) } catch { throw CLIFailure("\(file): \(error)") }
            let signed: [UInt8]
            do { signed = try ModelSigning.sign(bytes.buffer, privateKeyText: keyText, path: key) } catch {
                throw CLIFailure("\(error)")
            }
            // Write beside, then rename: a reader never sees a half-signed file.
            let tmp = file + ".signing"
            guard FileManager.default.createFile(atPath: tmp, contents: Data(signed)) else { throw CLIFailure("\(tmp): cannot write") }
            guard rename(tmp, file) == 0 else { throw CLIFailure("\(file): cannot replace (errno \(errno))") }
            let signer = signed.withUnsafeBytes { ModelSigning.signer($0) } ?? "?"
            print("\(file): signed by key \(signer)")
        }
    }
}
