import MinnowFormat

// Values whose logical axes are a permutation of their storage (Value.permuted), and the ops
// that create and consume them without copying: Transpose composes permutations, Reshape merges
// axes that are adjacent in storage, Shape reads the logical shape, and LSTM/GRU read and write
// time-major values while storing them batch-first. An export that moves the batch to axis 1
// around an RNN (torch: transpose -> LSTM -> transpose/reshape -> transpose) thus lowers with the
// batch first in every stored tensor, and the transposes cost nothing.

extension Lowering {
    /// Handles layout-aware nodes; false when `n` is for the ordinary lowering.
    mutating func lowerLayoutNode(_ n: ONNXNode) throws(ConvertError) -> Bool {
        switch n.opType {
        case "Transpose":
            guard case .tensor = try rawValue(n, 0) else { break }
            try lowerTranspose(n)
            return true
        case "LSTM", "GRU":
            try lowerRecurrent(n)
            return true
        case "Gather":
            // An embedding looked up with the same id everywhere (Hugging Face's token_type_ids
            // buffer of zeros): one row, which broadcasts wherever it is added.
            guard n.inputs.count == 2, case let .constant(table) = try rawValue(n, 0), case let .uniform(v) = try rawValue(n, 1) else { break }
            let readers = onnx.nodes.filter { $0.inputs.contains(n.outputs[0]) }
            guard n.int("axis", default: 0) == 0, table.shape.count >= 2, !onnx.outputs.contains(where: { $0.name == n.outputs[0] }),
                  readers.allSatisfy({ ["Add", "Sub", "Mul"].contains($0.opType) }) else {
                throw bad(n, "looks up one id for the whole batch; supported only where the row is added or multiplied in")
            }
            let rows = table.shape[0], row = Int(v < 0 ? Float(rows) + v : v)
            guard v.rounded() == v, row >= 0, row < rows else { throw bad(n, "id \(v) outside the table's \(rows) rows") }
            let dim = table.count / rows
            values[n.outputs[0]] = .constant(ConstTensor(shape: Array(table.shape.dropFirst()), floats: Array(table.floats[(row * dim)..<((row + 1) * dim)])))
            return true
        case "ConstantOfShape":
            // Zeros (or one value) shaped by the batch: the TorchScript exporter's RNN initial states.
            guard case let .constant(target) = try rawValue(n, 0), target.ints.contains(ConstantFolder.batchSentinel) else { return false }
            var v: Float = 0
            if case let .tensor(c)? = n.attributes["value"] { v = c.floats.first ?? 0 }
            values[n.outputs[0]] = .uniform(v)
            return true
        case "Expand":
            // A constant broadcast over the batch: every element the same (zeros for RNN states).
            guard case let .constant(c) = try rawValue(n, 0), case let .constant(target) = try rawValue(n, 1),
                  target.ints.contains(ConstantFolder.batchSentinel) else { return false }
            let v = c.floats
            guard let first = v.first, v.allSatisfy({ $0 == first }) else { throw bad(n, "broadcasts a non-uniform constant over the batch") }
            values[n.outputs[0]] = .uniform(first)
            return true
        default:
            break
        }
        let inputs = n.inputs.indices.compactMap { n.input($0) }.compactMap { values[$0] }
        if case let .uniform(v)? = inputs.first, ["Slice", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Transpose", "Cast"].contains(n.opType) {
            values[n.outputs[0]] = .uniform(v)  // still every element `v`, whatever the shape
            return true
        }
        if case let .permuted(t, perm)? = inputs.first {
            switch n.opType {
            case "Transpose": try transposePermuted(n, t, perm); return true
            case "Reshape": try reshapePermuted(n, t, perm); return true
            default: break
            }
        }
        return false
    }

    /// The logical shape of input i (batch as -1).
    mutating func logicalShape(_ n: ONNXNode, _ i: Int) throws(ConvertError) -> [Int64] {
        if case let .permuted(t, perm) = try rawValue(n, i) { return perm.map { shape(t)[$0] } }
        return shape(try activation(n, i))
    }

