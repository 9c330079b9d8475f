import MinnowFormat

// Arena planning per sample of batch. Every activation's size scales linearly with the batch,
// so a layout without overlap for one sample has none for any batch: the session multiplies
// each offset by its max batch. Greedy by size (as TFLite's GreedyMemoryPlanner): largest
// tensors first, each at the lowest 64-byte-aligned offset that does not overlap a placed tensor
// whose lifetime (first write .. last read, in op order) overlaps its own.
//
// Views (format 1.7): a `copy` (Reshape, Flatten, Squeeze, Unsqueeze, Identity) moves a whole
// sample unchanged, so its output can simply be its input's bytes. With reuse on, each copy's
// output joins its input's group; a group is placed once, alive from its first write to its
// last member's last read, and every member gets the group's offset. The session drops copies
// whose two addresses are equal. This is safe because every tensor is written once (SSA): the
// bytes the view names cannot change while any member is alive.

struct MemoryPlan {
    var offsets: [Int: UInt64]   // tensor index -> offset per sample
    var arenaBytesPerSample: UInt64
}

enum MemoryPlanner {
    static let alignment: UInt64 = 64

    static func bytesPerSample(_ t: MTensor) -> UInt64 {
        let elements = t.shape.dropFirst().reduce(Int64(1), *)
        return UInt64(elements) * UInt64(t.dtype.byteSize)
    }

    /// `reuse: false` gives every activation its own slot (calibration reads them all after a run).
    static func plan(_ g: MGraph, reuse: Bool = true) -> MemoryPlan {
        var first = [Int: Int](), last = [Int: Int]()
        for t in g.inputs { first[t] = -1; last[t] = -1 }
        for (i, op) in g.ops.enumerated() {
            for t in op.inputs where t >= 0 && !g.tensors[t].isConstant { last[t] = i }
            for t in op.outputs { if first[t] == nil { first[t] = i }; last[t] = max(last[t] ?? i, i) }
        }
        for t in g.outputs { last[t] = g.ops.count }
        // The runtime may run an im2col and the Dense right after it, the only reader of its
        // patches, as one implicit GEMM that reads the image while writing the Dense's output
        // (MinnowRuntime/ConvFusion.swift): the image stays alive through the Dense.
        for (i, op) in g.ops.enumerated().dropLast() where op.opcode == .im2col && g.ops[i + 1].opcode == .dense
            && g.ops[i + 1].inputs.first == op.outputs[0] && !g.tensors[op.inputs[0]].isConstant {
            last[op.inputs[0]] = max(last[op.inputs[0]] ?? i + 1, i + 1)
        }
        // Inputs stay intact through a run (format 1.2): running again on the same inputs, as
        // a benchmark or a retry does, must see them unchanged, ids above all.
        for t in g.inputs { last[t] = g.ops.count }
        var activations = first.keys.sorted()
        func aligned(_ v: UInt64) -> UInt64 { (v + alignment - 1) / alignment * alignment }

        var offsets = [Int: UInt64]()
        var arena: UInt64 = 0
        if !reuse {
            for t in activations {
                offsets[t] = arena
                arena += aligned(max(bytesPerSample(g.tensors[t]), 1))
            }
            return MemoryPlan(offsets: offsets, arenaBytesPerSample: arena)
        }
        // Each view's root: the tensor whose producer really writes the bytes.
        var root = [Int: Int]()
        for op in g.ops where op.opcode == .copy && op.inputs.count == 1 && op.outputs.count == 1 {
            let x = op.inputs[0], y = op.outputs[0]
            guard x >= 0, !g.tensors[x].isConstant, bytesPerSample(g.tensors[x]) == bytesPerSample(g.tensors[y]) else { continue }
            root[y] = root[x] ?? x
        }
        for (view, r) in root {
            first[r] = min(first[r]!, first[view]!)
            last[r] = max(last[r]!, last[view]!)
        }
        activations.removeAll { root[$0] != nil }
        let order = activations.sorted { a, b in
            let sa = bytesPerSample(g.tensors[a]), sb = bytesPerSample(g.tensors[b])
            return sa != sb ? sa > sb : a < b
        }
        var placed: [(tensor: Int, start: UInt64, end: UInt64)] = []
        for t in order {
            let size = aligned(max(bytesPerSample(g.tensors[t]), 1))
            let conflicts = placed.filter { p in
                first[p.tensor]! <= last[t]! && first[t]! <= last[p.tensor]!
            }.sorted { $0.start < $1.start }
            var offset: UInt64 = 0
            for c in conflicts where offset + size > c.start {
                offset = max(offset, c.end)
            }
            offsets[t] = offset
            placed.append((t, offset, offset + size))
            arena = max(arena, offset + size)
        }
        for (view, r) in root { offsets[view] = offsets[r] }
        return MemoryPlan(offsets: offsets, arenaBytesPerSample: arena)
    }
}
