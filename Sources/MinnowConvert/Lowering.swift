import MinnowFormat

// ONNX graph -> MGraph (Minnow's op set, all fp32). One pass in topological order: nodes whose
// inputs are all constant are folded; the rest are lowered, with shapes inferred as we go
// (dimension 0 of every activation is the dynamic batch, written -1).

struct Lowering {
    enum Value {
        case constant(ConstTensor)
        case tensor(Int)
        /// A value whose axes are a permutation of a stored (batch-first) tensor's: logical axis i
        /// is stored axis perm[i]. Exports that put the batch second for a while (RNN inputs and
        /// outputs) stay batch-first in storage this way; Lowering+Layout.swift.
        case permuted(Int, perm: [Int])
        /// A constant broadcast over the batch (`zeros(num_layers, batch, hidden)` initial states):
        /// every element equals `value`. Only recurrent ops and shape ops accept it.
        case uniform(Float)
        /// An integer tensor equal to base + coef * (the sample's batch index); axis 0 of base and
        /// coef has size 1 (Lowering+BatchIndex.swift).
        case batchAffine(base: ConstTensor, coef: ConstTensor)
        /// A value computed from a batch index whose contents are never needed, only its shape.
        case shapeOnly([Int64])
        /// Stored tensor t (read in order `perm`, perm[0] = 0) with its first `lead` axes after the
        /// batch merged into the batch: logically [batch * lead dims, remaining axes...].
        case merged(Int, perm: [Int], lead: Int)
    }

    var g = MGraph()
    var values: [String: Value] = [:]
    var constantIndex: [String: Int] = [:]
    let onnx: ONNXGraph
    /// The batch size baked into an export without a dynamic batch axis (commonly 1).
    var exportedBatch: Int64?

    /// Length given to dynamic non-batch input dimensions (`--max-seq`).
    var maxSeq: Int?

    static func lower(_ onnx: ONNXGraph, maxSeq: Int? = nil) throws(ConvertError) -> MGraph {
        var l = Lowering(onnx: onnx)
        l.maxSeq = maxSeq
        try l.run()
        return l.g
    }

    private init(onnx: ONNXGraph) { self.onnx = onnx }

    private mutating func run() throws(ConvertError) {
        for (name, t) in onnx.initializers { values[name] = .constant(t) }
        for input in onnx.inputs {
            let inputTypes: [Int32: DType] = [1: .float32, 6: .int32, 7: .int64, 9: .bool]
            guard let dtype = inputTypes[input.elemType] else {
                throw .unsupportedTensor(name: input.name, reason: "input element type \(input.elemType) (inputs may be float32, int32, int64 or bool)")
            }
            guard !input.dims.isEmpty else { throw .unsupportedTensor(name: input.name, reason: "scalar input; inputs need a batch dimension") }
            var shape: [Int64] = [-1]
            for (i, d) in input.dims.enumerated().dropFirst() {
                guard let d = d ?? maxSeq.map(Int64.init) else {
                    throw .unsupportedTensor(name: input.name, reason: "dimension \(i) is dynamic; only dimension 0 (the batch) may be (give it a length with --max-seq N)")
                }
                shape.append(d)
            }
            guard checkedProduct(shape.dropFirst()) != nil, shape.count <= 8 else {
                throw .unsupportedTensor(name: input.name, reason: "shape \(input.dims) is negative, above rank 8 or too large")
            }
            if let b = input.dims[0] { exportedBatch = b }
            let t = g.add(MTensor(name: input.name, dtype: dtype, shape: shape))
            g.inputs.append(t)
            values[input.name] = .tensor(t)
        }
        // ONNX values are defined once (SSA); a second definition makes the graph ambiguous
        // (onnxruntime refuses it as "Duplicate definition of name").
        var defined = Set(onnx.inputs.map(\.name))
        for node in onnx.nodes {
            for name in node.outputs where !name.isEmpty {
                guard defined.insert(name).inserted else { throw bad(node, "output '\(name)' is already defined by an earlier node or input") }
            }
            try lower(node)
        }
        for out in onnx.outputs {
            guard var v = values[out.name] else { throw .unsupportedTensor(name: out.name, reason: "graph output is never produced") }
            if case let .permuted(t, perm) = v {
                let node = ONNXNode(name: out.name, opType: "output", domain: "", inputs: [], outputs: [], attributes: [:])
                guard perm.first == 0 else { throw .unsupportedTensor(name: out.name, reason: "graph output has the batch at axis \(perm.firstIndex(of: 0) ?? -1)") }
                v = .tensor(try materialize(node, t, perm))
            }
            guard case var .tensor(t) = v else {
                throw .unsupportedTensor(name: out.name, reason: "graph output is a constant; nothing to compute")
            }
            if g.inputs.contains(t) || g.outputs.contains(t) {
                // An output that is an input (or another output) needs its own storage.
                let y = g.add(MTensor(name: out.name, dtype: g.tensors[t].dtype, shape: g.tensors[t].shape))
                g.ops.append(MOp(opcode: .copy, inputs: [t], outputs: [y], name: out.name, sourceType: "Identity"))
                t = y
            }
            g.tensors[t].name = out.name
            g.outputs.append(t)
        }
        g.compact()
    }

