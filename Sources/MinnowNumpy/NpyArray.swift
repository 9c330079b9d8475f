import Foundation

/// One numpy array: element type, shape and little-endian C-order bytes.
public struct NpyArray: Equatable, Sendable {
    public enum ElementType: String, Sendable {
        case float32 = "<f4", float64 = "<f8", int64 = "<i8", int32 = "<i4", int8 = "|i1", uint8 = "|u1", bool = "|b1"

        public var byteSize: Int {
            switch self {
            case .float64, .int64: return 8
            case .float32, .int32: return 4
            case .int8, .uint8, .bool: return 1
            }
        }
    }

    public var type: ElementType
    public var shape: [Int]
    public var data: [UInt8]

    public var count: Int { shape.reduce(1, *) }

    public init(type: ElementType, shape: [Int], data: [UInt8]) {
        self.type = type
        self.shape = shape
        self.data = data
    }

    public init(floats: [Float], shape: [Int]) {
        precondition(floats.count == shape.reduce(1, *), "element count does not match shape")
        self.init(type: .float32, shape: shape, data: floats.withUnsafeBytes { Array($0) })
    }


    private func load<T>(_: T.Type) -> [T] {
        data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
    }

    /// Values converted to Float (float64 and integers are converted; bool is 0/1).
    /// Whether every value converts to Float exactly (always true for float arrays; integers
    /// must lie within ±2^24).
    public var integersExactInFloat: Bool {
        switch type {
        case .int64: return load(Int64.self).allSatisfy { abs($0) <= 1 << 24 }
        case .int32: return load(Int32.self).allSatisfy { abs(Int64($0)) <= 1 << 24 }
        default: return true
        }
    }

    public var isFloatingPoint: Bool { type == .float32 || type == .float64 }

    public func floats() -> [Float] {
        switch type {
        case .float32: return load(Float.self)
        case .float64: return load(Double.self).map { Float($0) }
        case .int64: return load(Int64.self).map { Float($0) }
        case .int32: return load(Int32.self).map { Float($0) }
        case .int8: return load(Int8.self).map { Float($0) }
        case .uint8, .bool: return data.prefix(count).map { Float($0) }
        }
    }

}

/// The `.npy` container: magic, version, a Python-literal header dict, then the data.
public enum Npy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Parses `.npy` bytes. Every length and count is checked against the bytes present.
    public static func parse(_ bytes: [UInt8], name: String, limit: Int64 = 1 << 34) throws(NumpyError) -> NpyArray {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw .badNpy(array: name, reason: "missing NUMPY magic") }
        let major = bytes[6]
        let headerLen: Int, headerStart: Int
        switch major {
        case 1: headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .badNpy(array: name, reason: "truncated header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default: throw .badNpy(array: name, reason: "unknown .npy version \(major)")
        }
        guard headerLen <= bytes.count - headerStart else { throw .badNpy(array: name, reason: "header overruns the data") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLen)], as: UTF8.self)
        let descr = try field(header, "descr", name)
        let fortran = try field(header, "fortran_order", name)
        let shapeText = try field(header, "shape", name)
        let typeText = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let normalized = typeText == "=f4" ? "<f4" : typeText == "=f8" ? "<f8" : typeText == "=i8" ? "<i8" : typeText == "=i4" ? "<i4" : typeText
        guard let type = NpyArray.ElementType(rawValue: normalized) else { throw .unsupportedDtype(array: name, descr: typeText) }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        var elements: Int64 = 1
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw .badNpy(array: name, reason: "bad dimension '\(d)' in shape \(shapeText)") }
            shape.append(v)
            let (p, o) = elements.multipliedReportingOverflow(by: Int64(v))
            guard !o else { throw .badNpy(array: name, reason: "shape \(shapeText) overflows") }
            elements = p
        }
        let (byteCount, o) = elements.multipliedReportingOverflow(by: Int64(type.byteSize))
        guard !o, byteCount <= limit else { throw .tooLarge(array: name, bytes: byteCount, limit: limit) }
        if fortran.hasPrefix("True") && shape.filter({ $0 > 1 }).count > 1 {
            throw .badNpy(array: name, reason: "Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        let dataStart = headerStart + headerLen
        guard Int64(bytes.count - dataStart) == byteCount else {
            throw .badNpy(array: name, reason: "expected \(byteCount) data bytes for shape \(shape), found \(bytes.count - dataStart)")
        }
        return NpyArray(type: type, shape: shape, data: Array(bytes[dataStart...]))
    }

    /// The text after `'key':` up to the next top-level comma.
    private static func field(_ header: String, _ key: String, _ name: String) throws(NumpyError) -> String {
        guard let r = header.range(of: "'\(key)':") else { throw .badNpy(array: name, reason: "header lacks '\(key)'") }
        var depth = 0
        var out = ""
        for ch in header[r.upperBound...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1; if depth == 0 { out.append(ch); break } }
            if (ch == "," || ch == "}") && depth == 0 { break }
            out.append(ch)
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// Serializes an array as `.npy` version 1.0.
    public static func serialize(_ a: NpyArray) -> [UInt8] {
        let shape = a.shape.count == 1 ? "(\(a.shape[0]),)" : "(" + a.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(a.type.rawValue)', 'fortran_order': False, 'shape': \(shape), }"
        // Pad so the data starts on a 64-byte boundary, ending the header with a newline.
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = magic + [1, 0]
        let len = header.utf8.count
        out += [UInt8(len & 0xff), UInt8(len >> 8)]
        out += Array(header.utf8)
        out += a.data
        return out
    }
}
