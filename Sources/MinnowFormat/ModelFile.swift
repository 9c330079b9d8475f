import CMinnowFormat

/// A verified `.minnow` file in memory: its description plus access to its weight segments.
public final class ModelFile: Sendable {
    public static let identifier = "MNW1"
    /// Decompressed segments larger than this are refused unless the caller raises it.
    public static let defaultSegmentLimit: UInt64 = 4 << 30

    public let bytes: AlignedBytes
    public let description: ModelDescription
    public let segmentLimit: UInt64

    /// Verifies structure (FlatBuffers verifier), identifier, version and segment bounds.
    /// Segment contents (checksums, decompression) are checked when they are read.
    public init(bytes: AlignedBytes, segmentLimit: UInt64 = ModelFile.defaultSegmentLimit) throws(FormatError) {
        self.bytes = bytes
        self.segmentLimit = segmentLimit
        let buf = bytes.buffer
        guard buf.count >= 16 else { throw .tooSmall(bytes: buf.count) }
        guard minnow_has_identifier(buf.baseAddress!.assumingMemoryBound(to: UInt8.self), buf.count) == 1 else {
            let id = String(decoding: buf[4..<8].map { $0 >= 32 && $0 < 127 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            throw .badIdentifier(found: id)
        }
        guard minnow_verify_model(buf.baseAddress!.assumingMemoryBound(to: UInt8.self), buf.count) == 1 else {
            throw .verifierRejected
        }
        let d = try ModelCoding.decode(try FBTable.root(of: buf))
        try ModelFile.checkSegments(d, fileSize: buf.count, limit: segmentLimit)
        description = d
    }

    public convenience init(path: String, segmentLimit: UInt64 = ModelFile.defaultSegmentLimit) throws(FormatError) {
        try self.init(bytes: try AlignedBytes.read(path: path), segmentLimit: segmentLimit)
    }

    private static func checkSegments(_ d: ModelDescription, fileSize: Int, limit: UInt64) throws(FormatError) {
        guard d.segmentBase % 64 == 0, d.segmentBase <= UInt64(fileSize) else {
            throw .malformed("segment base \(d.segmentBase) is not a 64-byte-aligned offset inside the file")
        }
        for (i, b) in d.buffers.enumerated() {
            let index = i + 1
            let (start, o1) = d.segmentBase.addingReportingOverflow(b.offset)
            let (end, o2) = start.addingReportingOverflow(b.storedSize)
            guard !o1, !o2, end <= UInt64(fileSize) else {
                throw .segmentOutOfBounds(buffer: index, offset: b.offset, size: b.storedSize, fileSize: fileSize)
            }
            guard b.size <= limit else { throw .segmentTooLarge(buffer: index, size: b.size, limit: limit) }
            if b.codec == .none && b.storedSize != b.size {
                throw .malformed("buffer \(index): uncompressed segment stores \(b.storedSize) bytes but declares \(b.size)")
            }
            guard b.shuffle == 0 || b.shuffle == 2 || b.shuffle == 4 || b.shuffle == 8 else {
                throw .malformed("buffer \(index): unsupported shuffle width \(b.shuffle)")
            }
        }
    }

    /// The decompressed, checksum-verified bytes of buffer `index` (1-based), in fresh aligned memory.
    public func segment(_ index: Int) throws(FormatError) -> AlignedBytes {
        guard index >= 1, index <= description.buffers.count else {
            throw .malformed("buffer index \(index) out of range 1...\(description.buffers.count)")
        }
        let b = description.buffers[index - 1]
        let start = Int(description.segmentBase + b.offset)
        let stored = UnsafeRawBufferPointer(rebasing: bytes.buffer[start..<(start + Int(b.storedSize))])
        let sum = Segments.checksum(stored)
        guard sum == b.checksum else { throw .checksumMismatch(buffer: index, expected: b.checksum, found: sum) }
        // A zstd frame must declare the size the header promises before anything is allocated.
        if b.codec == .zstd && Segments.declaredSize(stored) != b.size {
            throw .decompression(buffer: index, reason: "frame declares \(Segments.declaredSize(stored).map(String.init) ?? "no size"), header says \(b.size)")
        }
        guard let out = AlignedBytes(uninitializedCount: Int(b.size)) else {
            throw .outOfMemory(buffer: index, bytes: b.size)
        }
        let width = Int(b.shuffle)
        switch (b.codec, width > 1) {
        case (.none, false):
            out.mutableBuffer.copyMemory(from: stored)
        case (.none, true):
            Segments.unshuffle(stored, into: out.mutableBuffer, width: width)
        case (.zstd, false):
            try Segments.decompress(stored, into: out.mutableBuffer, buffer: index)
        case (.zstd, true):
            guard let tmp = AlignedBytes(uninitializedCount: Int(b.size)) else {
                throw .outOfMemory(buffer: index, bytes: b.size)
            }
            try Segments.decompress(stored, into: tmp.mutableBuffer, buffer: index)
            Segments.unshuffle(tmp.buffer, into: out.mutableBuffer, width: width)
        }
        return out
    }
}

/// Bytes of one weight segment before it is written.
public struct SegmentPayload: Sendable {
    public var bytes: [UInt8]
    /// Element width for byte shuffling before compression (4 for fp32 data, 0 for none).
    public var shuffleWidth: Int
    public init(bytes: [UInt8], shuffleWidth: Int = 0) {
        self.bytes = bytes
        self.shuffleWidth = shuffleWidth
    }
}

public enum ModelFileWriter {
    /// Serializes the description (its `buffers` and `segmentBase` are filled in here) followed by
    /// one 64-byte-aligned segment per payload. Buffer i+1 in the description is payload i.
    public static func write(_ description: ModelDescription, segments: [SegmentPayload], codec: Codec = .zstd,
                             zstdLevel: Int32 = 3) -> [UInt8] {
        var d = description
        var stored: [[UInt8]] = []
        d.buffers = []
        var offset: UInt64 = 0
        for p in segments {
            let width = p.shuffleWidth > 1 ? p.shuffleWidth : 0
            let shuffled = Segments.shuffle(p.bytes, width: width)
            var bytes = shuffled
            var segCodec = Codec.none
            if codec == .zstd && !p.bytes.isEmpty {
                let z = Segments.compress(shuffled, level: zstdLevel)
                if z.count < shuffled.count { bytes = z; segCodec = .zstd }
            }
            let sum = bytes.withUnsafeBytes { Segments.checksum($0) }
            d.buffers.append(BufferInfo(offset: offset, storedSize: UInt64(bytes.count), size: UInt64(p.bytes.count),
                                        codec: segCodec, shuffle: UInt8(width), checksum: sum))
            stored.append(bytes)
            offset = align64(offset + UInt64(bytes.count))
        }
        // The FlatBuffer's size does not depend on segment_base's value (scalars are always
        // written), so serialize once to measure, then again with the real base.
        d.segmentBase = 0
        let probe = FlatBufferWriter.serialize(root: ModelCoding.encode(d), identifier: ModelFile.identifier)
        d.segmentBase = align64(UInt64(probe.count))
        var out = FlatBufferWriter.serialize(root: ModelCoding.encode(d), identifier: ModelFile.identifier)
        precondition(out.count == probe.count, "FlatBuffer size changed with segment_base")
        // Pad to the base even with no segments (a weightless graph), so the base lies inside the file.
        out.append(contentsOf: [UInt8](repeating: 0, count: Int(d.segmentBase) - out.count))
        for (i, bytes) in stored.enumerated() {
            let target = Int(d.segmentBase + d.buffers[i].offset)
            out.append(contentsOf: [UInt8](repeating: 0, count: target - out.count))
            out.append(contentsOf: bytes)
        }
        return out
    }

    static func align64(_ v: UInt64) -> UInt64 { (v + 63) / 64 * 64 }
}