    // MARK: helpers

    func bad(_ n: ONNXNode, _ reason: String) -> ConvertError {
        .invalidNode(node: n.name, opType: n.opType, reason: reason)
    }

    /// Input i as stored: a permuted value stays permuted (for the ops that understand layouts).
    func rawValue(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> Value {
        guard let name = n.input(i) else { throw bad(n, "input \(i) is missing") }
        guard let v = values[name] else { throw bad(n, "input '\(name)' is not produced by any earlier node") }
        return v
    }

    /// Input i for ops that need the logical layout in storage: a permuted value is copied into
    /// it (once) when that keeps the batch first, refused otherwise.
    mutating func value(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> Value {
        switch try rawValue(n, i) {
        case let .permuted(t, perm):
            guard perm.first == 0 else { throw bad(n, "input \(i) has the batch at axis \(perm.firstIndex(of: 0) ?? -1); \(n.opType) would need it first") }
            let y = try materialize(n, t, perm)
            values[n.inputs[i]] = .tensor(y)
            return .tensor(y)
        case .uniform:
            throw bad(n, "input \(i) is a constant broadcast over the batch (supported as recurrent initial states only)")
        case .batchAffine, .shapeOnly:
            throw bad(n, "input \(i) is computed from a Range over the batch; \(n.opType) cannot read it (only shape arithmetic and GatherND indices can)")
        case .merged:
            throw bad(n, "input \(i) merges the batch with other axes; \(n.opType) would need them apart")
        case let v:
            return v
        }
    }

    mutating func activation(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> Int {
        guard case let .tensor(t) = try value(n, i) else { throw bad(n, "input \(i) must be computed, not constant") }
        return t
    }

    mutating func constant(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> ConstTensor {
        guard case let .constant(c) = try value(n, i) else {
            throw bad(n, "input \(i) ('\(n.inputs[i])') must be a constant (initializer or foldable)")
        }
        return c
    }

    func shape(_ t: Int) -> [Int64] { g.tensors[t].shape }

    /// The MTensor holding a float constant, shared by every node that reads it.
    mutating func floatConstant(_ name: String, _ c: ConstTensor) -> Int {
        if let i = constantIndex[name] { return i }
        let i = g.addConstant(name: name, shape: c.shape.map { Int64($0) }, .float(c.floats))
        constantIndex[name] = i
        return i
    }

    mutating func output(_ n: ONNXNode, shape: [Int64], index: Int = 0, dtype: DType = .float32) -> Int {
        let t = g.add(MTensor(name: n.outputs[index], dtype: dtype, shape: shape))
        values[n.outputs[index]] = .tensor(t)
        return t
    }

    mutating func emit(_ n: ONNXNode, _ opcode: OpCode, _ inputs: [Int], shape: [Int64], _ options: OpOptions = .none,
                       dtype: DType? = nil, outputIndex: Int = 0) {
        if opcode == .copy && shape == g.tensors[inputs[0]].shape {
            values[n.outputs[outputIndex]] = .tensor(inputs[0])  // a reshape to the same shape is a no-op
            return
        }
        // Layout ops keep their input's dtype; the rest compute in float unless told otherwise.
        let keeps: Set<OpCode> = [.copy, .stridedCopy, .concat]
        let y = output(n, shape: shape, index: outputIndex,
                       dtype: dtype ?? (keeps.contains(opcode) ? g.tensors[inputs[0]].dtype : .float32))
        g.ops.append(MOp(opcode: opcode, inputs: inputs, outputs: [y], options: options, name: n.name, sourceType: n.opType))
    }

    /// Broadcast shape of two operands, where -1 (the batch) only meets 1 or -1.
    func broadcast(_ n: ONNXNode, _ a: [Int64], _ b: [Int64]) throws(ConvertError) -> [Int64] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: Int64(1), count: rank - a.count) + a
        let pb = Array(repeating: Int64(1), count: rank - b.count) + b
        var out = [Int64]()
        for i in 0..<rank {
            let x = pa[i], y = pb[i]
            if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else {
                throw bad(n, "shapes \(a) and \(b) do not broadcast")
            }
        }
        guard out.first == -1 else { throw bad(n, "result \(out) has no batch dimension") }
        return out
    }

    // MARK: nodes

    mutating func lower(_ n: ONNXNode) throws(ConvertError) {
        guard n.domain.isEmpty || n.domain == "ai.onnx" else {
            throw .unsupportedOp(node: n.name, opType: "\(n.domain).\(n.opType)", opset: onnx.opset)
        }
        guard !n.outputs.isEmpty, !n.outputs.contains(where: \.isEmpty) || n.opType == "Dropout" else {
            throw bad(n, "node has no (or an empty) output name")
        }
        let present = n.inputs.filter { !$0.isEmpty }
        let allConstant = present.allSatisfy { if case .constant? = values[$0] { return true } else { return false } }
        if try lowerBatchIndexNode(n) { return }
        if try lowerLayoutNode(n) { return }
        if try lowerPermutedNode(n) { return }
        if ConstantFolder.foldable.contains(n.opType) && allConstant {
            for name in present where values[name] == nil { throw bad(n, "input '\(name)' is not produced by any earlier node") }
            let ins: [ConstTensor?] = n.inputs.map { name in
                if case let .constant(c)? = values[name] { return c }
                return nil
            }
            let outs = try ConstantFolder.fold(n, ins)
            for (name, c) in zip(n.outputs, outs) { values[name] = .constant(c) }
            return
        }
        switch n.opType {
        case "Identity", "Dropout":
            values[n.outputs[0]] = try rawValue(n, 0)
        case "Shape":
            // Shape of an activation: known dims fold, the batch becomes the sentinel.
            let s = try logicalShape(n, 0).map { $0 == -1 ? ConstantFolder.batchSentinel : $0 }
            let start = ConstantFolder.clampIndex(Int(n.int("start", default: 0)), s.count)
            let end = max(start, ConstantFolder.clampIndex(Int(n.int("end", default: Int64(s.count))), s.count))
            values[n.outputs[0]] = .constant(ConstTensor(shape: [end - start], ints: Array(s[start..<end])))
        case "MatMul":
            try lowerMatMul(n)
        case "Gemm":
            try lowerGemm(n)
        case "Add", "Sub", "Mul", "Div":
            try lowerBinary(n)
        case "Relu", "Sigmoid", "Tanh":
            let x = try activation(n, 0)
            emit(n, n.opType == "Relu" ? .relu : n.opType == "Sigmoid" ? .sigmoid : .tanh, [x], shape: shape(x))
        case "LeakyRelu":
            let x = try activation(n, 0)
            emit(n, .leakyRelu, [x], shape: shape(x), .leakyRelu(alpha: n.float("alpha", default: 0.01)))
        case "Clip":
            let x = try activation(n, 0)
            let lo = n.input(1) == nil ? -Float.greatestFiniteMagnitude : try constant(n, 1).floats.first ?? 0
            let hi = n.input(2) == nil ? Float.greatestFiniteMagnitude : try constant(n, 2).floats.first ?? 0
            emit(n, .clip, [x], shape: shape(x), .clip(min: lo, max: hi))
        case "Softmax", "LogSoftmax":
            let x = try activation(n, 0)
            var axis = n.int("axis", default: -1)
            if axis < 0 { axis += Int64(shape(x).count) }
            guard axis == Int64(shape(x).count - 1), axis > 0 else { throw bad(n, "softmax over axis \(axis) (only the last axis is supported)") }
            emit(n, n.opType == "Softmax" ? .softmax : .logSoftmax, [x], shape: shape(x), .softmax(axis: -1))
        case "Flatten":
            let x = try activation(n, 0)
            var axis = n.int("axis", default: 1)
            if axis < 0 { axis += Int64(shape(x).count) }
            guard axis == 1 else { throw bad(n, "Flatten with axis \(axis) would merge the batch dimension (only axis 1)") }
            emit(n, .copy, [x], shape: [-1, shape(x).dropFirst().reduce(1, *)])
        case "Reshape":
            let x = try activation(n, 0)
            emit(n, .copy, [x], shape: try reshapeTarget(n, shape(x), try constant(n, 1).ints))
        case "Unsqueeze", "Squeeze":
            let x = try activation(n, 0)
            let axes = n.input(1) != nil ? try constant(n, 1).ints : (n.ints("axes") ?? [])
            var s = shape(x)
            if n.opType == "Unsqueeze" {
                let rank = s.count + axes.count
                for a in axes.map({ $0 < 0 ? $0 + Int64(rank) : $0 }).sorted() {
                    guard a >= 1, a <= Int64(s.count) else { throw bad(n, "axis \(a) touches the batch dimension or is out of range") }
                    s.insert(1, at: Int(a))
                }
            } else {
                let drop = Set(axes.map { $0 < 0 ? $0 + Int64(s.count) : $0 })
                guard !drop.contains(0) else { throw bad(n, "cannot squeeze the batch dimension") }
                s = s.enumerated().filter { $0.offset == 0 || (drop.isEmpty ? $0.element != 1 : !drop.contains(Int64($0.offset))) }.map(\.element)
            }
            emit(n, .copy, [x], shape: s)
        case "Concat":
            var axis = n.int("axis", default: 1)
            var ins: [Int] = []
            for i in n.inputs.indices { ins.append(try activation(n, i)) }
            guard let first = ins.first else { throw bad(n, "no inputs") }
            let rank = shape(first).count
            if axis < 0 { axis += Int64(rank) }
            guard axis >= 1, axis < Int64(rank) else { throw bad(n, "concat along axis \(axis) (the batch axis or out of range)") }
            for t in ins where shape(t).count != rank || shape(t).enumerated().contains(where: { $0.offset != Int(axis) && $0.element != shape(first)[$0.offset] }) {
                throw bad(n, "input shapes \(ins.map(shape)) do not concatenate along axis \(axis)")
            }
            var out = shape(first)
            out[Int(axis)] = ins.map { shape($0)[Int(axis)] }.reduce(0, +)
            emit(n, .concat, ins, shape: out, .concat(axis: Int32(axis)))
        case "BatchNormalization":
            try lowerBatchNorm(n)
        default:
            guard try lowerTensorNode(n) else { throw .unsupportedOp(node: n.name, opType: n.opType, opset: onnx.opset) }
        }
    }

    /// Output shape of Reshape on an activation: dimension 0 must stay the batch.
    func reshapeTarget(_ n: ONNXNode, _ input: [Int64], _ target: [Int64]) throws(ConvertError) -> [Int64] {
        let allowZero = n.int("allowzero", default: 0) != 0
        guard let first = target.first else { throw bad(n, "empty target shape") }
        let rest = Array(target.dropFirst())
        let perSample = input.dropFirst().map { Int($0) }
        func resolveRest() throws(ConvertError) -> [Int64] {
            // Positions shift by one on both sides, so a 0 still copies the matching input dim.
            let dims = try ConstantFolder.resolveReshape(perSample, rest, allowZero: allowZero) { bad(n, $0) }
            return [-1] + dims.map { Int64($0) }
        }
        let isBatch = first == ConstantFolder.batchSentinel || (first == 0 && !allowZero) || (exportedBatch != nil && first == exportedBatch!)
        if isBatch && !rest.contains(ConstantFolder.batchSentinel) { return try resolveRest() }
        if first == -1 && !rest.contains(-1) && !rest.contains(ConstantFolder.batchSentinel) && !rest.contains(0) {
            if let r = checkedProduct(rest), checkedProduct(perSample) == r { return [-1] + rest }
        }
        throw bad(n, "Reshape to \(target.map { $0 == ConstantFolder.batchSentinel ? "batch" : String($0) }) would move the batch dimension")
    }

    private mutating func dense(_ n: ONNXNode, x: Int, weight: ConstTensor, bias: [Float]?) {
        // weight is [N, K] here
        let w = floatConstant(n.name + ".weight", weight)
        var ins = [x, w]
        if let bias { ins.append(floatConstant(n.name + ".bias", ConstTensor(shape: [bias.count], floats: bias))) }
        emit(n, .dense, ins, shape: Array(shape(x).dropLast()) + [Int64(weight.shape[0])], .dense(DenseOptions()))
    }

    private mutating func lowerMatMul(_ n: ONNXNode) throws(ConvertError) {
        if case let .permuted(t, perm) = try rawValue(n, 1), perm.first == 0, case let .tensor(a) = try value(n, 0),
           try lowerTransposedMatMul(n, a, t, perm) {
            return
        }
        if case let .tensor(a) = try value(n, 0), case let .tensor(b) = try value(n, 1) {
            try lowerBatchedMatMul(n, a, b)
            return
        }
        guard case .tensor = try value(n, 0), case let .constant(b) = try value(n, 1) else {
            throw bad(n, "constant x activation products are not supported (transpose the graph to activation x constant)")
        }
        let x = try activation(n, 0)
        guard b.shape.count == 2, Int64(b.shape[0]) == shape(x).last else {
            throw bad(n, "weight shape \(b.shape) does not match input \(shape(x))")
        }
        dense(n, x: x, weight: ConstantFolder.transpose(b, [1, 0]), bias: nil)
    }

    /// Activation x activation (attention): [B, ..., M, K] x [B, ..., K, N] with equal leading
    /// dimensions, or a right operand whose leading dimensions are all 1 (shared by every product).
    private mutating func lowerBatchedMatMul(_ n: ONNXNode, _ a: Int, _ b: Int) throws(ConvertError) {
        let sa = shape(a), sb = shape(b)
        guard g.tensors[a].dtype == .float32, g.tensors[b].dtype == .float32 else { throw bad(n, "MatMul of non-float tensors") }
        guard sa.count >= 3, sb.count == sa.count else {
            throw bad(n, "shapes \(sa) x \(sb): batched products need the same rank >= 3 on both sides")
        }
        let m = sa[sa.count - 2], k = sa[sa.count - 1], k2 = sb[sb.count - 2], nn = sb[sb.count - 1]
        guard k == k2 else { throw bad(n, "inner dimensions \(k) and \(k2) differ") }
        guard case let (leadA, count, bShared)? = Lowering.productLeads(sa, sb) else {
            throw bad(n, "leading dimensions \(Array(sa[1..<(sa.count - 2)])) and \(Array(sb[1..<(sb.count - 2)])) do not match")
        }
        emit(n, .matmul, [a, b], shape: [-1] + leadA + [m, nn],
             .params(ints: [count, m, k, nn, m * k, bShared && count > 1 ? 0 : k * nn], floats: []))
    }

    /// The product dimensions between the batch and the matrices of A [B, ..., M, K] and B [B,
    /// ..., K, N]: A's, their product (the products per sample), and whether B's are all 1 (one
    /// B for every product); nil when they differ otherwise.
    private static func productLeads(_ sa: [Int64], _ sb: [Int64]) -> (lead: [Int64], count: Int64, bShared: Bool)? {
        let leadA = Array(sa[1..<(sa.count - 2)]), leadB = Array(sb[1..<(sb.count - 2)])
        let bShared = leadB.allSatisfy { $0 == 1 }
        guard leadA == leadB || bShared else { return nil }
        return (leadA, leadA.reduce(1, *), bShared)
    }

    /// A x B where B is a layout of storage `t` (B = t transposed by `perm`, batch first): when
    /// B's N axis (or K axis) is contiguous in t and its leading axes collapse to one stride, the
    /// product reads t in place, as K rows of N (or, transposed, N rows of K) at row stride `ldb`,
    /// instead of a copy of B: attention's V and K^T, DLRM's t^T. Returns false (nothing emitted)
    /// when the layout does not allow it.
    private mutating func lowerTransposedMatMul(_ n: ONNXNode, _ a: Int, _ t: Int, _ perm: [Int]) throws(ConvertError) -> Bool {
        let st = shape(t), sa = shape(a)
        let lb = perm.map { st[$0] }
        let r = lb.count
        guard r >= 3, sa.count == r, g.tensors[a].dtype == .float32, g.tensors[t].dtype == .float32,
              st.dropFirst().allSatisfy({ $0 >= 1 }) else { return false }
        // Row-major strides of one sample of t (axis 0 is the batch).
        var strides = [Int64](repeating: 1, count: st.count)
        for i in stride(from: st.count - 2, through: 1, by: -1) { strides[i] = strides[i + 1] * st[i + 1] }
        let m = sa[r - 2], k = sa[r - 1], nn = lb[r - 1]
        let trans = strides[perm[r - 2]] == 1
        guard lb[r - 2] == k, trans || strides[perm[r - 1]] == 1 else { return false }
        let ldb = trans ? strides[perm[r - 1]] : strides[perm[r - 2]]
        guard ldb >= (trans ? k : nn) else { return false }  // rows must not overlap (a unit axis can have any stride)
        guard case let (leadA, count, bShared)? = Lowering.productLeads(sa, lb) else { return false }
        var bStride: Int64 = 0
        if !bShared {
            // The leading axes must step through t by one stride: each outer one a whole number
            // of the inner one's steps.
            for j in 1..<(r - 3) where strides[perm[j]] != strides[perm[j + 1]] * lb[j + 1] { return false }
            bStride = strides[perm[r - 3]]
        }
        emit(n, .matmul, [a, t], shape: [-1] + leadA + [m, nn],
             .params(ints: [count, m, k, nn, m * k, bStride, trans ? 1 : 0, ldb], floats: []))
        return true
    }

    private mutating func lowerGemm(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        guard n.int("transA", default: 0) == 0 else { throw bad(n, "transA=1 is not supported") }
        guard shape(x).count == 2 else { throw bad(n, "Gemm input must be 2-D, found \(shape(x))") }
        var w = try constant(n, 1)
        guard w.shape.count == 2 else { throw bad(n, "weight must be 2-D, found \(w.shape)") }
        if n.int("transB", default: 0) == 0 { w = ConstantFolder.transpose(w, [1, 0]) }
        let k = shape(x)[1], count = w.shape[0]
        guard Int64(w.shape[1]) == k else { throw bad(n, "weight \(w.shape) does not match input \(shape(x))") }
        let alpha = n.float("alpha", default: 1), beta = n.float("beta", default: 1)
        if alpha != 1 { w = ConstTensor(shape: w.shape, floats: w.floats.map { $0 * alpha }) }
        var bias: [Float]?
        if n.input(2) != nil {
            let c = try constant(n, 2)
            guard c.count == count || c.count == 1 else { throw bad(n, "bias C of shape \(c.shape) is not per output channel") }
            let v = c.count == 1 ? Array(repeating: c.floats[0], count: count) : c.floats
            bias = v.map { $0 * beta }
        }
        dense(n, x: x, weight: w, bias: bias)
    }

    mutating func lowerBinary(_ n: ONNXNode) throws(ConvertError) {
        let codes: [String: OpCode] = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow, "Max": .max, "Min": .min]
        let op = codes[n.opType]!
        var ins: [Int] = []
        var shapes: [[Int64]] = []
        for i in 0..<2 {
            switch try value(n, i) {
            case let .tensor(t):
                guard g.tensors[t].dtype == .float32 else {
                    throw bad(n, "arithmetic on \(g.tensors[t].dtype) activations is not supported (Cast them to float first)")
                }
                ins.append(t); shapes.append(shape(t))
            case let .constant(c):
                ins.append(floatConstant(n.inputs[i], c))
                shapes.append(c.shape.map { Int64($0) })
            default:
                throw bad(n, "input \(i) has a layout this op cannot read")
            }
        }
        emit(n, op, ins, shape: try broadcast(n, shapes[0], shapes[1]))
    }

    private mutating func lowerBatchNorm(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let scale = try constant(n, 1).floats, b = try constant(n, 2).floats
        let mean = try constant(n, 3).floats, variance = try constant(n, 4).floats
        let eps = n.float("epsilon", default: 1e-5)
        let s = shape(x)
        guard s.count >= 2, [scale.count, b.count, mean.count, variance.count].allSatisfy({ Int64($0) == s[1] }) else {
            throw bad(n, "parameters do not match channel dimension of \(s)")
        }
        // y = x * a + c with a = scale / sqrt(var + eps), c = b - mean * a (channel axis 1).
        let a = (0..<scale.count).map { scale[$0] / (variance[$0] + eps).squareRoot() }
        let c = (0..<scale.count).map { b[$0] - mean[$0] * a[$0] }
        let cshape = [scale.count] + Array(repeating: 1, count: s.count - 2)
        let ai = floatConstant(n.name + ".bn_scale", ConstTensor(shape: cshape, floats: a))
        let ci = floatConstant(n.name + ".bn_shift", ConstTensor(shape: cshape, floats: c))
        let mid = g.add(MTensor(name: n.outputs[0] + ".bn_scaled", dtype: .float32, shape: s))
        g.ops.append(MOp(opcode: .mul, inputs: [x, ai], outputs: [mid], name: n.name, sourceType: n.opType))
        let y = output(n, shape: s)
        g.ops.append(MOp(opcode: .add, inputs: [mid, ci], outputs: [y], name: n.name, sourceType: n.opType))
    }
}
