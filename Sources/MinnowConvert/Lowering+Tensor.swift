import MinnowFormat

// Lowering of the ONNX tensor operators that recommendation, sequence and encoder models use:
// layout (Transpose, Slice, Split, Expand, Gather), embeddings, reductions, batched MatMul,
// LayerNormalization, masks (comparisons, logic, Where, Cast) and float math. Every layout op
// becomes one `stridedCopy` whose per-sample dims and strides are computed here, so the runtime
// has a single copy kernel. Dimension 0 (the batch) is never moved, sliced or reduced.

extension Lowering {
    /// Handles `n` if it is one of this file's operators; false when it is not.
    mutating func lowerTensorNode(_ n: ONNXNode) throws(ConvertError) -> Bool {
        switch n.opType {
        case "Slice": try lowerSlice(n)
        case "Split": try lowerSplit(n)
        case "Expand": try lowerExpand(n)
        case "Gather": try lowerGather(n)
        case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2": try lowerReduce(n)
        case "LayerNormalization": try lowerLayerNorm(n)
        case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or": try lowerCompare(n)
        case "Not":
            let x = try activation(n, 0)
            guard g.tensors[x].dtype == .bool else { throw bad(n, "Not of a \(g.tensors[x].dtype) tensor (bool only)") }
            emit(n, .not, [x], shape: shape(x), dtype: .bool)
        case "Where": try lowerWhere(n)
        case "Conv": try lowerConv(n)
        case "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool": try lowerPool(n)
        case "Cast": try lowerCast(n)
        case "Pow": try lowerPow(n)
        case "Max", "Min":
            guard n.inputs.count == 2 else { throw bad(n, "\(n.inputs.count) inputs (two are supported)") }
            try lowerBinary(n)
        case "Exp", "Sqrt", "Erf", "Neg", "Reciprocal":
            let x = try floatActivation(n, 0)
            let codes: [String: OpCode] = ["Exp": .exp, "Sqrt": .sqrt, "Erf": .erf, "Neg": .neg, "Reciprocal": .reciprocal]
            emit(n, codes[n.opType]!, [x], shape: shape(x))
        case "IsNaN":
            // x != x, the one test that holds exactly for NaN: Equal(x, x) then Not.
            let x = try floatActivation(n, 0)
            let eq = g.add(MTensor(name: n.outputs[0] + ".equal", dtype: .bool, shape: shape(x)))
            g.ops.append(MOp(opcode: .equal, inputs: [x, x], outputs: [eq], name: n.name, sourceType: n.opType))
            emit(n, .not, [eq], shape: shape(x), dtype: .bool)
        case "Gelu":
            let x = try floatActivation(n, 0)
            let approximate = n.string("approximate") ?? "none"
            guard approximate == "none" || approximate == "tanh" else { throw bad(n, "approximate='\(approximate)'") }
            emit(n, approximate == "tanh" ? .geluTanh : .gelu, [x], shape: shape(x))
        default:
            return false
        }
        return true
    }

    // MARK: helpers