    /// Per-sample dims and element strides that read stored tensor t in the order `perm` (perm[0] = 0).
    func permutedLayout(_ t: Int, _ perm: [Int]) -> (dims: [Int64], strides: [Int64]) {
        let s = shape(t)
        let storageStrides = Lowering.strides(Array(s.dropFirst()))
        return (perm.dropFirst().map { s[$0] }, perm.dropFirst().map { storageStrides[$0 - 1] })
    }

    /// A strided copy of stored tensor t into its logical layout (perm[0] must be 0).
    mutating func materialize(_ n: ONNXNode, _ t: Int, _ perm: [Int]) throws(ConvertError) -> Int {
        let (dims, strides) = permutedLayout(t, perm)
        guard dims.count <= 6 else { throw bad(n, "layout change needs \(dims.count) dimensions per sample (at most 6)") }
        let y = g.add(MTensor(name: g.tensors[t].name + ".layout", dtype: g.tensors[t].dtype, shape: [-1] + dims))
        g.ops.append(MOp(opcode: .stridedCopy, inputs: [t], outputs: [y],
                         options: .params(ints: [Int64(dims.count)] + dims + strides + [0], floats: []), name: n.name, sourceType: n.opType))
        return y
    }

    private mutating func lowerTranspose(_ n: ONNXNode) throws(ConvertError) {
        let x = try activation(n, 0)
        let rank = shape(x).count
        let perm = (n.ints("perm") ?? (0..<Int64(rank)).reversed().map { $0 }).map(Int.init)
        guard perm.sorted() == Array(0..<rank) else { throw bad(n, "perm \(perm) is not a permutation of \(rank) axes") }
        try transposePermuted(n, x, Array(0..<rank))
    }

    /// Transpose of a value stored as t with permutation p: compose, and copy only when the result
    /// has the batch first but a different order from storage.
    private mutating func transposePermuted(_ n: ONNXNode, _ t: Int, _ p: [Int]) throws(ConvertError) {
        let q = (n.ints("perm") ?? (0..<Int64(p.count)).reversed().map { $0 }).map(Int.init)
        guard q.sorted() == Array(0..<p.count) else { throw bad(n, "perm \(q) is not a permutation of \(p.count) axes") }
        let c = q.map { p[$0] }
        if c == Array(0..<c.count) {
            values[n.outputs[0]] = .tensor(t)
        } else if c[0] == 0 && onlyReadAsMatMulRight(n.outputs[0]) {
            // Attention's K^T or V heads, DLRM's t^T: left as a layout that the product reads in
            // place as its right operand (lowerTransposedMatMul), so nothing is copied. Where it
            // cannot, the product copies it once (value(_:_:)).
            values[n.outputs[0]] = .permuted(t, perm: c)
        } else if c[0] == 0 {
            let (dims, strides) = permutedLayout(t, c)
            try emitStridedCopy(n, t, dims: dims, strides: strides, offset: 0, outShape: [-1] + dims)
        } else {
            values[n.outputs[0]] = .permuted(t, perm: c)
        }
    }

    /// Whether every reader of `name` is a MatMul taking it as its right operand (and it is not
    /// a graph output).
    func onlyReadAsMatMulRight(_ name: String) -> Bool {
        let readers = onnx.nodes.filter { $0.inputs.contains(name) }
        return !readers.isEmpty && !onnx.outputs.contains(where: { $0.name == name })
            && readers.allSatisfy { $0.opType == "MatMul" && $0.inputs.count == 2 && $0.inputs[1] == name && $0.inputs[0] != name }
    }

