// Rewrites of exporter idioms that would otherwise move the batch dimension, applied to the ONNX
// graph before lowering. Each rewrite is exact (the same values, computed another way).

enum ONNXRewrites {
    static func run(_ onnx: inout ONNXGraph) {
        advancedIndexing(&onnx)
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
