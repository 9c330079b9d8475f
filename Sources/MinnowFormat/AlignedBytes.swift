// Owned, 64-byte-aligned raw memory: the home of model files, decompressed segments and arenas.
// FlatBuffers alignment is relative to the buffer start, and Foundation's Data only promises 16.

/// A fixed-size block of 64-byte-aligned bytes, freed when the last reference goes.
public final class AlignedBytes: @unchecked Sendable {
    public static let alignment = 64
    public let count: Int
    public let pointer: UnsafeMutableRawPointer

    /// Zero-filled memory of `count` bytes, or nil when the allocation fails (never a trap:
    /// sizes may come from untrusted files).
    public init?(zeroedCount count: Int) {
        guard let p = AlignedBytes.allocate(count) else { return nil }
        memset(p, 0, max(count, 1))
        self.count = count
        pointer = p
    }

    /// Memory the caller will overwrite completely (e.g. decompression), or nil on failure.
    public init?(uninitializedCount count: Int) {
        guard let p = AlignedBytes.allocate(count) else { return nil }
        self.count = count
        pointer = p
    }

    /// Zero-filled memory for sizes the program chose itself; traps if memory is exhausted.
    public convenience init(count: Int) {
        self.init(zeroedCount: count)!
    }

    private static func allocate(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0 else { return nil }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, alignment, max(count, 1)) == 0 else { return nil }
        return p
    }

    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 { pointer.copyMemory(from: base, byteCount: bytes.count) }
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress, src.count > 0 { pointer.copyMemory(from: base, byteCount: src.count) }
        }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }
    public var mutableBuffer: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: count) }

    /// A copy of the contents as an array of `T` (count / stride elements).
    public func elements<T>(as: T.Type) -> [T] {
        Array(UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: T.self),
                                  count: count / MemoryLayout<T>.stride))
    }

    deinit { free(pointer) }
}

public extension AlignedBytes {
    /// Reads a whole file into aligned memory, refusing files larger than `limit` bytes.
    static func read(path: String, limit: Int = 1 << 40) throws(FormatError) -> AlignedBytes {
        guard let file = fopen(path, "rb") else { throw .io(path: path, reason: "cannot open") }
        defer { fclose(file) }
        guard fseeko(file, 0, SEEK_END) == 0 else { throw .io(path: path, reason: "cannot seek") }
        let size = Int(ftello(file))
        guard size >= 0 else { throw .io(path: path, reason: "cannot tell size (is it a directory?)") }
        guard size <= limit else { throw .io(path: path, reason: "file is \(size) bytes, above the limit of \(limit)") }
        guard fseeko(file, 0, SEEK_SET) == 0 else { throw .io(path: path, reason: "cannot seek") }
        let bytes = AlignedBytes(count: size)
        if size > 0 {
            let got = fread(bytes.pointer, 1, size, file)
            guard got == size else { throw .io(path: path, reason: "read \(got) of \(size) bytes") }
        }
        return bytes
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
