import MinnowFormat

// Two exporter idioms that mention the batch inside a value, lowered without giving up the
// per-sample memory plan:
//
// * Index tensors built from `Range(0, batch)` (Hugging Face's `masking_utils` looks the padding
//   mask up as `mask[batch_idx, kv_idx]`, a GatherND). Such a tensor is affine in the batch index
//   b: value = base + coef * b, with `base` and `coef` constants whose axis 0 has size 1
//   (`Value.batchAffine`). Shape arithmetic (Unsqueeze, Expand, Concat, Reshape, Cast) is folded
//   on both parts; GatherND whose first index component is b itself becomes a per-sample Gather.
//   Elementwise ops on it whose results only feed `Shape` keep just the shape (`Value.shapeOnly`).
// * torchlib's scaled_dot_product_attention transposes K as Reshape([-1, L, d]) ->
//   Transpose([0, 2, 1]) -> Reshape([batch, heads, d, L]), merging the batch with the heads for a
//   moment. The merged value keeps its storage (`Value.merged`): a Transpose of its trailing axes
//   and a Reshape that splits the batch back out cost nothing; anything else is refused.

extension Lowering {
    /// Handles nodes that create or read batch-index and batch-merged values; false otherwise.
    mutating func lowerBatchIndexNode(_ n: ONNXNode) throws(ConvertError) -> Bool {
        let ins = n.inputs.map { $0.isEmpty ? nil : values[$0] }
        let touches = ins.contains { v in
            switch v {
            case .batchAffine?, .shapeOnly?, .merged?: return true
            default: return false
            }
        }
        if n.opType == "Range", case let .constant(start)? = ins.first, ins.count == 3, case let .constant(limit)? = ins[1],
           case let .constant(delta)? = ins[2], limit.ints.first == ConstantFolder.batchSentinel {
            guard !start.isFloat, start.ints == [0], delta.ints == [1] else { throw bad(n, "a range over the batch must be Range(0, batch, 1)") }
            values[n.outputs[0]] = .batchAffine(base: ConstTensor(shape: [1], ints: [0]), coef: ConstTensor(shape: [1], ints: [1]))
            return true
        }
        if n.opType == "Reshape", case let .tensor(t)? = ins.first, case let .constant(target)? = ins.dropFirst().first,
           let merged = try batchMergingReshape(n, t, target.ints) {
            values[n.outputs[0]] = merged
            return true
        }
        if n.opType == "Expand", case let .constant(c)? = ins.first, case let .constant(target)? = ins.dropFirst().first,
           target.ints.contains(ConstantFolder.batchSentinel), !c.isFloat, Set(c.ints).count > 1 {
            // A non-uniform integer constant broadcast over the batch (the kv positions of a mask
            // lookup); uniform ones are Lowering+Layout's `uniform` values.
            let (b, _) = try foldAffine(n, base: [c, target], coef: [zeros(like: c), target])
            values[n.outputs[0]] = .batchAffine(base: b, coef: zeros(like: b))
            return true
        }
        guard touches else { return false }
        if n.opType == "Reshape", case let .merged(t, perm, lead)? = ins.first {
            try unmerge(n, t, perm, lead)
            return true
        }
        switch n.opType {
        case "Shape":
            let s: [Int64]
            switch ins[0] {
            case let .batchAffine(base, _)?: s = [ConstantFolder.batchSentinel] + base.shape.dropFirst().map { Int64($0) }
            case let .shapeOnly(shape)?: s = shape.map { $0 == -1 ? ConstantFolder.batchSentinel : $0 }
            default: throw bad(n, "the shape of a value that merges the batch with other axes")
            }
            let start = ConstantFolder.clampIndex(Int(n.int("start", default: 0)), s.count)
            let end = max(start, ConstantFolder.clampIndex(Int(n.int("end", default: Int64(s.count))), s.count))
            values[n.outputs[0]] = .constant(ConstTensor(shape: [end - start], ints: Array(s[start..<end])))
        case "Unsqueeze", "Squeeze", "Expand", "Reshape", "Cast", "Identity", "Concat":
            // A cast to float or bool is not affine in b (bool: b != 0); integer casts are.
            if n.opType == "Cast", ![6, 7].contains(n.int("to", default: 1)) {
                throw bad(n, "cast of a batch-index tensor to ONNX type \(n.int("to", default: 1)) (integer casts only)")
            }
            let data = n.opType == "Concat" ? Array(n.inputs.indices) : [0]
            var bases: [ConstTensor?] = [], coefs: [ConstTensor?] = []
            for (i, v) in ins.enumerated() {
                switch v {
                case let .batchAffine(b, c)? where data.contains(i): bases.append(b); coefs.append(c)
                case .uniform? where n.opType == "Concat" && data.contains(i):
                    // An index component equal for every sample (b's coefficient 0): torch's
                    // kv positions Range(0, L) expanded over the batch are uniform at L = 1.
                    guard let c = try replayOverBatch(n.inputs[i]), !c.isFloat, c.shape.first == 1 else {
                        throw bad(n, "input \(i) mixes a batch-index tensor with a value that is not one")
                    }
                    bases.append(c); coefs.append(zeros(like: c))
                case let .constant(c)? where !data.contains(i): bases.append(c); coefs.append(c)
                case nil where !data.contains(i): bases.append(nil); coefs.append(nil)
                default: throw bad(n, "input \(i) mixes a batch-index tensor with a value that is not one")
                }
            }
            let (b, c) = try foldAffine(n, base: bases, coef: coefs)
            values[n.outputs[0]] = .batchAffine(base: b, coef: c)
        case "Max", "Min", "Add", "Sub", "Mul", "Equal", "Less", "Greater", "And", "Or", "Where":
            // Only its shape can be used (torch computes broadcast shapes this way).
            var shapes: [[Int64]] = []
            for (i, v) in ins.enumerated() {
                switch v {
                case let .batchAffine(b, _)?: shapes.append([-1] + b.shape.dropFirst().map { Int64($0) })
                case let .shapeOnly(s)?: shapes.append(s)
                case let .constant(c)?: shapes.append(c.shape.map { Int64($0) })
                case let .tensor(t)?: shapes.append(shape(t))
                default: throw bad(n, "input \(i) has a layout this op cannot read")
                }
            }
            var out = shapes[0]
            for s in shapes.dropFirst() { out = try broadcast(n, out, s) }
            values[n.outputs[0]] = .shapeOnly(out)
        case "GatherND":
            try lowerBatchGatherND(n)
        case "Transpose":
            guard case let .merged(t, perm, lead)? = ins[0] else { return false }
            let q = (n.ints("perm") ?? []).map(Int.init)
            guard q.sorted() == Array(0..<(perm.count - lead)), q.first == 0 else {
                throw bad(n, "perm \(q) moves the merged batch axis")
            }
            // Logical axis i >= 1 of the merged value is unmerged axis i + lead.
            let newPerm = Array(perm[0...lead]) + q.dropFirst().map { perm[$0 + lead] }
            values[n.outputs[0]] = .merged(t, perm: newPerm, lead: lead)
        default:
            for (i, v) in ins.enumerated() {
                switch v {
                case .batchAffine?: throw bad(n, "input \(i) depends on the batch index (a Range over the batch); \(n.opType) cannot read it (only shape arithmetic and GatherND indices can)")
                case .shapeOnly?: throw bad(n, "input \(i) is computed from a Range over the batch; only its shape is supported")
                case .merged?: throw bad(n, "input \(i) merges the batch with other axes; \(n.opType) would need them apart")
                default: continue
                }
            }
            return false
        }
        return true
    }

