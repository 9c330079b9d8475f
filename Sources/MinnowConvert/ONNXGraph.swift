import Foundation
import MinnowFormat
import SwiftProtobuf

/// Product of dimensions, or nil when one is negative or the product exceeds `limit`.
/// Shapes come from untrusted files: every product of them goes through here first.
func checkedProduct<S: Sequence>(_ dims: S, limit: Int = 1 << 31) -> Int? where S.Element: BinaryInteger {
    var n = 1
    for d in dims {
        guard d >= 0, let v = Int(exactly: d) else { return nil }
        let (p, o) = n.multipliedReportingOverflow(by: v)
        guard !o, p <= limit else { return nil }
        n = p
    }
    return n
}

/// A constant tensor during conversion: float or int64 values with a shape.
/// (Other ONNX integer and bool types are widened to int64; float64 narrowed to float32.)
struct ConstTensor: Equatable {
    enum Values: Equatable {
        case float([Float])
        case int([Int64])
    }
    var shape: [Int]
    var values: Values

    var count: Int { shape.reduce(1, *) }
    var isFloat: Bool { if case .float = values { return true } else { return false } }
    var floats: [Float] {
        switch values {
        case let .float(f): return f
        case let .int(i): return i.map { Float($0) }
        }
    }
    var ints: [Int64] {
        switch values {
        case let .float(f): return f.map { $0.isFinite ? Int64($0) : 0 }
        case let .int(i): return i
        }
    }
    init(shape: [Int], floats: [Float]) { self.shape = shape; values = .float(floats) }
    init(shape: [Int], ints: [Int64]) { self.shape = shape; values = .int(ints) }
}

/// An attribute value of an ONNX node.
enum Attribute {
    case float(Float), int(Int64), string(String), tensor(ConstTensor), floats([Float]), ints([Int64]), other
}

struct ONNXNode {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: Attribute]

    func int(_ key: String, default value: Int64) -> Int64 {
        if case let .int(v)? = attributes[key] { return v }
        return value
    }
    func float(_ key: String, default value: Float) -> Float {
        if case let .float(v)? = attributes[key] { return v }
        return value
    }
    func ints(_ key: String) -> [Int64]? {
        if case let .ints(v)? = attributes[key] { return v }
        return nil
    }
    func string(_ key: String) -> String? {
        if case let .string(v)? = attributes[key] { return v }
        return nil
    }
    /// The i-th input name, or nil when absent or left empty (ONNX's optional input).
    func input(_ i: Int) -> String? { i < inputs.count && !inputs[i].isEmpty ? inputs[i] : nil }
}

struct ONNXValueInfo {
    var name: String
    var elemType: Int32
    /// Dimensions; nil entries are symbolic (dim_param) or unknown.
    var dims: [Int64?]
}

/// The parts of an ONNX model the converter uses.
struct ONNXGraph {
    static let supportedOpsets: ClosedRange<Int64> = 13...21

    var opset: Int64
    var producer: String
    var nodes: [ONNXNode]
    var initializers: [String: ConstTensor]
    var inputs: [ONNXValueInfo]
    var outputs: [ONNXValueInfo]
    /// XXH64 of the ONNX file bytes: identifies the source (not a security hash).
    var sourceHash: String

    /// Whether any node or graph output reads the value called `name`.
    func isConsumed(_ name: String) -> Bool {
        outputs.contains { $0.name == name } || nodes.contains { $0.inputs.contains(name) }
    }

    static func load(path: String) throws(ConvertError) -> ONNXGraph {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read file") }
        let proto: MinnowOnnx_ModelProto
        do { proto = try MinnowOnnx_ModelProto(serializedBytes: data) } catch {
            throw .notONNX(path: path, reason: "protobuf decoding failed: \(error)")
        }
        guard proto.hasGraph, !proto.graph.node.isEmpty || !proto.graph.output.isEmpty else {
            throw .notONNX(path: path, reason: "no graph")
        }
        var opset: Int64?
        for o in proto.opsetImport {
            if o.domain.isEmpty || o.domain == "ai.onnx" {
                guard supportedOpsets.contains(o.version) else {
                    throw .unsupportedOpset(domain: o.domain, version: o.version, supported: supportedOpsets)
                }
                opset = o.version
            }
        }
        guard let opset else { throw .notONNX(path: path, reason: "no ai.onnx opset import") }
        let g = proto.graph
        var inits = [String: ConstTensor]()
        let external = ExternalData(directory: URL(fileURLWithPath: path).deletingLastPathComponent())
        for t in g.initializer { inits[t.name] = try decodeTensor(t, external: external) }
        let nodes = try g.node.map { n throws(ConvertError) -> ONNXNode in
            var attrs = [String: Attribute]()
            for a in n.attribute { attrs[a.name] = try decodeAttribute(a, node: n.name) }
            return ONNXNode(name: n.name.isEmpty ? (n.output.first ?? n.opType) : n.name, opType: n.opType,
                            domain: n.domain, inputs: n.input, outputs: n.output, attributes: attrs)
        }
        func info(_ v: MinnowOnnx_ValueInfoProto) -> ONNXValueInfo {
            let t = v.type.tensorType
            return ONNXValueInfo(name: v.name, elemType: t.elemType, dims: t.shape.dim.map { d in
                if case let .dimValue(x)? = d.value { return x }
                return nil
            })
        }
        return ONNXGraph(opset: opset, producer: "\(proto.producerName) \(proto.producerVersion)", nodes: nodes,
                         initializers: inits,
                         inputs: g.input.filter { inits[$0.name] == nil }.map(info), outputs: g.output.map(info),
                         sourceHash: Data(data).withUnsafeBytes { "xxh64:" + String(Segments.checksum($0), radix: 16) })
    }

