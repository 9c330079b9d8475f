// Rewrites of exporter idioms that would otherwise move the batch dimension, applied to the ONNX
// graph before lowering. Each rewrite is exact (the same values, computed another way).

enum ONNXRewrites {
    static func run(_ onnx: inout ONNXGraph) {
        advancedIndexing(&onnx)
        unbindAfterPermute(&onnx)
        foldBatchNormIntoConv(&onnx)
    }

    /// Conv (constant weight) -> BatchNormalization (constant statistics) becomes one Conv with
    /// W' = W * a[oc], B' = (B - mean) * a + beta, a = scale / sqrt(var + eps) (the inference form).
    static func foldBatchNormIntoConv(_ onnx: inout ONNXGraph) {
        var consumers: [String: [Int]] = [:]
        for (i, n) in onnx.nodes.enumerated() { for name in n.inputs { consumers[name, default: []].append(i) } }
        let outputs = Set(onnx.outputs.map(\.name))
        var removed = Set<Int>()
        for (ci, conv) in onnx.nodes.enumerated() where conv.opType == "Conv" && conv.outputs.count == 1 {
            guard !outputs.contains(conv.outputs[0]), let c = consumers[conv.outputs[0]], c.count == 1 else { continue }
            let bn = onnx.nodes[c[0]]
            guard bn.opType == "BatchNormalization", bn.inputs.count == 5, bn.outputs.count == 1 || bn.outputs.dropFirst().allSatisfy(\.isEmpty),
                  conv.inputs.count >= 2, let w = onnx.initializers[conv.inputs[1]], w.isFloat, w.shape.count >= 3,
                  let scale = onnx.initializers[bn.inputs[1]], let beta = onnx.initializers[bn.inputs[2]],
                  let mean = onnx.initializers[bn.inputs[3]], let variance = onnx.initializers[bn.inputs[4]] else { continue }
            let oc = w.shape[0]
            guard [scale, beta, mean, variance].allSatisfy({ $0.count == oc }) else { continue }
            let bias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? onnx.initializers[conv.inputs[2]]?.floats : [Float](repeating: 0, count: oc)
            guard let bias, bias.count == oc else { continue }
            let eps = bn.float("epsilon", default: 1e-5)
            let (s, b, m, v) = (scale.floats, beta.floats, mean.floats, variance.floats)
            let a = (0..<oc).map { s[$0] / (v[$0] + eps).squareRoot() }
            let per = w.count / oc
            let wv = w.floats
            let folded = (0..<w.count).map { wv[$0] * a[$0 / per] }
            let newBias = (0..<oc).map { (bias[$0] - m[$0]) * a[$0] + b[$0] }
            let wName = conv.name + ".bn_folded_weight", bName = conv.name + ".bn_folded_bias"
            onnx.initializers[wName] = ConstTensor(shape: w.shape, floats: folded)
            onnx.initializers[bName] = ConstTensor(shape: [oc], floats: newBias)
            var fused = conv
            fused.inputs = [conv.inputs[0], wName, bName]
            fused.outputs = [bn.outputs[0]]
            fused.name = conv.name + "+" + bn.name
            onnx.nodes[ci] = fused
            removed.insert(c[0])
        }
        onnx.nodes = onnx.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// `qkv.view(b, s, 3, h, d).permute(2, 0, 3, 1, 4)` then `q, k, v = ...` (unbind) puts the
    /// batch second, only for the slices to take it out again: Transpose(perm, perm[0] = a) read
    /// only by Slice(axis 0, [i, i+1)) + Squeeze(0) pairs (or Gather(axis 0, scalar i)). Each
    /// pair is `Transpose(Gather(x, i, axis=a), perm without its first entry)`.
    static func unbindAfterPermute(_ onnx: inout ONNXGraph) {
        var consumers: [String: [Int]] = [:]
        for (i, n) in onnx.nodes.enumerated() { for name in n.inputs { consumers[name, default: []].append(i) } }
        let outputs = Set(onnx.outputs.map(\.name))
        func ints(_ name: String) -> [Int64]? { onnx.initializers[name]?.ints }
        var replaced: [Int: [ONNXNode]] = [:]
        var removed = Set<Int>()
        for (ti, t) in onnx.nodes.enumerated() {
            guard t.opType == "Transpose", let perm = t.ints("perm"), let a = perm.first, a != 0, t.outputs.count == 1,
                  !outputs.contains(t.outputs[0]), let readers = consumers[t.outputs[0]], !readers.isEmpty else { continue }
            // Axis j of the input is axis j - 1 after axis a is taken out.
            let rest = perm.dropFirst().map { $0 > a ? $0 - 1 : $0 }
            var plan: [(drop: [Int], index: Int64, output: String, name: String)] = []
            for r in readers {
                let n = onnx.nodes[r]
                if n.opType == "Gather", n.int("axis", default: 0) == 0, n.inputs.count == 2, let i = onnx.initializers[n.inputs[1]],
                   i.shape.isEmpty, let v = i.ints.first {
                    plan.append(([r], v, n.outputs[0], n.name))
                } else if n.opType == "Slice", n.inputs.count >= 4, let st = ints(n.inputs[1]), let en = ints(n.inputs[2]),
                          ints(n.inputs[3]) == [0], n.inputs.count < 5 || ints(n.inputs[4]) == [1], st.count == 1, en == [st[0] + 1],
                          !outputs.contains(n.outputs[0]), let sq = consumers[n.outputs[0]], sq.count == 1,
                          onnx.nodes[sq[0]].opType == "Squeeze", onnx.nodes[sq[0]].inputs.count == 2,
                          ints(onnx.nodes[sq[0]].inputs[1]) == [0] {
                    plan.append(([r, sq[0]], st[0], onnx.nodes[sq[0]].outputs[0], n.name))
                } else {
                    plan = []
                    break
                }
            }
            guard !plan.isEmpty else { continue }
            removed.insert(ti)
            for p in plan {
                let index = p.name + ".index", picked = p.name + ".picked"
                onnx.initializers[index] = ConstTensor(shape: [], ints: [p.index])
                replaced[p.drop.last!] = [
                    ONNXNode(name: p.name, opType: "Gather", domain: "", inputs: [t.inputs[0], index], outputs: [picked],
                             attributes: ["axis": .int(a)]),
                    ONNXNode(name: p.name + ".transpose", opType: "Transpose", domain: "", inputs: [picked], outputs: [p.output],
                             attributes: ["perm": .ints(rest)]),
                ]
                removed.formUnion(p.drop.dropLast())
            }
        }
        var nodes: [ONNXNode] = []
        for (i, n) in onnx.nodes.enumerated() where !removed.contains(i) { nodes += replaced[i] ?? [n] }
        onnx.nodes = nodes
    }

    /// torch's exporter writes `z[:, idx]` (a constant index list on axis k) as
    /// Transpose(swap 0, k) -> GatherND(indices [n, 1], batch_dims 0) -> Transpose(swap 0, k),
    /// which puts the batch in the middle. It is `Gather(z, idx, axis=k)`.
    static func advancedIndexing(_ onnx: inout ONNXGraph) {
        var consumers: [String: [Int]] = [:]
        for (i, n) in onnx.nodes.enumerated() { for name in n.inputs { consumers[name, default: []].append(i) } }
        let outputs = Set(onnx.outputs.map(\.name))
        func sole(_ name: String) -> Int? {
            guard !outputs.contains(name), let c = consumers[name], c.count == 1 else { return nil }
            return c[0]
        }
        func swapAxis(_ n: ONNXNode) -> Int? {
            guard n.opType == "Transpose", let perm = n.ints("perm"), perm.count >= 2, perm[0] != 0 else { return nil }
            let k = Int(perm[0])
            let expected = (0..<Int64(perm.count)).map { $0 == 0 ? Int64(k) : ($0 == Int64(k) ? 0 : $0) }
            return perm == expected ? k : nil
        }
        var removed = Set<Int>()
        for (i, first) in onnx.nodes.enumerated() where !removed.contains(i) {
            guard let k = swapAxis(first), first.outputs.count == 1, let gi = sole(first.outputs[0]) else { continue }
            let gnd = onnx.nodes[gi]
            guard gnd.opType == "GatherND", gnd.int("batch_dims", default: 0) == 0, gnd.inputs.count == 2, gnd.inputs[0] == first.outputs[0],
                  let idx = onnx.initializers[gnd.inputs[1]], idx.shape.count == 2, idx.shape[1] == 1,
                  let li = sole(gnd.outputs[0]), swapAxis(onnx.nodes[li]) == k else { continue }
            let last = onnx.nodes[li]
            let name = gnd.name + ".indices"
            onnx.initializers[name] = ConstTensor(shape: [idx.shape[0]], ints: idx.ints)
            onnx.nodes[li] = ONNXNode(name: gnd.name, opType: "Gather", domain: "", inputs: [first.inputs[0], name],
                                      outputs: last.outputs, attributes: ["axis": .int(Int64(k))])
            removed.formUnion([i, gi])
        }
        onnx.nodes = onnx.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
