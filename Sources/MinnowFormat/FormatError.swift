/// Why a `.minnow` file was refused. Every case names what was wrong and where.
public enum FormatError: Error, Equatable, CustomStringConvertible, Sendable {
    case io(path: String, reason: String)
    case tooSmall(bytes: Int)
    case badIdentifier(found: String)
    case verifierRejected
    case unsupportedVersion(found: String, supported: String)
    case malformed(String)
    case segmentOutOfBounds(buffer: Int, offset: UInt64, size: UInt64, fileSize: Int)
    case segmentTooLarge(buffer: Int, size: UInt64, limit: UInt64)
    case checksumMismatch(buffer: Int, expected: UInt64, found: UInt64)
    case decompression(buffer: Int, reason: String)
    case outOfMemory(buffer: Int, bytes: UInt64)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .tooSmall(bytes): return "file is \(bytes) bytes, too small to be a .minnow model"
        case let .badIdentifier(found): return "not a .minnow file: identifier is \"\(found)\", expected \"MNW1\""
        case .verifierRejected: return "the FlatBuffers verifier rejected the model structure (truncated or corrupt file)"
        case let .unsupportedVersion(found, supported):
            return "format version \(found) is not supported (this runtime reads \(supported))"
        case let .malformed(what): return "malformed model: \(what)"
        case let .segmentOutOfBounds(buffer, offset, size, fileSize):
            return "buffer \(buffer): segment [\(offset), +\(size)) lies outside the \(fileSize)-byte file"
        case let .segmentTooLarge(buffer, size, limit):
            return "buffer \(buffer): declared size \(size) exceeds the limit of \(limit) bytes"
        case let .checksumMismatch(buffer, expected, found):
            return "buffer \(buffer): checksum mismatch (expected \(hex(expected)), found \(hex(found)))"
        case let .decompression(buffer, reason): return "buffer \(buffer): zstd decompression failed: \(reason)"
        case let .outOfMemory(buffer, bytes): return "buffer \(buffer): cannot allocate \(bytes) bytes"
        }
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}
