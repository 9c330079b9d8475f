import Crypto
import Foundation
import MinnowFormat

/// Why a model's signature was not accepted.
public enum SignatureError: Error, Equatable, CustomStringConvertible, Sendable {
    case unsigned
    case wrongKey(expected: String, found: String)
    case invalid(signer: String)
    case badKey(path: String, reason: String)

    public var description: String {
        switch self {
        case .unsigned: "the file is not signed (minnow sign FILE --key KEY)"
        case let .wrongKey(expected, found): "signed by key \(found), expected key \(expected)"
        case .invalid(let signer): "signature by key \(signer) does not match the file's contents (tampered or damaged)"
        case let .badKey(path, reason): "\(path): \(reason)"
        }
    }
}

/// Ed25519 signatures over a whole `.minnow` file, stored with it as a 128-byte trailer after the
/// last segment (the loader ignores bytes past the segments, so a signed file loads anywhere):
///
///     "MNWSIG01" | signed length (UInt64 LE) | signer public key (32) | signature (64) | zeros (16)
///
/// The signature covers the file's first `signed length` bytes followed by the trailer's first 48
/// bytes (magic, length, key), so neither the contents nor the claimed signer can be changed.
public enum ModelSigning {
    static let magic = Array("MNWSIG01".utf8)
    public static let trailerSize = 128
    static let privateHeader = "minnow-ed25519-private-key"
    static let publicHeader = "minnow-ed25519-public-key"

    /// A new key pair as the text stored in key files.
    public static func generateKeys() -> (privateKey: String, publicKey: String) {
        let key = Curve25519.Signing.PrivateKey()
        return ("\(privateHeader) \(key.rawRepresentation.base64EncodedString())\n",
                "\(publicHeader) \(key.publicKey.rawRepresentation.base64EncodedString())\n")
    }

    /// Short identifier of a public key: the first 8 bytes of its SHA-256, in hex.
    public static func fingerprint(_ rawPublicKey: some DataProtocol) -> String {
        SHA256.hash(data: Array(rawPublicKey)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func decodeKey(_ text: String, header: String, path: String) throws(SignatureError) -> Data {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" })
        guard parts.count == 2, parts[0] == header, let raw = Data(base64Encoded: String(parts[1])), raw.count == 32 else {
            throw .badKey(path: path, reason: "not a \(header) file (expected '\(header) <base64 of 32 bytes>')")
        }
        return raw
    }

    public static func publicKey(text: String, path: String = "public key") throws(SignatureError) -> Data {
        try decodeKey(text, header: publicHeader, path: path)
    }

    /// The file's bytes without any existing signature trailer.
    public static func unsignedContent(_ file: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let t = trailer(file) else { return file }
        return UnsafeRawBufferPointer(rebasing: file[0..<t.signedLength])
    }

    /// Signs `file` (replacing an existing signature) and returns the signed bytes.
    public static func sign(_ file: UnsafeRawBufferPointer, privateKeyText: String, path: String = "private key")
        throws(SignatureError) -> [UInt8] {
        let raw = try decodeKey(privateKeyText, header: privateHeader, path: path)
        let key: Curve25519.Signing.PrivateKey
        do { key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw) } catch {
            throw .badKey(path: path, reason: "invalid Ed25519 private key")
        }
        let content = unsignedContent(file)
        var header = magic
        withUnsafeBytes(of: UInt64(content.count).littleEndian) { header += $0 }
        header += key.publicKey.rawRepresentation
        let signature: Data
        do { signature = try key.signature(for: Array(content) + header) } catch {
            throw .badKey(path: path, reason: "signing failed: \(error)")
        }
        return Array(content) + header + signature + [UInt8](repeating: 0, count: 16)
    }

    struct Trailer {
        let signedLength: Int
        let publicKey: [UInt8]
        let signature: [UInt8]
        let header: [UInt8]
    }

    static func trailer(_ file: UnsafeRawBufferPointer) -> Trailer? {
        guard file.count >= trailerSize else { return nil }
        let t = Array(file[(file.count - trailerSize)...])
        guard Array(t[0..<8]) == magic else { return nil }
        let length = t[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        // Only a trailer directly after the content it signs is a trailer.
        guard length == UInt64(file.count - trailerSize) else { return nil }
        return Trailer(signedLength: Int(length), publicKey: Array(t[16..<48]), signature: Array(t[48..<112]), header: Array(t[0..<48]))
    }

    /// Fingerprint of the key that signed `file`, or nil when it is unsigned (not verified).
    public static func signer(_ file: UnsafeRawBufferPointer) -> String? { trailer(file).map { fingerprint($0.publicKey) } }

    /// Checks that `file` carries a valid signature by `publicKey` (raw 32 bytes).
    public static func verify(_ file: UnsafeRawBufferPointer, publicKey: Data) throws(SignatureError) {
        guard let t = trailer(file) else { throw .unsigned }
        guard t.publicKey == Array(publicKey) else {
            throw .wrongKey(expected: fingerprint(publicKey), found: fingerprint(t.publicKey))
        }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey),
              key.isValidSignature(t.signature, for: Array(file[0..<t.signedLength]) + t.header) else {
            throw .invalid(signer: fingerprint(t.publicKey))
        }
    }
}