    mutating func floatActivation(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> Int {
        let x = try activation(n, i)
        guard g.tensors[x].dtype == .float32 else { throw bad(n, "input \(i) is \(g.tensors[x].dtype), expected float32") }
        return x
    }

    /// Row-major element strides of a per-sample shape.
    static func strides(_ dims: [Int64]) -> [Int64] {
        var s = [Int64](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * dims[i + 1] }
        return s
    }

    /// One strided copy from activation `x` into output `index` of `n`. `dims` and `strides`
    /// are per sample (no batch); adjacent dimensions that are contiguous in the input merge.
    mutating func emitStridedCopy(_ n: ONNXNode, _ x: Int, dims: [Int64], strides: [Int64], offset: Int64,
                                  outShape: [Int64], outputIndex: Int = 0) throws(ConvertError) {
        var d: [Int64] = [], s: [Int64] = []
        for (dim, st) in zip(dims, strides) where dim != 1 {
            if let last = d.last, s.last! == st * dim { d[d.count - 1] = last * dim; s[s.count - 1] = st } else { d.append(dim); s.append(st) }
        }
        if d.isEmpty { d = [1]; s = [1] }
        if d.count == 1, s[0] == 1, offset == 0, d[0] == shape(x).dropFirst().reduce(1, *) {
            emit(n, .copy, [x], shape: outShape, outputIndex: outputIndex)  // the whole sample in order: a plain copy
            return
        }
        guard d.count <= 6 else { throw bad(n, "layout change needs \(d.count) dimensions per sample (at most 6)") }
        emit(n, .stridedCopy, [x], shape: outShape, .params(ints: [Int64(d.count)] + d + s + [offset], floats: []),
             outputIndex: outputIndex)
    }

    /// A constant as a tensor of the given dtype (shared by name).
    mutating func typedConstant(_ name: String, _ c: ConstTensor, _ dtype: DType) -> Int {
        let key = "\(name)#\(dtype)"
        if let i = constantIndex[key] { return i }
        let shape = c.shape.map { Int64($0) }
        let i: Int
        switch dtype {
        case .int64: i = g.addConstant(name: name, shape: shape, .int64(c.ints))
        case .int32: i = g.addConstant(name: name, shape: shape, .int32(c.ints.map { Int32(truncatingIfNeeded: $0) }))
        case .bool: i = g.addConstant(name: name, shape: shape, .bool(c.ints.map { $0 != 0 }))
        default: i = g.addConstant(name: name, shape: shape, .float(c.floats))
        }
        constantIndex[key] = i
        return i
    }

    func normalizedAxis(_ n: ONNXNode, _ axis: Int64, rank: Int) throws(ConvertError) -> Int {
        let a = axis < 0 ? axis + Int64(rank) : axis
        guard a >= 0, a < Int64(rank) else { throw bad(n, "axis \(axis) out of range for rank \(rank)") }
        return Int(a)
    }

    // MARK: layout

    private mutating func lowerSlice(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let s = shape(x)
        let starts: [Int64], ends: [Int64], axesIn: [Int64]?, stepsIn: [Int64]?
        if n.input(1) != nil {
            starts = try constant(n, 1).ints
            ends = try constant(n, 2).ints
            axesIn = n.input(3) != nil ? try constant(n, 3).ints : nil
            stepsIn = n.input(4) != nil ? try constant(n, 4).ints : nil
        } else {
            starts = n.ints("starts") ?? []
            ends = n.ints("ends") ?? []
            axesIn = n.ints("axes")
            stepsIn = nil
        }
        let axes = axesIn ?? (0..<Int64(starts.count)).map { $0 }
        let steps = stepsIn ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw bad(n, "starts, ends, axes and steps differ in length")
        }
        var dims = Array(s.dropFirst())
        let inStrides = Lowering.strides(dims)
        var strides = inStrides
        var offset: Int64 = 0
        for k in starts.indices {
            let axis = try normalizedAxis(n, axes[k], rank: s.count)
            let step = steps[k]
            guard step != 0 else { throw bad(n, "step 0") }
            if axis == 0 {
                // Slicing the batch is only allowed when it keeps every sample.
                guard starts[k] == 0 || starts[k] == ConstantFolder.batchSentinel, step == 1,
                      ends[k] >= Int64(Int32.max) || ends[k] == ConstantFolder.batchSentinel else {
                    throw bad(n, "slices the batch dimension")
                }
                continue
            }
            let d = s[axis]
            // ONNX clamping: negative indices count from the end; ranges clamp to the dimension.
            func clamp(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { Swift.max(lo, Swift.min(hi, v)) }
            var start = starts[k] < 0 ? starts[k] + d : starts[k]
            var end = ends[k] < 0 ? ends[k] + d : ends[k]
            if step > 0 { start = clamp(start, 0, d); end = clamp(end, 0, d) } else { start = clamp(start, 0, d - 1); end = clamp(end, -1, d - 1) }
            let count = step > 0 ? Swift.max(0, (end - start + step - 1) / step) : Swift.max(0, (start - end + (-step) - 1) / (-step))
            guard count > 0 else { throw bad(n, "slice of axis \(axis) is empty") }
            dims[axis - 1] = count
            strides[axis - 1] = inStrides[axis - 1] * step
            offset += start * inStrides[axis - 1]
        }
        try emitStridedCopy(n, x, dims: dims, strides: strides, offset: offset, outShape: [-1] + dims)
    }

    private mutating func lowerSplit(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let s = shape(x)
        let axis = try normalizedAxis(n, n.int("axis", default: 0), rank: s.count)
        guard axis >= 1 else { throw bad(n, "splits the batch dimension") }
        let d = s[axis]
        var sizes: [Int64]
        if n.input(1) != nil {
            sizes = try constant(n, 1).ints
        } else if let attr = n.ints("split") {
            sizes = attr
        } else {
            // Equal parts (the last one smaller when it does not divide), as `num_outputs` says.
            let parts = Int64(n.outputs.count)
            let each = (d + parts - 1) / parts
            sizes = (0..<parts).map { Swift.min(each, d - $0 * each) }
        }
        guard sizes.count == n.outputs.count, sizes.allSatisfy({ $0 > 0 }), sizes.reduce(0, +) == d else {
            throw bad(n, "split sizes \(sizes) do not divide dimension \(d) into \(n.outputs.count) outputs")
        }
        let inStrides = Lowering.strides(Array(s.dropFirst()))
        var start: Int64 = 0
        for (i, size) in sizes.enumerated() {
            var dims = Array(s.dropFirst())
            dims[axis - 1] = size
            try emitStridedCopy(n, x, dims: dims, strides: inStrides, offset: start * inStrides[axis - 1],
                                outShape: [-1] + dims, outputIndex: i)
            start += size
        }
    }

    private mutating func lowerExpand(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let s = shape(x)
        let target = try constant(n, 1).ints
        guard target.count <= s.count else {
            throw bad(n, "expanding rank \(s.count) to \(target.count) would move the batch dimension")
        }
        let padded = Array(repeating: Int64(1), count: s.count - target.count) + target
        var out: [Int64] = [-1]
        for i in 1..<s.count {
            let t = padded[i]
            if t == s[i] || t == 1 { out.append(s[i]) } else if s[i] == 1, t > 1 { out.append(t) } else {
                throw bad(n, "shape \(s) does not expand to \(target)")
            }
        }
        let b = padded[0]
        guard b == 1 || b == ConstantFolder.batchSentinel || b == exportedBatch else { throw bad(n, "expands the batch dimension to \(b)") }
        let inStrides = Lowering.strides(Array(s.dropFirst()))
        let strides = (1..<s.count).map { s[$0] == out[$0] ? inStrides[$0 - 1] : 0 }
        try emitStridedCopy(n, x, dims: Array(out.dropFirst()), strides: strides, offset: 0, outShape: out)
    }

    private mutating func lowerGather(_ n: ONNXNode) throws(ConvertError) {
        switch (try value(n, 0), try value(n, 1)) {
        case let (.constant(table), .tensor(ids)):
            // Embedding lookup: a constant table indexed by ids computed at run time.
            guard n.int("axis", default: 0) == 0 || (n.int("axis", default: 0) == -Int64(table.shape.count) && table.shape.count > 0) else {
                throw bad(n, "Gather of a constant along axis \(n.int("axis", default: 0)) with computed indices (axis 0 only)")
            }
            guard table.isFloat, table.shape.count >= 1, table.shape[0] > 0 else { throw bad(n, "table must be a float tensor") }
            guard [.int64, .int32].contains(g.tensors[ids].dtype) else {
                throw bad(n, "indices are \(g.tensors[ids].dtype) (int32 or int64 expected)")
            }
            let rest = table.shape.dropFirst().map { Int64($0) }
            let dim = rest.reduce(1, *)
            let flat = ConstTensor(shape: [table.shape[0], Int(dim)], floats: table.floats)
            let t = floatConstant(n.inputs[0], flat)
            emit(n, .gather, [t, ids], shape: shape(ids) + [dim])
            // An embedding of rank > 2 comes back as [.., rest...].
            if rest.count != 1, case let .tensor(y)? = values[n.outputs[0]] {
                g.tensors[y].shape = shape(ids) + [dim]
                let r = g.add(MTensor(name: n.outputs[0] + ".reshaped", dtype: .float32, shape: shape(ids) + rest))
                g.ops.append(MOp(opcode: .copy, inputs: [y], outputs: [r], name: n.name, sourceType: n.opType))
                values[n.outputs[0]] = .tensor(r)
            }
        case let (.tensor(x), .constant(idx)):
            // Picking fixed positions of an activation (`x[:, 3]`, `z[:, pairs]`).
            let axis = try normalizedAxis(n, n.int("axis", default: 0), rank: shape(x).count)
            try gatherPositions(n, x, axis: axis, idx)
        default:
            throw bad(n, "Gather needs one constant and one computed operand")
        }
    }

    /// Fixed positions `idx` of activation x along `axis` (>= 1): a strided copy when they form a
    /// progression, a per-sample gather otherwise.
    mutating func gatherPositions(_ n: ONNXNode, _ x: Int, axis: Int, _ idx: ConstTensor) throws(ConvertError) {
        let s = shape(x)
        guard axis >= 1 else { throw bad(n, "Gather along the batch dimension") }
        let d = s[axis]
        var picks: [Int64] = []
        for v in idx.ints {
            let i = v < 0 ? v + d : v
            guard i >= 0, i < d else { throw bad(n, "index \(v) out of range for dimension \(d)") }
            picks.append(i)
        }
        let inStrides = Lowering.strides(Array(s.dropFirst()))
        let outShape = Array(s[..<axis]) + idx.shape.map { Int64($0) } + Array(s[(axis + 1)...])
        let step = picks.count > 1 ? picks[1] - picks[0] : 1
        let progression = picks.indices.allSatisfy { picks[$0] == picks[0] + Int64($0) * step }
        if progression {
            var dims = Array(s.dropFirst()), strides = inStrides
            dims[axis - 1] = Int64(picks.count)
            strides[axis - 1] = inStrides[axis - 1] * step
            try emitStridedCopy(n, x, dims: dims, strides: strides, offset: picks[0] * inStrides[axis - 1], outShape: outShape)
        } else {
            // Irregular positions: a gather whose "table" is each sample's rows [outer * d, inner].
            guard g.tensors[x].dtype == .float32 else { throw bad(n, "irregular Gather of a \(g.tensors[x].dtype) activation") }
            let outer = s[1..<axis].reduce(1, *), inner = s[(axis + 1)...].reduce(1, *)
            var rows: [Int64] = []
            for o in 0..<outer { for p in picks { rows.append(o * d + p) } }
            let r = g.addConstant(name: n.name + ".rows", shape: [Int64(rows.count)], .int64(rows))
            emit(n, .gather, [x, r], shape: outShape, .params(ints: [outer * d, inner], floats: []))
        }
    }

    // MARK: math

    private mutating func lowerReduce(_ n: ONNXNode) throws(ConvertError) {
        let x = try floatActivation(n, 0)
        let s = shape(x)
        var axes = n.ints("axes") ?? []
        if n.input(1) != nil { axes = try constant(n, 1).ints }
        if axes.isEmpty {
            guard n.int("noop_with_empty_axes", default: 0) == 0 else { values[n.outputs[0]] = .tensor(x); return }
            throw bad(n, "reduces over every axis, the batch included")
        }
        var norm: [Int] = []
        for a in axes { norm.append(try normalizedAxis(n, a, rank: s.count)) }
        norm = Array(Set(norm)).sorted()
        guard norm.first! >= 1 else { throw bad(n, "reduces over the batch dimension") }
        guard norm.last! - norm.first! + 1 == norm.count else { throw bad(n, "axes \(norm) are not contiguous") }
        let (a, b) = (norm.first!, norm.last!)
        let outer = s[1..<a].reduce(1, *), extent = s[a...b].reduce(1, *), inner = s[(b + 1)...].reduce(1, *)
        let kinds: [String: Int64] = ["ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceL2": 4]
        let keep = n.int("keepdims", default: 1) != 0
        let out = keep ? s.enumerated().map { norm.contains($0.offset) ? 1 : $0.element } : s.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
        emit(n, .reduce, [x], shape: out, .params(ints: [kinds[n.opType]!, outer, extent, inner], floats: []))
    }

    private mutating func lowerLayerNorm(_ n: ONNXNode) throws(ConvertError) {
        let x = try floatActivation(n, 0)
        let s = shape(x)
        let axis = try normalizedAxis(n, n.int("axis", default: -1), rank: s.count)
        guard axis == s.count - 1, axis >= 1 else { throw bad(n, "normalizes from axis \(axis) (only the last axis is supported)") }
        guard n.outputs.count == 1 || n.outputs.dropFirst().allSatisfy({ $0.isEmpty || !onnx.isConsumed($0) }) else {
            throw bad(n, "Mean and InvStdDev outputs are used")
        }
        let gamma = try constant(n, 1)
        guard gamma.count == Int(s[axis]) else { throw bad(n, "scale has \(gamma.count) values for a last axis of \(s[axis])") }
        var ins = [x, floatConstant(n.inputs[1], ConstTensor(shape: [gamma.count], floats: gamma.floats)), -1]
        if n.input(2) != nil {
            let beta = try constant(n, 2)
            guard beta.count == gamma.count else { throw bad(n, "bias has \(beta.count) values, scale \(gamma.count)") }
            ins[2] = floatConstant(n.inputs[2], ConstTensor(shape: [beta.count], floats: beta.floats))
        }
        emit(n, .layerNorm, ins, shape: s, .params(ints: [], floats: [n.float("epsilon", default: 1e-5)]))
    }

    private mutating func lowerPow(_ n: ONNXNode) throws(ConvertError) {
        let x = try floatActivation(n, 0)
        if case let .constant(e) = try value(n, 1), e.count == 1 {
            // The exponents decomposed LayerNorm and L2 norms use: exact and cheaper than powf.
            if e.floats[0] == 2 { emit(n, .mul, [x, x], shape: shape(x)); return }
            if e.floats[0] == 1 { values[n.outputs[0]] = .tensor(x); return }
            if e.floats[0] == 0.5 { emit(n, .sqrt, [x], shape: shape(x)); return }
        }
        try lowerBinary(n)
    }

    // MARK: masks

    /// A tensor index for input i: an activation, or the constant in `dtype`.
    private mutating func operand(_ n: ONNXNode, _ i: Int, dtype: DType) throws(ConvertError) -> Int {
        switch try value(n, i) {
        case let .tensor(t): return t
        case let .constant(c): return typedConstant(n.inputs[i], c, dtype)
        default: throw bad(n, "input \(i) has a layout this op cannot read")  // value() resolves layouts
        }
    }

    private mutating func shapeOf(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> [Int64] {
        switch try value(n, i) {
        case let .tensor(t): return shape(t)
        case let .constant(c): return c.shape.map { Int64($0) }
        default: throw bad(n, "input \(i) has a layout this op cannot read")
        }
    }

    private mutating func activationDType(_ n: ONNXNode, _ indices: [Int]) throws(ConvertError) -> DType? {
        for i in indices { if case let .tensor(t) = try value(n, i) { return g.tensors[t].dtype } }
        return nil
    }

    private mutating func lowerCompare(_ n: ONNXNode) throws(ConvertError) {
        let logic = n.opType == "And" || n.opType == "Or"
        guard let found = try activationDType(n, [0, 1]) else { throw bad(n, "no computed operand") }
        let dtype: DType = logic ? .bool : (found == .int32 ? .int64 : found)
        guard logic || dtype == .float32 || dtype == .int64 else { throw bad(n, "compares \(found) tensors (float32 or int64 only)") }
        var ins: [Int] = []
        for i in 0..<2 {
            let t = try operand(n, i, dtype: dtype)
            guard g.tensors[t].dtype == dtype else { throw bad(n, "operands are \(g.tensors[t].dtype) and \(dtype)") }
            ins.append(t)
        }
        let codes: [String: OpCode] = ["Equal": .equal, "Less": .less, "Greater": .greater, "And": .and, "Or": .or,
                                       "LessOrEqual": .less, "GreaterOrEqual": .greater]
        let out = try broadcast(n, try shapeOf(n, 0), try shapeOf(n, 1))
        if n.opType.hasSuffix("OrEqual") {
            // a <= b as (a < b) or (a == b): exact for NaN too (both false).
            let strict = g.add(MTensor(name: n.outputs[0] + ".strict", dtype: .bool, shape: out))
            let equal = g.add(MTensor(name: n.outputs[0] + ".equal", dtype: .bool, shape: out))
            g.ops.append(MOp(opcode: codes[n.opType]!, inputs: ins, outputs: [strict], name: n.name, sourceType: n.opType))
            g.ops.append(MOp(opcode: .equal, inputs: ins, outputs: [equal], name: n.name, sourceType: n.opType))
            emit(n, .or, [strict, equal], shape: out, dtype: .bool)
            return
        }
        emit(n, codes[n.opType]!, ins, shape: out, dtype: .bool)
    }

    private mutating func lowerWhere(_ n: ONNXNode) throws(ConvertError) {
        let dtype = try activationDType(n, [1, 2]) ?? .float32
        let c = try operand(n, 0, dtype: .bool)
        guard g.tensors[c].dtype == .bool else { throw bad(n, "condition is \(g.tensors[c].dtype), expected bool") }
        let a = try operand(n, 1, dtype: dtype), b = try operand(n, 2, dtype: dtype)
        guard g.tensors[a].dtype == g.tensors[b].dtype else { throw bad(n, "branches are \(g.tensors[a].dtype) and \(g.tensors[b].dtype)") }
        let out = try broadcast(n, try broadcast(n, try shapeOf(n, 0), try shapeOf(n, 1)), try shapeOf(n, 2))
        emit(n, .where, [c, a, b], shape: out, dtype: dtype)
    }

    private mutating func lowerCast(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let types: [Int64: DType] = [1: .float32, 10: .float32, 11: .float32, 6: .int32, 7: .int64, 9: .bool]
        let to = n.int("to", default: 1)
        guard let dtype = types[to] else { throw bad(n, "cast to ONNX type \(to) (float, int32, int64 and bool are supported)") }
        if g.tensors[x].dtype == dtype { values[n.outputs[0]] = .tensor(x); return }
        emit(n, .cast, [x], shape: shape(x), dtype: dtype)
    }
}
