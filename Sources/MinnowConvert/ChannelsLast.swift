import MinnowFormat

// A Conv is lowered as im2col -> Dense -> transpose back to NCHW, because ONNX graphs are NCHW.
// Between two convolutions (or a convolution and a pool) that transpose is wasted work, and the
// NCHW im2col that follows it gathers single elements. This pass keeps such chains channels-last:
//
//   Dense [P, C] -> transpose -> Pool        becomes  Dense -> Pool (NHWC) -> transpose (of the smaller output)
//   Dense [P, C] -> transpose -> Im2Col -> Dense'  becomes  Dense -> Im2Col (NHWC) -> Dense' (weight columns
//                                                           reordered from (c, kh, kw) to (kh, kw, c))
//   Dense [P, C] -> transpose -> Flatten -> Dense'  becomes  Dense -> Flatten -> Dense' (weight columns
//                                                           reordered from (c, p) to (p, c))
//
// Both rewrites give the same values (the same sums, in another column order). The transpose only
// survives where an NCHW consumer (a Flatten, a graph output, anything else) needs it.

enum ChannelsLast {
    static func run(_ g: inout MGraph) {
        var changed = true
        while changed {
            changed = false
            for c in g.ops.indices {
                guard let channels = transposeChannels(g, c) else { continue }
                let t = g.ops[c].outputs[0]
                guard !g.isGraphOutput(t), g.consumers(of: t).count == 1, let reader = g.consumers(of: t).first else { continue }
                switch g.ops[reader].opcode {
                case .pool: changed = sinkBelowPool(&g, transpose: c, pool: reader, channels: channels)
                case .im2col: changed = absorbIntoIm2col(&g, transpose: c, im2col: reader, channels: channels)
                case .copy: changed = absorbIntoFlatDense(&g, transpose: c, flatten: reader, channels: channels)
                default: break
                }
                if changed { break }
            }
        }
        // With one channel NCHW and NHWC are the same bytes (and the same patch column order); the
        // channels-last im2col copies whole kernel rows where the NCHW one moves single elements.
        for m in g.ops.indices where g.ops[m].opcode == .im2col {
            if let params = channelsLastParams(g.ops[m], count: 13), params[0] == 1 {
                g.ops[m].options = .params(ints: params, floats: [])
            }
        }
        g.compact()
    }

    /// The channel count if op c is the [P, C] -> [C, P] strided copy that ends a lowered Conv.
    private static func transposeChannels(_ g: MGraph, _ c: Int) -> Int64? {
        guard g.ops[c].opcode == .stridedCopy, case let .params(ints, _) = g.ops[c].options, ints.count == 6, ints[0] == 2,
              ints[3] == 1, ints[4] == ints[1], ints[5] == 0 else { return nil }
        let x = g.tensors[g.ops[c].inputs[0]].shape
        guard x.count == 3, x[2] == ints[1], x[1] == ints[2] else { return nil }
        return ints[1]
    }

    /// Window parameters with the layout flag set, if the op is still NCHW (and, for im2col, its
    /// kernel is short enough for the channels-last kernel: the runtime's limit).
    private static func channelsLastParams(_ op: MOp, count: Int) -> [Int64]? {
        guard case let .params(ints, _) = op.options, ints.count == count else { return nil }
        if op.opcode == .im2col && ints[3] > maxKernelRows { return nil }
        return ints + [1]
    }

    static let maxKernelRows: Int64 = 16  // MN_IM2COL_NHWC_MAX_KH

    private static func sinkBelowPool(_ g: inout MGraph, transpose c: Int, pool q: Int, channels: Int64) -> Bool {
        guard let params = channelsLastParams(g.ops[q], count: 13), params[1] == channels else { return false }
        let pixels = g.ops[c].inputs[0], out = g.ops[q].outputs[0]
        let outPixels = params[6] * params[7]
        let pooled = g.add(MTensor(name: g.tensors[out].name + ".nhwc", dtype: g.tensors[out].dtype, shape: [-1, outPixels, channels]))
        var pool = g.ops[q], copy = g.ops[c]
        pool.inputs = [pixels]
        pool.outputs = [pooled]
        pool.options = .params(ints: params, floats: [])
        copy.inputs = [pooled]
        copy.outputs = [out]
        copy.options = .params(ints: [2, channels, outPixels, 1, channels, 0], floats: [])
        // Same positions keep the order topological: the pool reads what the copy read, the copy reads the pool.
        g.ops[c] = pool
        g.ops[q] = copy
        return true
    }

    /// A classifier head: the transposed pixels flattened ([B, C, P] -> [B, C * P]) into a Dense.
    /// The flatten reads the channels-last pixels instead and the Dense's columns follow them.
    private static func absorbIntoFlatDense(_ g: inout MGraph, transpose c: Int, flatten f: Int, channels: Int64) -> Bool {
        let pixels = g.ops[c].inputs[0], flat = g.ops[f].outputs[0]
        let p = g.tensors[pixels].shape[1], k = Int(p * channels)
        guard g.tensors[flat].shape == [-1, p * channels], !g.isGraphOutput(flat), g.consumers(of: flat).count == 1,
              let d = g.consumers(of: flat).first, g.ops[d].opcode == .dense, g.ops[d].inputs[0] == flat,
              case let .float(w)? = g.tensors[g.ops[d].inputs[1]].data else { return false }
        let wt = g.tensors[g.ops[d].inputs[1]]
        guard wt.shape.count == 2, Int(wt.shape[1]) == k else { return false }
        let (ch, pix) = (Int(channels), Int(p))
        var reordered = w
        for o in 0..<Int(wt.shape[0]) {
            for cc in 0..<ch { for q in 0..<pix { reordered[o * k + q * ch + cc] = w[o * k + cc * pix + q] } }
        }
        g.ops[d].inputs[1] = g.addConstant(name: wt.name, shape: wt.shape, .float(reordered))
        g.ops[f].inputs = [pixels]
        g.ops.remove(at: c)
        return true
    }

    private static func absorbIntoIm2col(_ g: inout MGraph, transpose c: Int, im2col m: Int, channels: Int64) -> Bool {
        guard let params = channelsLastParams(g.ops[m], count: 13), params[0] == channels else { return false }
        let patches = g.ops[m].outputs[0]
        guard !g.isGraphOutput(patches), g.consumers(of: patches).count == 1, let d = g.consumers(of: patches).first,
              g.ops[d].opcode == .dense, g.ops[d].inputs[0] == patches,
              case let .float(w)? = g.tensors[g.ops[d].inputs[1]].data else { return false }
        let (kh, kw) = (Int(params[3]), Int(params[4]))
        let ch = Int(channels), k = ch * kh * kw
        let wt = g.tensors[g.ops[d].inputs[1]]
        guard wt.shape.count == 2, Int(wt.shape[1]) == k else { return false }
        // Column (c, i, j) of the NCHW patch row moves to (i, j, c).
        var reordered = w
        for o in 0..<Int(wt.shape[0]) {
            for cc in 0..<ch { for i in 0..<kh { for j in 0..<kw {
                reordered[o * k + (i * kw + j) * ch + cc] = w[o * k + (cc * kh + i) * kw + j]
            } } }
        }
        g.ops[d].inputs[1] = g.addConstant(name: wt.name, shape: wt.shape, .float(reordered))
        g.ops[m].inputs = [g.ops[c].inputs[0]]
        g.ops[m].options = .params(ints: params, floats: [])
        g.ops.remove(at: c)
        return true
    }
}
