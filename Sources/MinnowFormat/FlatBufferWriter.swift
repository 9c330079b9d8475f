// A forward FlatBuffers writer: parents are laid out before their children, so every uoffset
// points forward as the format requires, and patched once the child's position is known.
// Scalars are always written (never elided as defaults) so sizes are stable and output is
// deterministic: the same description gives the same bytes.

public final class FBTableBuilder {
    enum Field {
        case scalar(bytes: [UInt8])
        case child(FBObject)
    }
    var fields: [(slot: Int, field: Field)] = []

    public init() {}

    @discardableResult
    public func add<T: FixedWidthInteger>(_ slot: Int, _ value: T) -> Self {
        withUnsafeBytes(of: value.littleEndian) { fields.append((slot, .scalar(bytes: Array($0)))) }
        return self
    }

    @discardableResult
    public func add(_ slot: Int, _ value: Float) -> Self { add(slot, value.bitPattern) }

    @discardableResult
    public func add(_ slot: Int, _ value: Bool) -> Self { add(slot, UInt8(value ? 1 : 0)) }

    @discardableResult
    public func add(_ slot: Int, _ object: FBObject?) -> Self {
        if let object { fields.append((slot, .child(object))) }
        return self
    }

    @discardableResult
    public func add(_ slot: Int, string: String?) -> Self { add(slot, string.map { FBObject.string($0) }) }
}

public indirect enum FBObject {
    case table(FBTableBuilder)
    case string(String)
    /// Little-endian element bytes of a scalar vector.
    case scalarVector(bytes: [UInt8], elementSize: Int)
    case tableVector([FBTableBuilder])

    public static func vector<T: FixedWidthInteger>(_ values: [T]) -> FBObject {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
        for v in values { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        return .scalarVector(bytes: bytes, elementSize: MemoryLayout<T>.size)
    }

    public static func vector(_ values: [Float]) -> FBObject { vector(values.map(\.bitPattern)) }
}

public struct FlatBufferWriter {
    private(set) var bytes: [UInt8] = []

    /// Serializes `root` with the 4-byte file identifier.
    public static func serialize(root: FBTableBuilder, identifier: String) -> [UInt8] {
        var w = FlatBufferWriter()
        w.bytes = [UInt8](repeating: 0, count: 8)
        let id = Array(identifier.utf8)
        precondition(id.count == 4, "file identifier must be 4 bytes")
        w.bytes.replaceSubrange(4..<8, with: id)
        let rootPos = w.emitTable(root)
        w.patch(at: 0, UInt32(rootPos))
        w.align(8)
        return w.bytes
    }

    private mutating func align(_ n: Int) {
        while bytes.count % n != 0 { bytes.append(0) }
    }

    private mutating func patch(at: Int, _ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Writes the vtable, then the table, then the table's children; returns the table position.
    private mutating func emitTable(_ t: FBTableBuilder) -> Int {
        // Lay out fields largest first so the table packs without padding where possible.
        let order = t.fields.enumerated().sorted { a, b in
            let sa = size(of: a.element.field), sb = size(of: b.element.field)
            return sa != sb ? sa > sb : a.offset < b.offset
        }.map(\.element)
        let maxSlot = t.fields.map(\.slot).max() ?? -1

        // Compute the table layout relative to its start, assuming the start is 8-aligned.
        var fieldOffsets = [Int: Int]()
        var cursor = 4  // soffset to the vtable
        for f in order {
            let s = size(of: f.field)
            cursor = (cursor + s - 1) / s * s
            fieldOffsets[f.slot] = cursor
            cursor += s
        }
        let tableSize = cursor

        // vtable: [vtable size][table size][offset per slot]
        align(2)
        let vtablePos = bytes.count
        let vtableSize = 4 + 2 * (maxSlot + 1)
        append(UInt16(vtableSize))
        append(UInt16(tableSize))
        for slot in 0...max(maxSlot, 0) where maxSlot >= 0 { append(UInt16(fieldOffsets[slot] ?? 0)) }

        align(8)
        let tablePos = bytes.count
        append(Int32(tablePos - vtablePos))
        bytes.append(contentsOf: [UInt8](repeating: 0, count: tableSize - 4))
        var pending: [(at: Int, object: FBObject)] = []
        for f in order {
            let at = tablePos + fieldOffsets[f.slot]!
            switch f.field {
            case let .scalar(b): bytes.replaceSubrange(at..<(at + b.count), with: b)
            case let .child(o): pending.append((at, o))
            }
        }
        for (at, object) in pending {
            let target = emit(object)
            patch(at: at, UInt32(target - at))
        }
        return tablePos
    }

    private func size(of field: FBTableBuilder.Field) -> Int {
        switch field {
        case let .scalar(b): return b.count
        case .child: return 4
        }
    }

    private mutating func emit(_ object: FBObject) -> Int {
        switch object {
        case let .table(t):
            return emitTable(t)
        case let .string(s):
            align(4)
            let pos = bytes.count
            let utf8 = Array(s.utf8)
            append(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
            bytes.append(0)
            return pos
        case let .scalarVector(b, elementSize):
            // Elements must be aligned to their size; the 4-byte count sits right before them.
            let a = max(elementSize, 4)
            while (bytes.count + 4) % a != 0 { bytes.append(0) }
            let pos = bytes.count
            append(UInt32(b.count / elementSize))
            bytes.append(contentsOf: b)
            return pos
        case let .tableVector(tables):
            align(4)
            let pos = bytes.count
            append(UInt32(tables.count))
            let slots = bytes.count
            bytes.append(contentsOf: [UInt8](repeating: 0, count: 4 * tables.count))
            for (i, t) in tables.enumerated() {
                let target = emitTable(t)
                let at = slots + 4 * i
                patch(at: at, UInt32(target - at))
            }
            return pos
        }
    }
}
