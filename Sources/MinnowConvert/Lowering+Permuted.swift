import MinnowFormat

// Ops on values whose batch is not their first logical axis: LSTM/GRU Y_h and Y_c ([D, batch, H]),
// a time-major Y ([S, D, batch, H]) and time-major inputs (`items.t()`). Such a value is stored
// batch-first (Value.permuted). Each op here is rewritten onto the storage: its axes are mapped
// through the permutation, the rewritten node goes through the ordinary lowering, and the result
// keeps the permutation that is left (none, when the batch is first again). `h_n[0]`, `h_n[-1]`,
// `h_n.squeeze(0)`, `cat([h_n[0], h_n[1]], 1)`, `y[-1]` and element-wise ops on them all cost what
// they would on a batch-first tensor, and nothing is transposed at run time.

extension Lowering {
    /// Lowers `n` when one of its inputs is a permuted value with the batch not first; false otherwise.
    mutating func lowerPermutedNode(_ n: ONNXNode) throws(ConvertError) -> Bool {
        var permuted: [Int: (t: Int, perm: [Int])] = [:]
        for i in n.inputs.indices where n.input(i) != nil {
            if case let .permuted(t, perm)? = values[n.inputs[i]], perm.first != 0 { permuted[i] = (t, perm) }
        }
        guard !permuted.isEmpty else { return false }
        switch n.opType {
        case "Gather":
            let axisAttr = n.int("axis", default: 0)
            if let (t, perm) = permuted[0], permuted[1] == nil, case let .constant(idx) = try rawValue(n, 1) {
                // Fixed positions along a non-batch axis: h_n[0], y[-1].
                let a = try normalizedAxis(n, axisAttr, rank: perm.count)
                let s = perm[a]
                guard s != 0 else { throw bad(n, "Gather along the batch axis") }
                guard idx.shape.count <= 1 else { throw bad(n, "Gather with \(idx.shape.count)-D indices of a value whose batch is at axis \(perm.firstIndex(of: 0)!)") }
                let rest = idx.shape.isEmpty ? dropping([a], perm) : perm
                try lowerOnStorage(n, [0: t], attributes: ["axis": .int(Int64(s))], perm: rest)
                return true
            }
            if let (ids, perm) = permuted[1], permuted[0] == nil, case let .constant(table) = try rawValue(n, 0) {
                // An embedding looked up with time-major ids: rows come out in the ids' storage order.
                guard axisAttr == 0 else { throw bad(n, "Gather of a constant along axis \(axisAttr) with computed indices (axis 0 only)") }
                try lowerOnStorage(n, [1: ids], attributes: [:], perm: perm + Array(perm.count..<(perm.count + table.shape.count - 1)))
                return true
            }
        case "Squeeze", "Unsqueeze":
            guard let (t, perm) = permuted[0] else { break }
            let given = n.input(1) != nil ? try constant(n, 1).ints : n.ints("axes")
            if n.opType == "Squeeze" {
                let logical = perm.map { shape(t)[$0] }
                var axes = logical.indices.filter { logical[$0] == 1 && perm[$0] != 0 }
                if let given { axes = []; for a in given { axes.append(try normalizedAxis(n, a, rank: perm.count)) } }
                guard axes.allSatisfy({ perm[$0] != 0 }) else { throw bad(n, "cannot squeeze the batch dimension") }
                try lowerOnStorage(n, [0: t], axes: axes.map { Int64(perm[$0]) }, perm: dropping(axes, perm))
            } else {
                guard let given else { throw bad(n, "Unsqueeze without axes") }
                let rank = perm.count + given.count
                var axes = Set<Int>()
                for a in given { axes.insert(try normalizedAxis(n, a, rank: rank)) }
                // New axes of size 1 go to the end of storage, where they are free.
                var result: [Int] = [], old = 0, new = perm.count
                for j in 0..<rank {
                    if axes.contains(j) { result.append(new); new += 1 } else { result.append(perm[old]); old += 1 }
                }
                try lowerOnStorage(n, [0: t], axes: (perm.count..<rank).map(Int64.init), perm: result)
            }
            return true
        case "Slice":
            guard let (t, perm) = permuted[0], permuted.count == 1 else { break }
            let starts = try constant(n, 1)
            var axes: [Int] = []
            for a in n.input(3) != nil ? try constant(n, 3).ints : (0..<Int64(starts.count)).map({ $0 }) {
                axes.append(try normalizedAxis(n, a, rank: perm.count))
            }
            guard axes.allSatisfy({ perm[$0] != 0 }) else { throw bad(n, "Slice along the batch axis") }
            try lowerOnStorage(n, [0: t], axes: axes.map { Int64(perm[$0]) }, axesInput: 3, perm: perm)
            return true
        case "Concat":
            guard permuted.count == n.inputs.count, let first = permuted[0], permuted.values.allSatisfy({ $0.perm == first.perm }) else {
                throw bad(n, "concatenates values whose batch axes differ (\(n.inputs.indices.map { permuted[$0].map { "\($0.perm)" } ?? "batch first" }.joined(separator: ", ")))")
            }
            let a = try normalizedAxis(n, n.int("axis", default: 0), rank: first.perm.count)
            guard first.perm[a] != 0 else { throw bad(n, "Concat along the batch axis") }
            try lowerOnStorage(n, permuted.mapValues(\.t), attributes: ["axis": .int(Int64(first.perm[a]))], perm: first.perm)
            return true
        case "Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Sqrt", "Erf", "Reciprocal", "LeakyRelu", "Identity", "Dropout", "Cast", "Gelu", "Clip":
            guard let (t, perm) = permuted[0], permuted.count == 1 else { break }
            try lowerOnStorage(n, [0: t], attributes: [:], perm: perm)
            return true
        case "Add", "Sub", "Mul", "Div", "Max", "Min", "Pow":
            guard n.inputs.count == 2, let p = permuted.values.first?.perm else { break }
            var m = n
            for i in 0..<2 {
                if let v = permuted[i] {
                    guard v.perm == p else { throw bad(n, "operands are stored in different layouts (\(v.perm) and \(p))") }
                } else if case let .constant(c) = try rawValue(n, i) {
                    // A constant operand, broadcast as ONNX says, re-laid out in the value's storage order.
                    let name = "\(n.inputs[i])#stored@\(n.name)"
                    values[name] = .constant(try permutedConstant(n, c, p))
                    m.inputs[i] = name
                } else {
                    throw bad(n, "one operand has the batch at axis \(p.firstIndex(of: 0)!), the other first; \(n.opType) would need them alike")
                }
            }
            try lowerOnStorage(m, permuted.mapValues(\.t), attributes: [:], perm: p, original: n)
            return true
        default:
            break
        }
        return false
    }

