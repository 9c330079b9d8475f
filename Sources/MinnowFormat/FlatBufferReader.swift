// Zero-copy FlatBuffers reading. Unsafe code lives here: every access is bounds-checked against
// the buffer before the load, so a corrupt offset becomes a FormatError, never a wild read.
// (The C++ verifier has already proved the structure on load; these checks are the second wall.)

/// A table inside a FlatBuffer: a position plus the buffer it lives in.
public struct FBTable {
    let buf: UnsafeRawBufferPointer
    let pos: Int

    /// The table the root offset at byte 0 points to.
    public static func root(of buf: UnsafeRawBufferPointer) throws(FormatError) -> FBTable {
        let rootOffset = Int(try FBTable.load(UInt32.self, buf, 0))
        return try FBTable(checking: buf, pos: rootOffset)
    }

    init(checking buf: UnsafeRawBufferPointer, pos: Int) throws(FormatError) {
        self.buf = buf
        self.pos = pos
        // soffset to the vtable must land in the buffer, and the vtable header must fit.
        let vt = try vtablePosition()
        _ = try FBTable.load(UInt16.self, buf, vt + 2)
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ buf: UnsafeRawBufferPointer, _ at: Int) throws(FormatError) -> T {
        guard at >= 0, at <= buf.count - MemoryLayout<T>.size else {
            throw .malformed("offset \(at) outside the \(buf.count)-byte buffer")
        }
        // Unaligned-safe load; FlatBuffers is little-endian, as is every platform we build for.
        return T(littleEndian: buf.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    private func vtablePosition() throws(FormatError) -> Int {
        let soff = Int(try FBTable.load(Int32.self, buf, pos))
        return pos - soff
    }

    /// Absolute position of field `slot`, or nil when the field is absent (default value).
    func fieldPosition(_ slot: Int) throws(FormatError) -> Int? {
        let vt = try vtablePosition()
        let vtSize = Int(try FBTable.load(UInt16.self, buf, vt))
        let entry = 4 + 2 * slot
        guard entry + 2 <= vtSize else { return nil }
        let off = Int(try FBTable.load(UInt16.self, buf, vt + entry))
        return off == 0 ? nil : pos + off
    }

    public func scalar<T: FixedWidthInteger>(_ slot: Int, default value: T) throws(FormatError) -> T {
        guard let at = try fieldPosition(slot) else { return value }
        return try FBTable.load(T.self, buf, at)
    }

    public func float(_ slot: Int, default value: Float) throws(FormatError) -> Float {
        guard let at = try fieldPosition(slot) else { return value }
        return Float(bitPattern: try FBTable.load(UInt32.self, buf, at))
    }

    public func bool(_ slot: Int, default value: Bool) throws(FormatError) -> Bool {
        try scalar(slot, default: UInt8(value ? 1 : 0)) != 0
    }

    /// Follows the uoffset stored at field `slot`.
    private func indirect(_ slot: Int) throws(FormatError) -> Int? {
        guard let at = try fieldPosition(slot) else { return nil }
        return at + Int(try FBTable.load(UInt32.self, buf, at))
    }

    public func table(_ slot: Int) throws(FormatError) -> FBTable? {
        guard let at = try indirect(slot) else { return nil }
        return try FBTable(checking: buf, pos: at)
    }

    public func string(_ slot: Int) throws(FormatError) -> String? {
        guard let at = try indirect(slot) else { return nil }
        return try FBTable.readString(buf, at)
    }

    static func readString(_ buf: UnsafeRawBufferPointer, _ at: Int) throws(FormatError) -> String {
        let len = Int(try load(UInt32.self, buf, at))
        guard len <= buf.count - at - 4 else { throw .malformed("string at \(at) of length \(len) overruns the buffer") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buf[(at + 4)..<(at + 4 + len)]), as: UTF8.self)
    }

    /// A vector field: its element count and where its elements start.
    public func vector(_ slot: Int, elementSize: Int) throws(FormatError) -> FBVector? {
        guard let at = try indirect(slot) else { return nil }
        let count = Int(try FBTable.load(UInt32.self, buf, at))
        guard count <= (buf.count - at - 4) / elementSize else {
            throw .malformed("vector at \(at) with \(count) elements overruns the buffer")
        }
        return FBVector(buf: buf, start: at + 4, count: count, elementSize: elementSize)
    }

    public func scalars<T: FixedWidthInteger>(_ slot: Int, as: T.Type) throws(FormatError) -> [T] {
        guard let v = try vector(slot, elementSize: MemoryLayout<T>.size) else { return [] }
        var out = [T]()
        out.reserveCapacity(v.count)
        for i in 0..<v.count { out.append(try FBTable.load(T.self, buf, v.start + i * v.elementSize)) }
        return out
    }

    public func floats(_ slot: Int) throws(FormatError) -> [Float] {
        try scalars(slot, as: UInt32.self).map { Float(bitPattern: $0) }
    }

    public func tables(_ slot: Int) throws(FormatError) -> [FBTable] {
        guard let v = try vector(slot, elementSize: 4) else { return [] }
        var out = [FBTable]()
        out.reserveCapacity(v.count)
        for i in 0..<v.count {
            let at = v.start + i * 4
            out.append(try FBTable(checking: buf, pos: at + Int(try FBTable.load(UInt32.self, buf, at))))
        }
        return out
    }
}

public struct FBVector {
    let buf: UnsafeRawBufferPointer
    public let start: Int
    public let count: Int
    public let elementSize: Int
}
