import MinnowFormat
import MinnowKernels

// Load-time checks for the tensor ops of format 1.2. Every index a kernel will compute from the
// parameters is proved in bounds here (strided copies: the largest and smallest element they
// can touch), so the kernels never check.

extension OpPreparer {
    func prepareTensorOp(_ op: OperatorInfo, _ what: String) throws(ModelError) -> PreparedOp {
        let y = tensor(op.outputs[0])
        guard y.isBatched, !y.isConstant else { throw .invalid("\(what): output must be a batched activation") }
        func input(_ i: Int) throws(ModelError) -> TensorInfo {
            guard i < op.inputs.count, op.inputs[i] >= 0 else { throw .invalid("\(what): input \(i) is missing") }
            return tensor(op.inputs[i])
        }
        func arity(_ n: Int) throws(ModelError) {
            guard op.inputs.count == n else { throw .invalid("\(what): \(op.inputs.count) inputs, expected \(n)") }
        }
        let (ints, floats): ([Int64], [Float])
        if case let .params(i, f) = op.options { (ints, floats) = (i, f) } else { (ints, floats) = ([], []) }

        switch op.opcode {
        case .stridedCopy:
            try arity(1)
            return try prepareStridedCopy(op, try input(0), y, ints, what)
        case .gather:
            try arity(2)
            let table = try input(0), ids = try input(1)
            if table.isBatched { return try prepareTake(op, table, ids, y, ints, what) }
            return try prepareGather(op, table: table, ids: ids, y, what)
        case .reduce:
            try arity(1)
            let x = try input(0)
            try requireFloat(what, x, y)
            guard ints.count == 4, (0...4).contains(ints[0]), ints[1...].allSatisfy({ $0 >= 1 && $0 <= Int64(Int32.max) }) else {
                throw .invalid("\(what): reduce parameters \(ints), expected [kind 0...4, outer, extent, inner] all >= 1")
            }
            let (outer, extent, inner) = (Int(ints[1]), Int(ints[2]), Int(ints[3]))
            guard outer.multipliedReportingOverflow(by: extent).partialValue.multipliedReportingOverflow(by: inner).partialValue == perSample(x),
                  outer * inner == perSample(y) else {
                throw .invalid("\(what): reduce of \(outer)x\(extent)x\(inner) does not match \(x.shape) -> \(y.shape)")
            }
            return .reduce(kind: Int32(ints[0]), x: Int(op.inputs[0]), y: Int(op.outputs[0]), outer: outer, extent: extent, inner: inner)
        case .matmul:
            try arity(2)
            return try prepareMatmul(op, try input(0), try input(1), y, ints, what)
        case .layerNorm:
            guard op.inputs.count == 3 else { throw .invalid("\(what): expects (x, gamma, beta or -1)") }
            guard op.inputs[0] >= 0, op.inputs[1] >= 0 else { throw .invalid("\(what): x and gamma are required") }
            let x = tensor(op.inputs[0]), gamma = tensor(op.inputs[1])
            let beta = op.inputs[2] >= 0 ? tensor(op.inputs[2]) : nil
            try requireFloat(what, x, y, gamma)
            try sameShape(what, x, y)
            guard let d = x.shape.last, d > 0, gamma.isConstant, gamma.shape == [d] else {
                throw .invalid("\(what): gamma must be a constant [\(x.shape.last ?? 0)]")
            }
            if let beta { guard beta.isConstant, beta.shape == [d], beta.dtype == .float32 else { throw .invalid("\(what): beta must be a float32 constant [\(d)]") } }
            guard floats.count == 1, floats[0] >= 0, floats[0].isFinite else { throw .invalid("\(what): expects params floats [epsilon >= 0]") }
            return .layerNorm(x: Int(op.inputs[0]), residual: nil, gamma: Int(op.inputs[1]), beta: beta.map { _ in Int(op.inputs[2]) }, y: Int(op.outputs[0]),
                              rowsPerSample: perSample(x) / Int(d), dim: Int(d), eps: floats[0])
        case .equal, .less, .greater:
            try arity(2)
            let a = try input(0), b = try input(1)
            guard a.dtype == b.dtype, a.dtype == .float32 || a.dtype == .int64, y.dtype == .bool else {
                throw .invalid("\(what): compares float32 or int64 operands of one dtype into bool, found \(a.dtype), \(b.dtype) -> \(y.dtype)")
            }
            let code: Int32 = op.opcode == .equal ? 0 : op.opcode == .less ? 1 : 2
            return try broadcastOp(.compare(op: code, int64: a.dtype == .int64), op, [a, b], y, what)
        case .and, .or:
            try arity(2)
            let a = try input(0), b = try input(1)
            guard a.dtype == .bool, b.dtype == .bool, y.dtype == .bool else { throw .invalid("\(what): expects bool operands and output") }
            return try broadcastOp(.logic(op: op.opcode == .and ? 0 : 1), op, [a, b], y, what)
        case .where:
            try arity(3)
            let c = try input(0), a = try input(1), b = try input(2)
            guard c.dtype == .bool, a.dtype == b.dtype, a.dtype == y.dtype, a.quant == nil, b.quant == nil else {
                throw .invalid("\(what): expects (bool, T, T) -> T, found (\(c.dtype), \(a.dtype), \(b.dtype)) -> \(y.dtype)")
            }
            return try broadcastOp(.where(elem: Int32(y.dtype.byteSize)), op, [c, a, b], y, what)
        case .not:
            try arity(1)
            let x = try input(0)
            guard x.dtype == .bool, y.dtype == .bool else { throw .invalid("\(what): expects bool input and output") }
            try sameShape(what, x, y)
            return .not(x: Int(op.inputs[0]), y: Int(op.outputs[0]), elementsPerSample: perSample(x))
        case .cast:
            try arity(1)
            let x = try input(0)
            let allowed: Set<DType> = [.float32, .int32, .int64, .bool]
            guard allowed.contains(x.dtype), allowed.contains(y.dtype), x.quant == nil, y.quant == nil else {
                throw .unsupported("\(what): cast from \(x.dtype) to \(y.dtype)")
            }
            try sameShape(what, x, y)
            return .cast(from: Int32(x.dtype.rawValue), to: Int32(y.dtype.rawValue), x: Int(op.inputs[0]), y: Int(op.outputs[0]),
                         elementsPerSample: perSample(x))
        case .lstm, .gru:
            guard op.inputs.count == 4 else { throw .invalid("\(what): expects (x, W, R, B or -1)") }
            return try prepareRecurrent(op, y, ints, what)
        case .im2col:
            try arity(1)
            return try prepareIm2col(op, try input(0), y, ints, what)
        case .pool:
            try arity(1)
            let x = try input(0)
            guard ints.count == 13 || ints.count == 14, ints[0] == 0 || ints[0] == 1, ints[1...9].allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }),
                  ints[10...11].allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }), ints.count == 13 || ints[13] == 0 || ints[13] == 1 else {
                throw .invalid("\(what): pool parameters \(ints), expected [kind 0/1, C, H, W, KH, KW, OH, OW, sh, sw >= 1, pads >= 0, flag, layout 0/1]")
            }
            // Max pooling also runs on int8 (max commutes with quantization); the output keeps the input's parameters.
            if x.dtype == .int8 {
                guard ints[0] == 0, y.dtype == .int8, x.quant == y.quant, x.isBatched, !x.isConstant else {
                    throw .invalid("\(what): int8 pooling is max pooling of a batched activation into one of the same quantization")
                }
            } else {
                try requireFloat(what, x, y)
            }
            let (c, h, w, oh, ow) = (ints[1], ints[2], ints[3], ints[6], ints[7])
            guard Int64(perSample(x)) == c * h * w, Int64(perSample(y)) == c * oh * ow else {
                throw .invalid("\(what): pool of [\(c), \(h), \(w)] -> [\(c), \(oh), \(ow)] does not match \(x.shape) -> \(y.shape)")
            }
            let layout: Int64 = ints.count == 14 ? ints[13] : 0
            return .pool(x: Int(op.inputs[0]), y: Int(op.outputs[0]), int8: x.dtype == .int8, params: Array(ints.prefix(13)) + [layout])
        default:
            throw .unsupported("\(what): not a tensor op")
        }
    }

    private func broadcastOp(_ kind: BroadcastKind, _ op: OperatorInfo, _ operands: [TensorInfo], _ y: TensorInfo,
                             _ what: String) throws(ModelError) -> PreparedOp {
        for t in operands where !t.isBatched && !t.isConstant { throw .invalid("\(what): operand '\(t.name)' is neither batched nor constant") }
        let (dims, strides, axis) = try broadcastSpace(operands, y, what)
        return .broadcast(kind: kind, operands: op.inputs.map(Int.init), y: Int(op.outputs[0]), dims: dims, strides: strides,
                          batchAxis: axis)
    }

    private func prepareStridedCopy(_ op: OperatorInfo, _ x: TensorInfo, _ y: TensorInfo, _ p: [Int64],
                                    _ what: String) throws(ModelError) -> PreparedOp {
        guard x.isBatched, !x.isConstant, x.dtype == y.dtype, x.quant == y.quant else {
            throw .invalid("\(what): copies a batched activation to one of the same dtype and quantization")
        }
        guard let rank = p.first, rank >= 0, rank <= 6, p.count == 2 + 2 * Int(rank) else {
            throw .invalid("\(what): strided copy parameters must be [rank <= 6, dims, strides, offset], found \(p.count) values")
        }
        let r = Int(rank)
        let dims = Array(p[1...r]), strides = Array(p[(1 + r)...(2 * r)]), offset = p[1 + 2 * r]
        guard dims.allSatisfy({ $0 >= 1 }), Array(y.shape.dropFirst()).reduce(Int64(1), *) == (dims.reduce(1) { $0 &* $1 }),
              let count = Model.elementCount([-1] + dims), count == perSample(y) else {
            throw .invalid("\(what): copy dims \(dims) do not fill output \(y.shape)")
        }
        // The smallest and largest element the walk touches must lie inside one input sample.
        var lo = offset, hi = offset
        for (d, s) in zip(dims, strides) {
            let (span, o) = (d - 1).multipliedReportingOverflow(by: s)
            guard !o, abs(s) <= Int64(Int32.max) else { throw .invalid("\(what): stride \(s) out of range") }
            if span < 0 { lo += span } else { hi += span }
        }
        guard lo >= 0, hi < Int64(perSample(x)) else {
            throw .invalid("\(what): copy reads elements \(lo)...\(hi) of an input sample holding \(perSample(x))")
        }
        return .stridedCopy(x: Int(op.inputs[0]), y: Int(op.outputs[0]), elem: x.dtype.byteSize, dims: dims, strides: strides,
                            offset: offset, xBatchStride: Int64(perSample(x)))
    }

    private func prepareIm2col(_ op: OperatorInfo, _ x: TensorInfo, _ y: TensorInfo, _ p: [Int64], _ what: String) throws(ModelError) -> PreparedOp {
        guard x.isBatched, !x.isConstant, x.dtype == y.dtype, x.quant == y.quant, x.dtype == .float32 || x.dtype == .int8 else {
            throw .invalid("\(what): im2col copies a batched float32 or int8 activation to one of the same dtype and quantization")
        }
        // Every value bounded (taps outside the image are skipped by the kernel), so products cannot overflow.
        guard p.count == 13 || p.count == 14, p[0...8].allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), p[9...10].allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }),
              p[11...12].allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), p.count == 13 || p[13] == 0 || p[13] == 1 else {
            throw .invalid("\(what): im2col parameters \(p), expected [C, H, W, KH, KW, OH, OW, strides >= 1, pads >= 0, dilations >= 1, layout 0/1]")
        }
        let (c, h, w, kh, kw, oh, ow) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
        if p.count == 14, p[13] == 1, kh > Int64(MN_IM2COL_NHWC_MAX_KH) {
            throw .unsupported("\(what): channels-last im2col of a kernel with \(kh) rows (at most \(MN_IM2COL_NHWC_MAX_KH))")
        }
        guard Int64(perSample(x)) == c * h * w, Int64(perSample(y)) == oh * ow * c * kh * kw, y.shape.last == c * kh * kw else {
            throw .invalid("\(what): patches of [\(c), \(h), \(w)] into [\(oh * ow), \(c * kh * kw)] do not match \(x.shape) -> \(y.shape)")
        }
        var pad: Int8 = 0
        if x.dtype == .int8 {
            guard let q = x.quant, q.axis == -1 else { throw .invalid("\(what): int8 input needs per-tensor quantization") }
            pad = Int8(q.zeroPoints[0])  // validated to lie in -128...127
        }
        let layout: Int64 = p.count == 14 ? p[13] : 0
        return .im2col(x: Int(op.inputs[0]), y: Int(op.outputs[0]), elem: x.dtype.byteSize, params: Array(p.prefix(13)) + [layout], padValue: pad)
    }

    private func prepareRecurrent(_ op: OperatorInfo, _ y: TensorInfo, _ p: [Int64], _ what: String) throws(ModelError) -> PreparedOp {
        let gates = op.opcode == .lstm ? 4 : 3
        guard p.count == (op.opcode == .lstm ? 4 : 5), p[0...2].allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), p[3] == 1 || p[3] == 2 else {
            throw .invalid("\(what): parameters \(p), expected [steps, input, hidden, directions 1 or 2\(gates == 3 ? ", linear_before_reset" : "")]")
        }
        let (s, i, h, d) = (p[0], p[1], p[2], p[3])
        for k in 0..<3 where op.inputs[k] < 0 { throw .invalid("\(what): input \(k) is missing") }
        let x = tensor(op.inputs[0]), w = tensor(op.inputs[1]), r = tensor(op.inputs[2])
        try requireFloat(what, x, w, r, y)
        let gh = Int64(gates) * h
        guard x.isBatched, perSample(x) == Int(s * i), y.isBatched, perSample(y) == Int(s * d * h),
              w.isConstant, w.shape == [d, gh, i], r.isConstant, r.shape == [d, gh, h] else {
            throw .invalid("\(what): shapes x \(x.shape), W \(w.shape), R \(r.shape), y \(y.shape) do not fit steps \(s), input \(i), hidden \(h), directions \(d)")
        }
        var yc: Int?
        if op.outputs.count == 2 {
            let c = tensor(op.outputs[1])
            guard gates == 4, c.dtype == .float32, c.isBatched, perSample(c) == Int(d * h), op.outputs[1] != op.outputs[0] else {
                throw .invalid("\(what): the final cell state must be a float32 [batch, \(d), \(h)] activation of its own, found \(c.dtype)\(c.shape)")
            }
            yc = Int(op.outputs[1])
        }
        var bias: PinnedBuffer<Float>?
        if op.inputs[3] >= 0 {
            let b = tensor(op.inputs[3])
            guard b.isConstant, b.dtype == .float32, b.shape == [d, 2 * gh] else { throw .invalid("\(what): bias must be a float32 constant [\(d), \(2 * gh)]") }
            let v = constants[Int(op.inputs[3])]!.pointer.assumingMemoryBound(to: Float.self)
            let n = Int(d * 2 * gh)
            let all = (0..<n).map { v[$0] }
            if gates == 4 {
                // LSTM adds Wb and Rb to the same gate: sum them once here.
                bias = PinnedBuffer((0..<Int(d * gh)).map { k in all[(k / Int(gh)) * 2 * Int(gh) + k % Int(gh)] + all[(k / Int(gh)) * 2 * Int(gh) + Int(gh) + k % Int(gh)] })
            } else {
                bias = PinnedBuffer(all)
            }
        }
        return .recurrent(gates: gates, x: Int(op.inputs[0]), w: Int(op.inputs[1]), r: Int(op.inputs[2]), bias: bias, y: Int(op.outputs[0]), yc: yc,
                          steps: Int(s), inputSize: Int(i), hidden: Int(h), directions: Int(d), linearBeforeReset: gates == 3 && p[4] != 0)
    }

    private func prepareGather(_ op: OperatorInfo, table: TensorInfo, ids: TensorInfo, _ y: TensorInfo,
                               _ what: String) throws(ModelError) -> PreparedOp {
        guard table.isConstant, table.shape.count == 2, table.shape[0] >= 1, table.shape[1] >= 1 else {
            throw .invalid("\(what): table must be a 2-D constant [rows, dim], found \(table.shape)")
        }
        guard ids.isBatched, ids.dtype == .int64 || ids.dtype == .int32 else {
            throw .invalid("\(what): ids must be a batched int32 or int64 activation, found \(ids.dtype)\(ids.shape)")
        }
        let dim = table.shape[1]
        guard y.dtype == .float32, y.shape == ids.shape + [dim] else {
            throw .invalid("\(what): output \(y.dtype)\(y.shape), expected float32\(ids.shape + [dim])")
        }
        var rowQuant: (PinnedBuffer<Float>, PinnedBuffer<Int32>)?
        switch table.dtype {
        case .float32: break
        case .int8:
            guard let q = table.quant, q.axis == 0 || (q.axis == -1 && q.scales.count == 1 && q.zeroPoints.count == 1) else {
                throw .invalid("\(what): int8 table needs per-row (axis 0) or per-tensor quantization")
            }
            // A per-tensor table runs on the per-row kernel with its one scale repeated (8 bytes a
            // row of session memory, none in the file).
            let rows = Int(table.shape[0])
            rowQuant = q.axis == 0 ? (PinnedBuffer(q.scales), PinnedBuffer(q.zeroPoints))
                : (PinnedBuffer(Array(repeating: q.scales[0], count: rows)), PinnedBuffer(Array(repeating: q.zeroPoints[0], count: rows)))
        default: throw .unsupported("\(what): \(table.dtype) embedding table")
        }
        return .gather(table: Int(op.inputs[0]), ids: Int(op.inputs[1]), y: Int(op.outputs[0]), rows: Int(table.shape[0]),
                       dim: Int(dim), idBytes: ids.dtype.byteSize, idsPerSample: perSample(ids), rowQuant: rowQuant)
    }

    private func prepareTake(_ op: OperatorInfo, _ x: TensorInfo, _ picks: TensorInfo, _ y: TensorInfo, _ p: [Int64],
                             _ what: String) throws(ModelError) -> PreparedOp {
        try requireFloat(what, x, y)
        guard picks.isConstant, picks.dtype == .int64, picks.shape.count == 1 else {
            throw .invalid("\(what): positions must be a 1-D int64 constant")
        }
        guard p.count == 2, p[0] >= 1, p[1] >= 1, p[0] <= Int64(Int32.max), p[1] <= Int64(Int32.max),
              p[0] * p[1] == Int64(perSample(x)) else {
            throw .invalid("\(what): parameters \(p), expected [rows, inner] covering one input sample of \(perSample(x))")
        }
        let count = Int(picks.shape[0])
        let rows = constants[Int(op.inputs[1])]!.pointer.assumingMemoryBound(to: Int64.self)
        for i in 0..<count where rows[i] < 0 || rows[i] >= p[0] {
            throw .invalid("\(what): position \(rows[i]) outside 0..<\(p[0])")
        }
        guard Int64(perSample(y)) == Int64(count) * p[1] else { throw .invalid("\(what): output \(y.shape) does not hold \(count) rows of \(p[1])") }
        return .take(x: Int(op.inputs[0]), picks: Int(op.inputs[1]), y: Int(op.outputs[0]), rowsPerSample: Int(p[0]), inner: Int(p[1]), count: count)
    }

    private func prepareMatmul(_ op: OperatorInfo, _ a: TensorInfo, _ b: TensorInfo, _ y: TensorInfo, _ p: [Int64],
                               _ what: String) throws(ModelError) -> PreparedOp {
        try requireFloat(what, a, b, y)
        // 1.6 adds [b_trans, ldb]: B read in place at row stride ldb, as K rows of N or (b_trans) N rows of K.
        // 1.8 adds [lda, a_offset, b_offset, y_stride, ldc, y_offset]: A read and Y written in place
        // in other tensors' layouts (attention's head split and merge).
        let expected = "expected [count, M, K, N, a_stride, b_stride] (+ [b_trans, ldb] from format 1.6, "
            + "+ [lda, a_offset, b_offset, y_stride, ldc, y_offset] from 1.8)"
        guard p.count == 6 || (p.count == 8 && d.formatMinor >= 6) || (p.count == 14 && d.formatMinor >= 8),
              p.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }), p[0...3].allSatisfy({ $0 >= 1 }) else {
            throw .invalid("\(what): matmul parameters \(p), \(expected)")
        }
        let (count, m, k, n, sa, sb) = (Int(p[0]), Int(p[1]), Int(p[2]), Int(p[3]), Int(p[4]), Int(p[5]))
        let bTrans = p.count >= 8 && p[6] != 0, ldb = p.count >= 8 ? Int(p[7]) : n
        guard p.count == 6 || (p[6] == 0 && ldb >= n) || (p[6] == 1 && ldb >= k) else {
            throw .invalid("\(what): matmul b_trans \(p[6]) with ldb \(ldb): expected b_trans 0 with ldb >= \(n), or 1 with ldb >= \(k)")
        }
        let wide = p.count == 14
        let lda = wide ? Int(p[8]) : k
        let (aOffset, bOffset) = wide ? (Int(p[9]), Int(p[10])) : (0, 0)
        let (sy, ldc, yOffset) = wide ? (Int(p[11]), Int(p[12]), Int(p[13])) : (m * n, n, 0)
        guard a.isBatched || b.isBatched, !(a.isConstant && b.isConstant) else { throw .invalid("\(what): one operand must be batched") }
        // Each operand's last element (per sample for batched ones) must lie inside it: offset
        // plus (extent - 1) * stride over its axes.
        func fits(_ t: TensorInfo, _ offset: Int, _ axes: [(extent: Int, stride: Int)]) -> Bool {
            var last = offset
            for (e, s) in axes {
                let (span, o1) = (e - 1).multipliedReportingOverflow(by: s)
                let (sum, o2) = last.addingReportingOverflow(span)
                guard !o1, !o2 else { return false }
                last = sum
            }
            let have = t.isBatched ? perSample(t) : (Model.elementCount(t.shape) ?? 0)
            return last < have
        }
        let bAxes = bTrans ? [(count, sb), (n, ldb), (k, 1)] : [(count, sb), (k, ldb), (n, 1)]
        guard fits(a, aOffset, [(count, sa), (m, lda), (k, 1)]), fits(b, bOffset, bAxes) else {
            throw .invalid("\(what): \(count) products of [\(m), \(k)] x [\(k), \(n)] read past \(a.shape) or \(b.shape)")
        }
        // Y: every element of its sample written exactly once. With as many elements as the
        // products make, in bounds and no two landing on one element, that is all of them; the
        // pool's parts (whole products) then never write the same element.
        let yAxes = [(count, sy), (m, ldc), (n, 1)]
        guard y.isBatched, perSample(y) == count * m * n, fits(y, yOffset, yAxes), Self.isInjective(yAxes) else {
            throw .invalid("\(what): output \(y.shape) is not \(count) x [\(m), \(n)] at y_stride \(sy), ldc \(ldc), offset \(yOffset)")
        }
        let layout = mn_matmul_layout(count: Int64(count), M: Int64(m), K: Int64(k), N: Int64(n), a_stride: Int64(sa), b_stride: Int64(sb),
                                      y_stride: Int64(sy), a_batch_stride: a.isBatched ? Int64(perSample(a)) : 0,
                                      b_batch_stride: b.isBatched ? Int64(perSample(b)) : 0, y_batch_stride: Int64(perSample(y)),
                                      lda: Int64(lda), ldb: Int64(ldb), ldc: Int64(ldc), b_trans: bTrans ? 1 : 0)
        return .matmul(a: Int(op.inputs[0]), b: Int(op.inputs[1]), y: Int(op.outputs[0]), layout: layout,
                       offsets: (aOffset, bOffset, yOffset))
    }

    /// Whether offsets sum(i_j * stride_j), 0 <= i_j < extent_j, are all distinct: sufficient
    /// (the usual test) when, by increasing stride, each axis steps past everything the smaller
    /// ones reach. Axes of extent 1 take no part.
    static func isInjective(_ axes: [(extent: Int, stride: Int)]) -> Bool {
        var reach = 0  // the largest offset the axes so far reach
        for (e, s) in axes.filter({ $0.extent > 1 }).sorted(by: { $0.stride < $1.stride }) {
            guard s > reach else { return false }
            let (span, o1) = (e - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = reach.addingReportingOverflow(span)
            guard !o1, !o2 else { return false }
            reach = sum
        }
        return true
    }
}
