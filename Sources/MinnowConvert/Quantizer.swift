import MinnowFormat

// Quantization per DESIGN §4. Weights: int8, symmetric, per output channel. Static mode:
// activations int8 asymmetric per tensor from calibrated ranges, int32 bias with scale
// s_in * s_w[c]; a Dense keeps fp32 output wherever its result feeds a float op or leaves the
// graph (final logits stay fp32). Dynamic mode: int8 weights, fp32 activations quantized per row
// at run time.

struct FloatDecision {
    var op: String
    var opType: String
    var reason: String
}

enum Quantizer {
    /// Symmetric per-row int8: scale[c] = max|w[c,:]| / 127, q = round(w / scale) in [-127, 127].
    /// `minScales` raises a channel's scale where needed (so its int32 bias cannot overflow).
    static func quantizeWeights(_ w: [Float], n: Int, k: Int, minScales: [Float]? = nil) -> (q: [Int8], scales: [Float]) {
        var q = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 1, count: n)
        for c in 0..<n {
            var m: Float = 0
            for i in 0..<k { m = max(m, abs(w[c * k + i])) }
            var s = m > 0 ? m / 127 : 1
            if let floor = minScales?[c], floor > s { s = floor }
            scales[c] = s
            for i in 0..<k {
                let v = (w[c * k + i] / s).rounded(.toNearestOrEven)
                q[c * k + i] = Int8(max(-127, min(127, v)))
            }
        }
        return (q, scales)
    }

    /// Asymmetric int8 parameters for a range widened to contain 0 (so 0 is exact).
    static func activationParams(_ r: ActivationRange) -> QuantParams {
        var lo = min(r.min.isFinite ? r.min : 0, 0), hi = max(r.max.isFinite ? r.max : 0, 0)
        if hi - lo < 1e-8 { lo = min(lo, -1e-3); hi = max(hi, 1e-3) }
        let scale = (hi - lo) / 255
        let zp = Int32(max(-128, min(127, (-128 - lo / scale).rounded(.toNearestOrEven))))
        return QuantParams(scales: [scale], zeroPoints: [zp], axis: -1)
    }

    /// Asymmetric int8 per row (DESIGN §4, embedding tables): row r is stored as q with
    /// real = scale[r] * (q - zp[r]), its range widened to contain 0 so zp fits in int8.
    static func quantizeRows(_ w: [Float], rows: Int, dim: Int) -> (q: [Int8], params: QuantParams) {
        var q = [Int8](repeating: 0, count: rows * dim)
        var scales = [Float](repeating: 1, count: rows), zps = [Int32](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = w[(r * dim)..<((r + 1) * dim)]
            let p = activationParams(ActivationRange(min: row.min() ?? 0, max: row.max() ?? 0))
            scales[r] = p.scales[0]
            zps[r] = p.zeroPoints[0]
            for (i, v) in row.enumerated() {
                let x = (v / p.scales[0]).rounded(.toNearestOrEven) + Float(p.zeroPoints[0])
                q[r * dim + i] = Int8(max(-128, min(127, x)))
            }
        }
        return (q, QuantParams(scales: scales, zeroPoints: zps, axis: 0))
    }

    /// Embedding tables become int8 in every quantized mode: they dominate the size of
    /// recommendation models, and the gather dequantizes only the rows it reads. The row
    /// parameters are chosen per table by measured error (`EmbeddingQuantizer`).
    /// `tables`: how often calibration looked each row up, and which encodings may be chosen.
    static func quantizeEmbeddings(_ g: inout MGraph, keep: [String], tables: TableContext = TableContext()) -> [FloatDecision] {
        var decisions: [FloatDecision] = []
        for i in g.ops.indices where g.ops[i].opcode == .gather {
            let t = g.ops[i].inputs[0]
            guard case let .float(values)? = g.tensors[t].data, g.tensors[t].shape.count == 2 else { continue }
            if matchesKeepFloat(g.ops[i], g, keep) {
                decisions.append(FloatDecision(op: g.ops[i].name, opType: g.ops[i].sourceType, reason: "kept in float by --keep-float"))
                continue
            }
            let (q, params) = EmbeddingQuantizer.quantize(values, rows: Int(g.tensors[t].shape[0]), dim: Int(g.tensors[t].shape[1]),
                                                          lookups: tables.lookups[g.tensors[g.ops[i].inputs[1]].name],
                                                          compact: tables.compact)
            g.ops[i].inputs[0] = g.addConstant(name: g.tensors[t].name, shape: g.tensors[t].shape, .int8(q), quant: params)
        }
        return decisions
    }

    /// The ids tensor of each embedding lookup (a Gather of a constant float table), with the table's row count.
    static func embeddingIds(_ g: MGraph) -> [Int: Int] {
        var ids = [Int: Int]()
        for op in g.ops where op.opcode == .gather {
            guard case .float? = g.tensors[op.inputs[0]].data, g.tensors[op.inputs[0]].shape.count == 2,
                  [.int64, .int32].contains(g.tensors[op.inputs[1]].dtype) else { continue }
            ids[op.inputs[1]] = Int(g.tensors[op.inputs[0]].shape[0])
        }
        return ids
    }

    static func matchesKeepFloat(_ op: MOp, _ g: MGraph, _ keep: [String]) -> Bool {
        guard !keep.isEmpty else { return false }
        let names = Set(op.name.split(separator: "+").map(String.init) + [op.name, op.sourceType]
                        + op.outputs.map { g.tensors[$0].name })
        return keep.contains { names.contains($0) }
    }

    /// Dynamic mode: int8 weights on every Dense that is not kept in float (of those named in
    /// `only`, when given: auto mode's mixed precision).
    static func applyDynamic(_ g: inout MGraph, keep: [String], only: Set<String>? = nil,
                             tables: TableContext = TableContext()) -> [FloatDecision] {
        var decisions: [FloatDecision] = []
        for d in g.ops.indices {
            let op = g.ops[d]
            guard op.opcode == .dense, case var .dense(options) = op.options, only?.contains(op.name) ?? true,
                  case .float? = g.tensors[op.inputs[1]].data else { continue }
            if matchesKeepFloat(op, g, keep) {
                decisions.append(FloatDecision(op: op.name, opType: op.sourceType, reason: "kept in float by --keep-float"))
                continue
            }
            quantizeWeightTensor(&g, d)
            options.dynamicQuant = true
            g.ops[d].options = .dense(options)
        }
        decisions += quantizeEmbeddings(&g, keep: keep, tables: tables)
        return decisions + floatOnlyOps(g)
    }

    private static func quantizeWeightTensor(_ g: inout MGraph, _ d: Int) {
        let w = g.ops[d].inputs[1]
        guard case let .float(values)? = g.tensors[w].data else { return }
        let n = Int(g.tensors[w].shape[0]), k = Int(g.tensors[w].shape[1])
        let (q, scales) = quantizeWeights(values, n: n, k: k)
        g.ops[d].inputs[1] = g.addConstant(name: g.tensors[w].name, shape: g.tensors[w].shape, .int8(q),
                                           quant: QuantParams(scales: scales, zeroPoints: Array(repeating: 0, count: n), axis: 0))
    }

    /// Max pooling selects values: on int8 it is exact (max commutes with monotone quantization).
    static func isMaxPool(_ op: MOp) -> Bool {
        guard op.opcode == .pool, case let .params(ints, _) = op.options else { return false }
        return ints.first == 0
    }

    /// Ops with no int8 kernel: they run in fp32 in every mode.
    static func floatOnlyOps(_ g: MGraph) -> [FloatDecision] {
        let noMath: Set<OpCode> = [.dense, .copy, .quantize, .dequantize, .stridedCopy, .im2col, .gather, .cast, .not, .and, .or, .equal, .less, .greater]
        return g.ops.filter { !noMath.contains($0.opcode) && !(isMaxPool($0) && g.tensors[$0.inputs[0]].dtype == .int8) }.map {
            FloatDecision(op: $0.name, opType: $0.sourceType, reason: "\($0.opcode) has no int8 kernel; runs in fp32")
        }
    }

    /// Static mode. `ranges` holds the calibrated range of every activation. With `only`, just the
    /// Dense ops it names become static int8 (auto mode's mixed precision).
    static func applyStatic(_ g: inout MGraph, ranges: [Int: ActivationRange], keep: [String],
                            only: Set<String>? = nil, tables: TableContext = TableContext()) -> [FloatDecision] {
        var decisions: [FloatDecision] = []
        var int8Dense = Set<Int>()
        for (d, op) in g.ops.enumerated() where op.opcode == .dense {
            if matchesKeepFloat(op, g, keep) {
                decisions.append(FloatDecision(op: op.name, opType: op.sourceType, reason: "kept in float by --keep-float"))
            } else if only?.contains(op.name) ?? true {
                int8Dense.insert(d)
            }
        }
        // Can tensor t be int8? Only if every reader takes int8: an int8 dense (as its input) or an op
        // that only moves or selects values (copy, strided copy, im2col, max pool) whose result can be
        // int8 too, with the same scale and zero point. Graph outputs stay fp32.
        let layoutOnly: Set<OpCode> = [.copy, .stridedCopy, .im2col]
        func keepsQuantization(_ op: MOp) -> Bool { layoutOnly.contains(op.opcode) || isMaxPool(op) }
        func acceptsInt8(_ t: Int) -> Bool {
            let readers = g.consumers(of: t)
            guard !readers.isEmpty, !g.isGraphOutput(t) else { return false }
            return readers.allSatisfy { c in
                (int8Dense.contains(c) && g.ops[c].inputs[0] == t) || (keepsQuantization(g.ops[c]) && acceptsInt8(g.ops[c].outputs[0]))
            }
        }
        var isInt8 = [Bool](repeating: false, count: g.tensors.count)
        var params = [Int: QuantParams]()
        for (i, op) in g.ops.enumerated() {
            let y = op.outputs[0]
            if int8Dense.contains(i), case let .dense(o) = op.options, o.activation != .leakyRelu, acceptsInt8(y) {
                isInt8[y] = true
                params[y] = activationParams(ranges[y] ?? ActivationRange(min: 0, max: 0))
            } else if keepsQuantization(op), isInt8[op.inputs[0]] {
                isInt8[y] = true
                params[y] = params[op.inputs[0]]
            }
        }
        for (t, q) in params where isInt8[t] {
            g.tensors[t].dtype = .int8
            g.tensors[t].quant = q
        }
        // A Quantize goes in front of each int8 dense whose input is fp32 (one per tensor, shared).
        // For a convolution the Quantize goes before its im2col: the image, not its 9x larger patches.
        var quantizeBeforeIm2col = Set<Int>()
        for d in int8Dense {
            let x = g.ops[d].inputs[0]
            if g.tensors[x].dtype != .int8, let m = g.producer(of: x), g.ops[m].opcode == .im2col, g.consumers(of: x) == [d],
               !g.isGraphOutput(x) { quantizeBeforeIm2col.insert(m) }
        }
        var rewritten: [MOp] = []
        var quantized = [Int: Int]()
        func quantizedTensor(_ x: Int) -> Int {
            if let q = quantized[x] { return q }
            let q = activationParams(ranges[x] ?? ActivationRange(min: 0, max: 0))
            let xq = g.add(MTensor(name: g.tensors[x].name + ".q", dtype: .int8, shape: g.tensors[x].shape, quant: q))
            rewritten.append(MOp(opcode: .quantize, inputs: [x], outputs: [xq], name: g.tensors[x].name + ".quantize",
                                 sourceType: "QuantizeLinear"))
            quantized[x] = xq
            return xq
        }
        for (i, original) in g.ops.enumerated() {
            var op = original
            if quantizeBeforeIm2col.contains(i) {
                op.inputs[0] = quantizedTensor(op.inputs[0])
                g.tensors[op.outputs[0]].dtype = .int8
                g.tensors[op.outputs[0]].quant = g.tensors[op.inputs[0]].quant
            }
            if int8Dense.contains(i) {
                let x = op.inputs[0]
                if g.tensors[x].dtype != .int8 {
                    if quantized[x] == nil {
                        let q = activationParams(ranges[x] ?? ActivationRange(min: 0, max: 0))
                        let xq = g.add(MTensor(name: g.tensors[x].name + ".q", dtype: .int8, shape: g.tensors[x].shape, quant: q))
                        rewritten.append(MOp(opcode: .quantize, inputs: [x], outputs: [xq], name: g.tensors[x].name + ".quantize",
                                             sourceType: "QuantizeLinear"))
                        quantized[x] = xq
                    }
                    op.inputs[0] = quantized[x]!
                }
                quantizeDense(&g, &op)
            }
            rewritten.append(op)
        }
        g.ops = rewritten
        decisions += quantizeEmbeddings(&g, keep: keep, tables: tables)
        return decisions + floatOnlyOps(g)
    }

    /// int8 weights per channel and an int32 bias with scale s_in * s_w[c].
    private static func quantizeDense(_ g: inout MGraph, _ op: inout MOp) {
        let sx = g.tensors[op.inputs[0]].quant!.scales[0]
        let w = op.inputs[1]
        guard case let .float(values)? = g.tensors[w].data else { return }
        let n = Int(g.tensors[w].shape[0]), k = Int(g.tensors[w].shape[1])
        // A channel with near-zero weights but a real bias would need an int32 bias beyond range
        // (bias / (s_in * s_w)); raise its weight scale so |bias_q| <= 2^30, leaving headroom for
        // the zero-point fold done at load.
        var floors: [Float]?
        if op.inputs.count == 3, case let .float(b)? = g.tensors[op.inputs[2]].data {
            floors = b.map { abs($0) / (sx * Float(1 << 30)) }
        }
        let (q, scales) = quantizeWeights(values, n: n, k: k, minScales: floors)
        op.inputs[1] = g.addConstant(name: g.tensors[w].name, shape: g.tensors[w].shape, .int8(q),
                                     quant: QuantParams(scales: scales, zeroPoints: Array(repeating: 0, count: n), axis: 0))
        if op.inputs.count == 3, case let .float(b)? = g.tensors[op.inputs[2]].data {
            let bq = b.indices.map { c -> Int32 in
                let v = (Double(b[c]) / (Double(sx) * Double(scales[c]))).rounded(.toNearestOrEven)
                return Int32(max(Double(Int32.min), min(Double(Int32.max), v)))
            }
            let bt = op.inputs[2]
            op.inputs[2] = g.addConstant(name: g.tensors[bt].name, shape: g.tensors[bt].shape, .int32(bq))
        }
    }
}
