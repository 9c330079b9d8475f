import MinnowFormat

/// Constant bytes of a lowered tensor.
enum ConstData: Equatable {
    case float([Float])
    case int8([Int8])
    case int32([Int32])
    case int64([Int64])
    case bool([Bool])

    var bytes: [UInt8] {
        switch self {
        case let .int64(v): return v.withUnsafeBytes { Array($0) }
        case let .bool(v): return v.map { $0 ? 1 : 0 }
        case let .float(v): return v.withUnsafeBytes { Array($0) }
        case let .int8(v): return v.withUnsafeBytes { Array($0) }
        case let .int32(v): return v.withUnsafeBytes { Array($0) }
        }
    }
}

/// A tensor of the lowered graph: an activation (batch dim -1 first) or a constant.
struct MTensor {
    var name: String
    var dtype: DType
    var shape: [Int64]
    var data: ConstData?
    var quant: QuantParams?
    var isConstant: Bool { data != nil }
}

/// An operator of the lowered graph, in Minnow's runtime op set.
struct MOp {
    var opcode: OpCode
    var inputs: [Int]
    var outputs: [Int]
    var options: OpOptions = .none
    /// Source ONNX node name (or names, for fused ops) and its op type.
    var name: String
    var sourceType: String
}

/// The graph in Minnow's op set: what the passes (fusion, quantization, planning) work on.
struct MGraph {
    var tensors: [MTensor] = []
    var ops: [MOp] = []
    var inputs: [Int] = []
    var outputs: [Int] = []

    mutating func add(_ t: MTensor) -> Int {
        tensors.append(t)
        return tensors.count - 1
    }

    mutating func addConstant(name: String, shape: [Int64], _ data: ConstData, quant: QuantParams? = nil) -> Int {
        let dtype: DType
        switch data {
        case .float: dtype = .float32
        case .int8: dtype = .int8
        case .int32: dtype = .int32
        case .int64: dtype = .int64
        case .bool: dtype = .bool
        }
        return add(MTensor(name: name, dtype: dtype, shape: shape, data: data, quant: quant))
    }

    func consumers(of t: Int) -> [Int] {
        ops.indices.filter { ops[$0].inputs.contains(t) }
    }

    func producer(of t: Int) -> Int? { ops.firstIndex { $0.outputs.contains(t) } }

    func isGraphOutput(_ t: Int) -> Bool { outputs.contains(t) }

    /// Drops tensors no op or graph edge refers to, renumbering the rest.
    mutating func compact() {
        var used = Set(inputs + outputs)
        for op in ops { used.formUnion(op.inputs.filter { $0 >= 0 }); used.formUnion(op.outputs) }
        var remap = [Int](repeating: -1, count: tensors.count)
        var kept: [MTensor] = []
        for (i, t) in tensors.enumerated() where used.contains(i) {
            remap[i] = kept.count
            kept.append(t)
        }
        tensors = kept
        inputs = inputs.map { remap[$0] }
        outputs = outputs.map { remap[$0] }
        for i in ops.indices {
            ops[i].inputs = ops[i].inputs.map { $0 >= 0 ? remap[$0] : -1 }
            ops[i].outputs = ops[i].outputs.map { remap[$0] }
        }
    }
}