    /// Reshape of a permuted value: each target dimension must be a run of logical axes that are
    /// also adjacent, in order, in storage (merging; splitting is not supported).
    private mutating func reshapePermuted(_ n: ONNXNode, _ t: Int, _ p: [Int]) throws(ConvertError) {
        let logical = p.map { shape(t)[$0] }
        var target = try constant(n, 1).ints
        let allowZero = n.int("allowzero", default: 0) != 0
        for i in target.indices where target[i] == 0 && !allowZero && i < logical.count { target[i] = logical[i] == -1 ? ConstantFolder.batchSentinel : logical[i] }
        let known = target.filter { $0 != -1 && $0 != ConstantFolder.batchSentinel }.reduce(1, *)
        let total = logical.filter { $0 != -1 }.reduce(1, *)
        if let inferred = target.firstIndex(of: -1), known > 0 {
            let batchNamed = target.contains(ConstantFolder.batchSentinel) || exportedBatch.map { target.contains($0) } == true
            if logical.contains(-1), !batchNamed {
                // The -1 covers the batch (torch: y.reshape(S, -1, H) of a time-major output).
                guard total == known else { throw bad(n, "target \(target) merges the batch with other axes of a transposed value") }
                target[inferred] = ConstantFolder.batchSentinel
            } else {
                target[inferred] = total / known
            }
        }
        var groups: [[Int]] = []
        var axis = 0
        for d in target {
            guard axis < logical.count else { throw bad(n, "target \(target) does not match logical shape \(logical)") }
            if d == ConstantFolder.batchSentinel || (logical[axis] == -1 && d == exportedBatch) {
                guard logical[axis] == -1 else { throw bad(n, "target \(target) moves the batch") }
                groups.append([axis]); axis += 1; continue
            }
            var run: [Int] = [], product: Int64 = 1
            while axis < logical.count, logical[axis] != -1, product < d { product *= logical[axis]; run.append(axis); axis += 1 }
            while axis < logical.count, logical[axis] == 1, product == d, !run.isEmpty, p[axis] == p[run.last!] + 1 { run.append(axis); axis += 1 }
            guard product == d, !run.isEmpty else { throw bad(n, "reshape of a transposed value to \(target) splits an axis (only merges are supported)") }
            groups.append(run)
        }
        guard axis == logical.count else { throw bad(n, "target \(target) does not cover logical shape \(logical)") }
        for grp in groups where grp.count > 1 {
            for (a, b) in zip(grp, grp.dropFirst()) where p[b] != p[a] + 1 {
                throw bad(n, "merges axes that are not adjacent in storage (the value is a transpose)")
            }
        }
        // Storage order of the groups, and the new logical -> storage permutation.
        let order = groups.indices.sorted { p[groups[$0][0]] < p[groups[$1][0]] }
        let storageShape = order.map { gi in groups[gi].map { logical[$0] }.reduce(1) { $0 == -1 || $1 == -1 ? -1 : $0 * $1 } }
        let newPerm = groups.indices.map { gi in order.firstIndex(of: gi)! }
        let stored = g.add(MTensor(name: n.outputs[0] + ".stored", dtype: g.tensors[t].dtype, shape: storageShape))
        g.ops.append(MOp(opcode: .copy, inputs: [t], outputs: [stored], name: n.name, sourceType: n.opType))
        values[n.outputs[0]] = newPerm == Array(0..<newPerm.count) ? .tensor(stored) : .permuted(stored, perm: newPerm)
    }

    // MARK: LSTM and GRU

