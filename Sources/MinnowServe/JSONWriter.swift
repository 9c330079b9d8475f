/// Streams JSON text into a byte buffer: responses are written directly, without building an
/// intermediate document. Commas are placed by the writer (a stack of "first element" flags).
/// Non-finite floats, which JSON cannot express, are written as null.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var isFirst: [Bool] = []
    private var afterKey = false

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// Emits the comma before a value or key inside an array or object.
    private mutating func separate() {
        if afterKey { afterKey = false; return }
        guard let first = isFirst.last else { return }
        if !first { bytes.append(UInt8(ascii: ",")) }
        isFirst[isFirst.count - 1] = false
    }

    private mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); isFirst.append(true) }
    public mutating func endObject() { isFirst.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); isFirst.append(true) }
    public mutating func endArray() { isFirst.removeLast(); bytes.append(UInt8(ascii: "]")) }

    public mutating func key(_ k: String) {
        separate()
        appendQuoted(k)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ s: String) { separate(); appendQuoted(s) }
    public mutating func number(_ x: Int) { separate(); raw(String(x)) }
    public mutating func number(_ x: Int64) { separate(); raw(String(x)) }
    public mutating func bool(_ x: Bool) { separate(); raw(x ? "true" : "false") }

    public mutating func number(_ x: Float) {
        separate()
        // Float's description is the shortest text that reads back to the same Float.
        if x.isFinite { raw(x.description) } else { raw("null") }
    }

    /// A tensor's values nested by `shape` (row-major) from flat index `offset`; a single value
    /// when `shape` is empty.
    public mutating func tensor(_ values: TensorValues, shape: [Int], offset: Int = 0) {
        func write(_ offset: Int, _ dim: Int) {
            if dim == shape.count {
                values.write(at: offset, to: &self)
                return
            }
            let stride = shape[(dim + 1)...].reduce(1, *)
            beginArray()
            for i in 0..<shape[dim] { write(offset + i * stride, dim + 1) }
            endArray()
        }
        write(offset, 0)
    }

    private mutating func appendQuoted(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                raw("\\u00")
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