    /// perm without the logical axes `axes`, renumbered over the storage axes that remain.
    private func dropping(_ axes: [Int], _ perm: [Int]) -> [Int] {
        let gone = axes.map { perm[$0] }
        return perm.indices.filter { !axes.contains($0) }.map { i in perm[i] - gone.filter { $0 < perm[i] }.count }
    }

    /// Lowers `n` with the given inputs bound to stored tensors, its `axes` (attribute before
    /// opset 13, input `axesInput` after) replaced by `axes`, and the result read through `perm`.
    private mutating func lowerOnStorage(_ n: ONNXNode, _ stored: [Int: Int], axes: [Int64], axesInput: Int = 1,
                                         perm: [Int]) throws(ConvertError) {
        var m = n
        var attributes: [String: Attribute] = [:]
        if n.input(axesInput) != nil || axesInput == 3 {
            let name = "\(n.name)#stored_axes"
            values[name] = .constant(ConstTensor(shape: [axes.count], ints: axes))
            while m.inputs.count <= axesInput { m.inputs.append("") }
            m.inputs[axesInput] = name
        } else {
            attributes["axes"] = .ints(axes)
        }
        try lowerOnStorage(m, stored, attributes: attributes, perm: perm, original: n)
    }

    private mutating func lowerOnStorage(_ n: ONNXNode, _ stored: [Int: Int], attributes: [String: Attribute], perm: [Int],
                                         original: ONNXNode? = nil) throws(ConvertError) {
        var m = n
        for (i, t) in stored {
            let name = "\(n.inputs[i])#stored@\(n.name)"
            values[name] = .tensor(t)
            m.inputs[i] = name
        }
        for (k, v) in attributes { m.attributes[k] = v }
        let out = (original ?? n).outputs[0]
        m.outputs = [out + "#stored"]
        let before = g.tensors.count
        try lower(m)
        guard case let .tensor(y)? = values[m.outputs[0]] else { throw bad(n, "could not be computed on the stored layout") }
        if y >= before { g.tensors[y].name = out }
        values[out] = perm == Array(0..<perm.count) ? .tensor(y) : .permuted(y, perm: perm)
    }

    /// Constant c, broadcast to rank perm.count the ONNX way (leading 1s), with its axes in storage
    /// order: stored axis s holds logical axis perm.firstIndex(of: s).
    private func permutedConstant(_ n: ONNXNode, _ c: ConstTensor, _ perm: [Int]) throws(ConvertError) -> ConstTensor {
        let rank = perm.count
        guard c.shape.count <= rank else { throw bad(n, "constant operand of rank \(c.shape.count) on a value of rank \(rank)") }
        let logical = Array(repeating: 1, count: rank - c.shape.count) + c.shape
        let inverse = (0..<rank).map { s in perm.firstIndex(of: s)! }
        let storedShape = inverse.map { logical[$0] }
        let logicalStrides = Lowering.strides(logical.map(Int64.init)).map(Int.init)
        var out = [Int](repeating: 0, count: c.count)
        var index = [Int](repeating: 0, count: rank)
        for k in 0..<c.count {
            // index: position in storage order; the source element is at the logical position.
            var src = 0
            for s in 0..<rank { src += index[s] * (logical[inverse[s]] == 1 ? 0 : logicalStrides[inverse[s]]) }
            out[k] = src
            var s = rank - 1
            while s >= 0 { index[s] += 1; if index[s] < storedShape[s] { break }; index[s] = 0; s -= 1 }
        }
        switch c.values {
        case let .float(f): return ConstTensor(shape: storedShape, floats: out.map { f[$0] })
        case let .int(v): return ConstTensor(shape: storedShape, ints: out.map { v[$0] })
        }
    }
}
