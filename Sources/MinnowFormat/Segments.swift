import CMinnowFormat
import CZstd

// Weight segments: byte shuffle, zstd, XXH64 checksums.

public enum Segments {
    /// Segment checksums: XXH64 with seed 0 over the stored (possibly compressed) bytes.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        minnow_xxh64(bytes.baseAddress, bytes.count, 0)
    }

    /// Groups byte k of every `width`-byte element together: fp32 weights compress ~10% better.
    public static func shuffle(_ src: [UInt8], width: Int) -> [UInt8] {
        guard width > 1 else { return src }
        let n = src.count / width
        var out = [UInt8](repeating: 0, count: src.count)
        for e in 0..<n { for b in 0..<width { out[b * n + e] = src[e * width + b] } }
        for i in (n * width)..<src.count { out[i] = src[i] }
        return out
    }

    /// Inverse of `shuffle`, from `src` into `dst` (same size).
    static func unshuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, width: Int) {
        let n = src.count / width
        for e in 0..<n { for b in 0..<width { dst[e * width + b] = src[b * n + e] } }
        for i in (n * width)..<src.count { dst[i] = src[i] }
    }

    public static func compress(_ src: [UInt8], level: Int32) -> [UInt8] {
        let bound = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            src.withUnsafeBytes { s in ZSTD_compress(dst.baseAddress, bound, s.baseAddress, s.count, level) }
        }
        precondition(ZSTD_isError(n) == 0, "zstd compression cannot fail with a bound-sized buffer")
        return Array(out[0..<n])
    }

    /// The content size a zstd frame declares, or nil when it declares none or is not a frame.
    static func declaredSize(_ src: UnsafeRawBufferPointer) -> UInt64? {
        let n = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        return n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN ? nil : n
    }

    /// Decompresses one zstd frame that must expand to exactly `dst.count` bytes.
    static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                           buffer: Int) throws(FormatError) {
        let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw .decompression(buffer: buffer, reason: "not a zstd frame") }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN { throw .decompression(buffer: buffer, reason: "frame does not declare its size") }
        if declared != UInt64(dst.count) {
            throw .decompression(buffer: buffer, reason: "frame declares \(declared) bytes, header says \(dst.count)")
        }
        let n = ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(n) != 0 {
            throw .decompression(buffer: buffer, reason: String(cString: ZSTD_getErrorName(n)))
        }
        if n != dst.count { throw .decompression(buffer: buffer, reason: "got \(n) bytes, expected \(dst.count)") }
    }
}