    private func zeros(like c: ConstTensor) -> ConstTensor { ConstTensor(shape: c.shape, ints: Array(repeating: 0, count: c.count)) }

    /// A `uniform` value (a constant Expanded over the batch, then reshaped) as the constant it
    /// is for one sample, batch axis 1: the Expand and the shape ops after it are folded again
    /// with the batch taken as 1. Nil when `name` was made some other way.
    private func replayOverBatch(_ name: String, depth: Int = 0) throws(ConvertError) -> ConstTensor? {
        guard depth < 16, let node = onnx.nodes.first(where: { $0.outputs.first == name }) else { return nil }
        var ins: [ConstTensor?] = []
        for (k, input) in node.inputs.enumerated() {
            if k == 0, node.opType != "Expand" {
                guard let x = try replayOverBatch(input, depth: depth + 1) else { return nil }
                ins.append(x)
            } else if input.isEmpty {
                ins.append(nil)
            } else {
                guard case let .constant(c)? = values[input] else { return nil }
                // A shape operand's batch entry becomes 1.
                ins.append(k == 1 && ["Expand", "Reshape"].contains(node.opType) && !c.isFloat
                           ? ConstTensor(shape: c.shape, ints: c.ints.map { $0 == ConstantFolder.batchSentinel ? 1 : $0 }) : c)
            }
        }
        guard ["Expand", "Unsqueeze", "Squeeze", "Reshape", "Identity", "Cast"].contains(node.opType) else { return nil }
        return try ConstantFolder.fold(node, ins)[0]
    }