    static func decodeAttribute(_ a: MinnowOnnx_AttributeProto, node: String) throws(ConvertError) -> Attribute {
        switch a.type {
        case 1: return .float(a.f)
        case 2: return .int(a.i)
        case 3: return .string(String(decoding: a.s, as: UTF8.self))
        case 4: return .tensor(try decodeTensor(a.t))
        case 6: return .floats(a.floats)
        case 7: return .ints(a.ints)
        default: return .other
        }
    }

    /// ONNX TensorProto -> ConstTensor. Data comes from raw_data (little-endian) or typed fields.
    static func decodeTensor(_ t: MinnowOnnx_TensorProto, external: ExternalData? = nil) throws(ConvertError) -> ConstTensor {
        guard let count = checkedProduct(t.dims), t.dims.count <= 8 else {
            throw .unsupportedTensor(name: t.name, reason: "shape \(t.dims) is negative, above rank 8 or too large")
        }
        let shape = t.dims.map { Int($0) }
        var raw = [UInt8](t.rawData)
        if t.dataLocation == 1 || !t.externalData.isEmpty {
            guard let external else { throw .externalData(tensor: t.name, reason: "external data is only supported for initializers") }
            raw = try external.read(t)
        }
        func fromRaw<T>(_: T.Type) throws(ConvertError) -> [T] {
            guard raw.count == count * MemoryLayout<T>.size else {
                throw .unsupportedTensor(name: t.name, reason: "raw_data has \(raw.count) bytes, shape \(shape) needs \(count * MemoryLayout<T>.size)")
            }
            return raw.withUnsafeBytes { b in (0..<count).map { b.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
        }
        func checked<T>(_ v: [T]) throws(ConvertError) -> [T] {
            guard v.count == count else {
                throw .unsupportedTensor(name: t.name, reason: "\(v.count) values for shape \(shape)")
            }
            return v
        }
        let useRaw = !raw.isEmpty
        switch t.dataType {
        case 1: return ConstTensor(shape: shape, floats: useRaw ? try fromRaw(Float.self) : try checked(t.floatData))
        case 11: return ConstTensor(shape: shape, floats: (useRaw ? try fromRaw(Double.self) : try checked(t.doubleData)).map { Float($0) })
        case 7: return ConstTensor(shape: shape, ints: useRaw ? try fromRaw(Int64.self) : try checked(t.int64Data))
        case 6: return ConstTensor(shape: shape, ints: (useRaw ? try fromRaw(Int32.self) : try checked(t.int32Data)).map { Int64($0) })
        case 3: return ConstTensor(shape: shape, ints: useRaw ? try fromRaw(Int8.self).map { Int64($0) } : try checked(t.int32Data).map { Int64($0) })
        case 2, 9: return ConstTensor(shape: shape, ints: useRaw ? try fromRaw(UInt8.self).map { Int64($0) } : try checked(t.int32Data).map { Int64($0) })
        default:
            throw .unsupportedTensor(name: t.name, reason: "ONNX data type \(t.dataType) is not supported (float32, float64, int64, int32, int8, uint8, bool)")
        }
    }
}

/// Initializer bytes stored beside the model (what torch.onnx.export writes as MODEL.onnx.data).
/// Locations are confined to the model's directory and every range is checked against the file.
struct ExternalData {
    let directory: URL

    func read(_ t: MinnowOnnx_TensorProto) throws(ConvertError) -> [UInt8] {
        var location: String?, offset = 0, length: Int?
        for e in t.externalData {
            switch e.key {
            case "location": location = e.value
            case "offset":
                guard let v = Int(e.value), v >= 0 else { throw .externalData(tensor: t.name, reason: "bad offset '\(e.value)'") }
                offset = v
            case "length":
                guard let v = Int(e.value), v >= 0 else { throw .externalData(tensor: t.name, reason: "bad length '\(e.value)'") }
                length = v
            default: break
            }
        }
        guard let location, !location.isEmpty else { throw .externalData(tensor: t.name, reason: "no location given") }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw .externalData(tensor: t.name, reason: "location '\(location)' leaves the model's directory")
        }
        let url = directory.appendingPathComponent(location)
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw .externalData(tensor: t.name, reason: "cannot open '\(url.path)' (copy it beside the model)")
        }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), offset <= Int(size) else {
            throw .externalData(tensor: t.name, reason: "offset \(offset) is past the end of '\(location)'")
        }
        let n = length ?? (Int(size) - offset)
        guard n <= Int(size) - offset else {
            throw .externalData(tensor: t.name, reason: "range [\(offset), +\(n)) overruns '\(location)' (\(size) bytes)")
        }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: n) ?? Data()
            guard data.count == n else { throw ConvertError.externalData(tensor: t.name, reason: "short read from '\(location)'") }
            return [UInt8](data)
        } catch let e as ConvertError { throw e } catch {
            throw .externalData(tensor: t.name, reason: "reading '\(location)': \(error)")
        }
    }
}