    private mutating func lowerRecurrent(_ n: ONNXNode) throws(ConvertError) {
        let lstm = n.opType == "LSTM"
        let gates: Int64 = lstm ? 4 : 3
        let batchFirst = n.int("layout", default: 0) == 1
        // X: [S, B, I] logically (layout 0), stored batch-first.
        let x: Int
        switch try rawValue(n, 0) {
        case let .permuted(t, perm) where !batchFirst && perm == [1, 0, 2]: x = t
        case let .tensor(t) where batchFirst: x = t
        default: throw bad(n, "input X must be time-major over a batch-first tensor (a Transpose of it), or layout=1")
        }
        guard g.tensors[x].dtype == .float32, shape(x).count == 3 else { throw bad(n, "X must be float32 [batch, steps, input]") }
        let steps = shape(x)[1], inputSize = shape(x)[2]
        let hidden = n.int("hidden_size", default: 0)
        let direction = n.string("direction") ?? "forward"
        guard direction == "forward" || direction == "bidirectional" else { throw bad(n, "direction '\(direction)' (forward and bidirectional are supported)") }
        let dirs: Int64 = direction == "bidirectional" ? 2 : 1
        guard n.attributes["activations"] == nil, n.attributes["clip"] == nil, n.int("input_forget", default: 0) == 0 else {
            throw bad(n, "custom activations, clip or input_forget are not supported")
        }
        guard n.input(4) == nil else { throw bad(n, "sequence_lens is not supported (pad and mask instead)") }
        for i in 5..<(lstm ? 7 : 6) where n.input(i) != nil {
            guard case .uniform(0) = try rawValue(n, i) else { throw bad(n, "initial state \(i) must be absent or zeros") }
        }
        guard lstm ? n.input(7) == nil : true else { throw bad(n, "peephole weights P are not supported") }
        let w = try constant(n, 1), r = try constant(n, 2)
        guard hidden > 0, w.shape.map(Int64.init) == [dirs, gates * hidden, inputSize], r.shape.map(Int64.init) == [dirs, gates * hidden, hidden] else {
            throw bad(n, "W \(w.shape) or R \(r.shape) does not match hidden \(hidden), input \(inputSize), directions \(dirs)")
        }
        var ins = [x, floatConstant(n.inputs[1], w), floatConstant(n.inputs[2], r), -1]
        if n.input(3) != nil {
            let b = try constant(n, 3)
            guard b.shape.map(Int64.init) == [dirs, 2 * gates * hidden] else { throw bad(n, "B \(b.shape) does not match") }
            ins[3] = floatConstant(n.inputs[3], b)
        }
        let params: [Int64] = [steps, inputSize, hidden, dirs] + (lstm ? [] : [n.int("linear_before_reset", default: 0)])
        let y = g.add(MTensor(name: n.outputs[0].isEmpty ? n.name + ".y" : n.outputs[0], dtype: .float32, shape: [-1, steps, dirs, hidden]))
        var outs = [y]
        if lstm, n.outputs.count > 2, !n.outputs[2].isEmpty, onnx.isConsumed(n.outputs[2]) {
            // Y_c, the final cell state: the LSTM's second output, [D, H] per sample (ONNX [D, B, H]).
            let yc = g.add(MTensor(name: n.outputs[2], dtype: .float32, shape: [-1, dirs, hidden]))
            outs.append(yc)
            values[n.outputs[2]] = batchFirst ? .tensor(yc) : .permuted(yc, perm: [1, 0, 2])
        }
        g.ops.append(MOp(opcode: lstm ? .lstm : .gru, inputs: ins, outputs: outs, options: .params(ints: params, floats: []),
                         name: n.name, sourceType: n.opType))
        if !n.outputs[0].isEmpty {
            // Y is [S, D, B, H] logically (layout 0); stored [B, S, D, H].
            values[n.outputs[0]] = batchFirst ? .tensor(y) : .permuted(y, perm: [1, 2, 0, 3])
        }
        if n.outputs.count > 1, !n.outputs[1].isEmpty, onnx.isConsumed(n.outputs[1]) {
            // Y_h: the forward direction's last step and the backward direction's first, [D, H] per sample.
            let dh = dirs * hidden
            let yh = g.add(MTensor(name: n.outputs[1], dtype: .float32, shape: [-1, dirs, hidden]))
            g.ops.append(MOp(opcode: .stridedCopy, inputs: [y], outputs: [yh],
                             options: .params(ints: [2, dirs, hidden, hidden - (steps - 1) * dh, 1, (steps - 1) * dh], floats: []),
                             name: n.name, sourceType: n.opType))
            values[n.outputs[1]] = batchFirst ? .tensor(yh) : .permuted(yh, perm: [1, 0, 2])
        }
    }
}