    /// Folds node `n` on the constant part and on the batch coefficient separately. Axis 0 of
    /// both stays 1 (it stands for the batch): a target shape's batch entry becomes 1.
    private func foldAffine(_ n: ONNXNode, base: [ConstTensor?], coef: [ConstTensor?]) throws(ConvertError) -> (ConstTensor, ConstTensor) {
        var base = base, coef = coef
        if ["Expand", "Reshape"].contains(n.opType), base.count > 1, let target = base[1] {
            guard target.ints.first == ConstantFolder.batchSentinel || target.ints.first == 1 || target.ints.first == 0,
                  !target.ints.dropFirst().contains(ConstantFolder.batchSentinel) else {
                throw bad(n, "target \(target.ints) moves the batch of a batch-index tensor")
            }
            let fixed = ConstTensor(shape: target.shape, ints: [1] + target.ints.dropFirst())
            base[1] = fixed; coef[1] = fixed
        }
        if ["Unsqueeze", "Squeeze"].contains(n.opType) {
            let axes = base.count > 1 ? base[1]?.ints : n.ints("axes")
            let rank = (base[0]?.shape.count ?? 0) + (n.opType == "Unsqueeze" ? axes?.count ?? 0 : 0)
            guard let axes, !axes.map({ $0 < 0 ? $0 + Int64(rank) : $0 }).contains(0) else {
                throw bad(n, "\(n.opType) of a batch-index tensor must name axes other than the batch")
            }
        }
        let b = try ConstantFolder.fold(n, base)[0]
        let c = try ConstantFolder.fold(n, coef)[0]
        guard b.shape == c.shape, b.shape.first == 1 else { throw bad(n, "batch-index tensor lost its batch axis (shape \(b.shape))") }
        return (b, c)
    }

    /// GatherND(data, indices) whose indices' first component is the sample's own batch index and
    /// whose other components are constants: a Gather of fixed positions within each sample.
    private mutating func lowerBatchGatherND(_ n: ONNXNode) throws(ConvertError) {
        guard n.int("batch_dims", default: 0) == 0 else { throw bad(n, "batch_dims \(n.int("batch_dims", default: 0)) (0 is supported)") }
        guard case let .tensor(x) = try value(n, 0) else { throw bad(n, "data must be computed") }
        guard case let .batchAffine(base, coef)? = values[n.inputs[1]] else { throw bad(n, "indices must be a batch-index tensor") }
        let s = shape(x)
        guard let k = base.shape.last, k >= 2, k <= s.count else { throw bad(n, "index depth \(base.shape.last ?? 0) for data of rank \(s.count)") }
        let b = base.ints, c = coef.ints
        let points = base.count / k
        var flat: [Int64] = []
        let merged = s[1..<k].reduce(1, *)
        for p in 0..<points {
            guard b[p * k] == 0, c[p * k] == 1 else { throw bad(n, "the first index component is not the sample's own batch index") }
            var pos: Int64 = 0
            for j in 1..<k {
                guard c[p * k + j] == 0 else { throw bad(n, "index component \(j) depends on the batch index") }
                var v = b[p * k + j]
                if v < 0 { v += s[j] }
                guard v >= 0, v < s[j] else { throw bad(n, "index \(b[p * k + j]) out of range for dimension \(s[j])") }
                pos = pos * s[j] + v
            }
            flat.append(pos)
        }
        // data [B, d1..d(k-1), rest...] read as [B, d1*...*d(k-1), rest...]; positions keep the
        // indices' shape without the batch and the depth axes.
        var src = x
        if k > 2 {
            src = g.add(MTensor(name: n.outputs[0] + ".flat", dtype: g.tensors[x].dtype, shape: [-1, merged] + s[k...]))
            g.ops.append(MOp(opcode: .copy, inputs: [x], outputs: [src], name: n.name, sourceType: n.opType))
        }
        let idx = ConstTensor(shape: Array(base.shape.dropFirst().dropLast()), ints: flat)
        try gatherPositions(n, src, axis: 1, idx)
    }

    /// Reshape([-1, tail...]) of a stored tensor whose logical shape ends in `tail`: the axes before
    /// the tail merge into the batch (nil when the reshape is an ordinary one).
    private mutating func batchMergingReshape(_ n: ONNXNode, _ t: Int, _ target: [Int64]) throws(ConvertError) -> Value? {
        let s = shape(t)
        guard target.first == -1, target.count >= 2, target.count < s.count, exportedBatch == nil || exportedBatch == 1 else { return nil }
        let tail = Array(target.dropFirst())
        guard tail.allSatisfy({ $0 > 0 }), Array(s.suffix(tail.count)) == tail else { return nil }
        let lead = s.count - 1 - tail.count
        // Only a real merge: when the merged axes are all 1 this is an ordinary reshape.
        guard s[1...lead].reduce(1, *) > 1 else { return nil }
        return .merged(t, perm: Array(0..<s.count), lead: lead)
    }

    /// Reshape of a merged value back to [batch, lead..., tail...]: the stored (possibly permuted) value.
    private mutating func unmerge(_ n: ONNXNode, _ t: Int, _ perm: [Int], _ lead: Int) throws(ConvertError) {
        let target = try constant(n, 1).ints
        let logical = perm.map { shape(t)[$0] }
        let expect = [ConstantFolder.batchSentinel] + logical.dropFirst()
        guard target == expect || target == [0] + logical.dropFirst() else {
            throw bad(n, "reshape of a batch-merged value to \(target) (only back to \(Array(logical.dropFirst())) after the batch)")
        }
        values[n.outputs[0]] = perm == Array(0..<perm.count) ? .tensor(t) : .permuted(t, perm: perm)
    }
}
