import MinnowKernels

// Resolution and execution of the format-1.2 tensor ops. Split from Session.swift to keep the
// hot loop readable; like it, `runTensorOp` and `runGather` only read pre-resolved records and
// call kernels (no allocation).

/// Argument records too large for an ExecOp case, built when the session is made.
struct ArgTables {
    var binaryShapes: [BinaryShape] = []
    var concatParts: [ConcatPart] = []
    var stridedCopies: [StridedCopyArgs] = []
    var matmuls: [MatmulArgs] = []
    var broadcasts: [BroadcastArgs] = []
    /// im2col and pool parameters, 14 per op (13 from the file and the layout, 0 when absent).
    var windowParams: [Int64] = []
    var recurrent: [RecurrentArgs] = []
    var convs: [ConvArgs] = []
    var softmaxMasked: [SoftmaxMaskedArgs] = []
    var attention: [mn_attention_args] = []
}

extension BinaryShape {
    /// The iteration space with the run's batch in place.
    func withBatch(_ batch: Int) -> BinaryShape {
        var s = self
        switch batchAxis {
        case 0: s.dims.0 = Int64(batch)
        case 1: s.dims.1 = Int64(batch)
        case 2: s.dims.2 = Int64(batch)
        default: s.dims.3 = Int64(batch)
        }
        return s
    }
}

private func tuple4(_ v: [Int64]) -> (Int64, Int64, Int64, Int64) { (v[0], v[1], v[2], v[3]) }

private func tuple6(_ v: [Int64]) -> (Int64, Int64, Int64, Int64, Int64, Int64) {
    let p = v + Array(repeating: 0, count: 6 - v.count)
    return (p[0], p[1], p[2], p[3], p[4], p[5])
}

extension Session {
    static func resolveTensorOp(_ op: PreparedOp, index: Int, _ a: [UnsafeMutableRawPointer], _ tables: inout ArgTables) -> ExecOp {
        func f(_ i: Int) -> UnsafeMutablePointer<Float> { a[i].assumingMemoryBound(to: Float.self) }
        switch op {
        case let .stridedCopy(x, y, elem, dims, strides, offset, xBatch):
            tables.stridedCopies.append(StridedCopyArgs(elem: Int32(elem), rank: Int32(dims.count), dims: tuple6(dims),
                                                        strides: tuple6(strides), offset: offset, xBatchStride: xBatch))
            return .stridedCopy(x: UnsafeRawPointer(a[x]), y: a[y], shape: tables.stridedCopies.count - 1)
        case let .gather(table, ids, y, rows, dim, idBytes, perSample, rowQuant):
            return .gather(GatherArgs(table: UnsafeRawPointer(a[table]), scales: rowQuant.map { UnsafePointer($0.scales.pointer) },
                                      zeroPoints: rowQuant.map { UnsafePointer($0.zeroPoints.pointer) }, ids: UnsafeRawPointer(a[ids]),
                                      y: f(y), rows: rows, dim: dim, idBytes: Int32(idBytes), idsPerSample: perSample,
                                      operatorIndex: index))
        case let .take(x, picks, y, rows, inner, count):
            return .take(x: UnsafePointer(f(x)), picks: UnsafePointer(a[picks].assumingMemoryBound(to: Int64.self)), y: f(y),
                         rowsPerSample: rows, inner: inner, count: count)
        case let .reduce(kind, x, y, outer, extent, inner):
            return .reduce(kind: kind, x: UnsafePointer(f(x)), y: f(y), outer: outer, extent: extent, inner: inner)
        case let .matmul(x, w, y, layout, offsets):
            tables.matmuls.append(MatmulArgs(a: UnsafePointer(f(x) + offsets.a), b: UnsafePointer(f(w) + offsets.b), y: f(y) + offsets.y,
                                             layout: layout))
            return .matmul(args: tables.matmuls.count - 1)
        case let .layerNorm(x, residual, gamma, beta, y, rows, dim, eps):
            return .layerNorm(x: UnsafePointer(f(x)), residual: residual.map { UnsafePointer(f($0)) }, gamma: UnsafePointer(f(gamma)), beta: beta.map { UnsafePointer(f($0)) }, y: f(y),
                              rowsPerSample: rows, dim: dim, eps: eps)
        case let .broadcast(kind, operands, y, dims, strides, axis):
            let shape = BinaryShape(dims: tuple4(dims), aStrides: tuple4(strides[0]), bStrides: tuple4(strides[1]), batchAxis: axis)
            tables.broadcasts.append(BroadcastArgs(kind: kind, a: UnsafeRawPointer(a[operands[0]]), b: UnsafeRawPointer(a[operands[1]]),
                                                   c: operands.count > 2 ? UnsafeRawPointer(a[operands[2]]) : nil, y: a[y], shape: shape,
                                                   cStrides: strides.count > 2 ? tuple4(strides[2]) : (0, 0, 0, 0)))
            return .broadcast(args: tables.broadcasts.count - 1)
        case let .not(x, y, n):
            return .not(x: UnsafePointer(a[x].assumingMemoryBound(to: UInt8.self)), y: a[y].assumingMemoryBound(to: UInt8.self), perSample: n)
        case let .cast(from, to, x, y, n):
            return .cast(from: from, to: to, x: UnsafeRawPointer(a[x]), y: a[y], perSample: n)
        case let .im2col(x, y, elem, params, pad):
            tables.windowParams += params
            return .im2col(x: UnsafeRawPointer(a[x]), y: a[y], elem: Int32(elem), params: tables.windowParams.count - 14, padValue: pad)
        case let .pool(x, y, int8, params):
            tables.windowParams += params
            return .pool(x: UnsafeRawPointer(a[x]), y: a[y], int8: int8, params: tables.windowParams.count - 14)
        case let .recurrent(gates, x, w, r, bias, y, yc, steps, inputSize, hidden, directions, lbr):
            tables.recurrent.append(RecurrentArgs(gates: gates, x: UnsafePointer(f(x)), w: UnsafePointer(f(w)), r: UnsafePointer(f(r)),
                                                  bias: bias.map { UnsafePointer($0.pointer) }, y: f(y), yc: yc.map(f), steps: steps, inputSize: inputSize,
                                                  hidden: hidden, directions: directions, linearBeforeReset: lbr))
            return .recurrent(args: tables.recurrent.count - 1)
        case let .convS8(c):
            tables.windowParams += c.params
            tables.convs.append(ConvArgs(x: UnsafePointer(a[c.x].assumingMemoryBound(to: Int8.self)),
                                         w: UnsafePointer(c.packed.pointer.assumingMemoryBound(to: Int8.self)),
                                         bias: UnsafePointer(c.bias.pointer), mult: UnsafePointer(c.mult.pointer),
                                         shift: UnsafePointer(c.shift.pointer), y: a[c.y].assumingMemoryBound(to: Int8.self),
                                         params: tables.windowParams.count - 14, n: Int32(c.n), outZP: c.outZP, qmin: c.qmin,
                                         qmax: c.qmax, padValue: c.padValue))
            return .convS8(args: tables.convs.count - 1)
        case let .softmaxMasked(m):
            let c = mn_softmax_masked_args(x: UnsafePointer(f(m.x)), mask: UnsafePointer(f(m.mask)), y: f(m.y),
                                           dims: (m.rowDims[0], m.rowDims[1], m.rowDims[2]),
                                           mask_strides: (m.maskStrides[0], m.maskStrides[1], m.maskStrides[2]), cols: Int64(m.cols),
                                           scale_op: m.scaleOp, flags: (m.log ? 1 : 0) | (m.nanToZero ? 2 : 0), scale: m.scale)
            tables.softmaxMasked.append(SoftmaxMaskedArgs(c: c, batchAxis: m.batchAxis))
            return .softmaxMasked(args: tables.softmaxMasked.count - 1)
        case let .attention(t):
            let ms = t.maskStrides
            tables.attention.append(mn_attention_args(
                q: UnsafePointer(f(t.q) + t.offsets.q), k: UnsafePointer(f(t.k) + t.offsets.k), v: UnsafePointer(f(t.v) + t.offsets.v),
                mask: UnsafePointer(f(t.mask)), o: f(t.o) + t.offsets.o, qk: t.qk, pv: t.pv, mask_strides: (ms[0], ms[1], ms[2]),
                scale_op: t.scaleOp, nan_to_zero: t.nanToZero ? 1 : 0, scale: t.scale, bf16: t.bf16 ? 1 : 0))
            return .attention(args: tables.attention.count - 1)
        default:
            preconditionFailure("resolveTensorOp called with a core op")
        }
    }

    /// Looks up a batch of ids; an id outside the table becomes a RunError (ids are data).
    func runGather(_ g: GatherArgs, batch: Int) -> RunError? {
        let n = Int64(g.idsPerSample * batch)
        let bad: Int64
        if let scales = g.scales, let zps = g.zeroPoints {
            bad = mn_gather_s8_rows(g.table.assumingMemoryBound(to: Int8.self), scales, zps, Int64(g.rows), Int64(g.dim),
                                    g.ids, g.idBytes, n, g.y)
        } else {
            bad = mn_gather_f32(g.table.assumingMemoryBound(to: Float.self), Int64(g.rows), Int64(g.dim), g.ids, g.idBytes, n, g.y)
        }
        guard bad >= 0 else { return nil }
        let id = g.idBytes == 8 ? g.ids.load(fromByteOffset: Int(bad) * 8, as: Int64.self)
                                : Int64(g.ids.load(fromByteOffset: Int(bad) * 4, as: Int32.self))
        return .idOutOfRange(operatorIndex: g.operatorIndex, position: Int(bad), id: id, rows: g.rows)
    }

    func runTensorOp(_ op: ExecOp, batch: Int, _ ctx: ExecContext) {
        let pool = ctx.pool
        switch op {
        case let .stridedCopy(x, y, index):
            var s = tables.stridedCopies[index]
            withUnsafePointer(to: &s.dims) { dims in
                withUnsafePointer(to: &s.strides) { strides in
                    mn_par_strided_copy(pool, x, y, s.elem, s.rank, UnsafeRawPointer(dims).assumingMemoryBound(to: Int64.self),
                                    UnsafeRawPointer(strides).assumingMemoryBound(to: Int64.self), s.offset, Int64(batch),
                                    s.xBatchStride)
                }
            }
        case let .take(x, picks, y, rows, inner, count):
            // Positions were checked at load, so the kernel cannot report a bad one here.
            mn_take_f32(x, Int64(rows), Int64(inner), picks, Int64(count), Int64(batch), y)
        case let .reduce(kind, x, y, outer, extent, inner):
            mn_reduce_f32(kind, x, y, Int64(outer * batch), Int64(extent), Int64(inner))
        case let .matmul(index):
            // batch x count products, split across the pool by whole products.
            let m = tables.matmuls[index]
            var layout = m.layout
            mn_par_matmul_f32(pool, table, m.a, m.b, m.y, Int64(batch), &layout)
        case let .layerNorm(x, residual, gamma, beta, y, rows, dim, eps):
            mn_par_layer_norm_f32(pool, table, x, residual, gamma, beta, y, Int64(rows * batch), Int64(dim), eps)
        case let .broadcast(index):
            var b = tables.broadcasts[index]
            var s = b.shape.withBatch(batch)
            withUnsafePointer(to: &s.dims) { dp in
                withUnsafePointer(to: &s.aStrides) { ap in
                    withUnsafePointer(to: &s.bStrides) { bp in
                        withUnsafePointer(to: &b.cStrides) { cp in
                            let dims = UnsafeRawPointer(dp).assumingMemoryBound(to: Int64.self)
                            let aS = UnsafeRawPointer(ap).assumingMemoryBound(to: Int64.self)
                            let bS = UnsafeRawPointer(bp).assumingMemoryBound(to: Int64.self)
                            let cS = UnsafeRawPointer(cp).assumingMemoryBound(to: Int64.self)
                            switch b.kind {
                            case let .compare(code, int64):
                                mn_compare(code, int64 ? 1 : 0, b.a, aS, b.b, bS, b.y.assumingMemoryBound(to: UInt8.self), dims)
                            case let .logic(code):
                                mn_logic_u8(code, b.a.assumingMemoryBound(to: UInt8.self), aS, b.b.assumingMemoryBound(to: UInt8.self), bS,
                                            b.y.assumingMemoryBound(to: UInt8.self), dims)
                            case let .where(elem):
                                mn_where(elem, b.a.assumingMemoryBound(to: UInt8.self), aS, b.b, bS, b.c!, cS, b.y, dims)
                            }
                        }
                    }
                }
            }
        case let .not(x, y, n):
            mn_not_u8(x, y, Int64(n * batch))
        case let .cast(from, to, x, y, n):
            mn_cast(from, to, x, y, Int64(n * batch))
        case let .im2col(x, y, elem, at, pad):
            tables.windowParams.withUnsafeBufferPointer { p in mn_par_im2col(pool, x, y, elem, p.baseAddress! + at, Int64(batch), pad) }
        case let .pool(x, y, int8, at):
            tables.windowParams.withUnsafeBufferPointer { p in mn_par_pool(pool, x, y, int8 ? 1 : 0, p.baseAddress! + at, Int64(batch)) }
        case let .convS8(index):
            let c = tables.convs[index]
            tables.windowParams.withUnsafeBufferPointer { p in
                mn_par_conv_s8(pool, table, c.x, c.w, c.bias, c.mult, c.shift, c.outZP, c.qmin, c.qmax, c.y, p.baseAddress! + c.params,
                               c.n, Int64(batch), c.padValue, ctx.convScratch)
            }
        case let .softmaxMasked(index):
            var m = tables.softmaxMasked[index].c
            switch tables.softmaxMasked[index].batchAxis {
            case 0: m.dims.0 = Int64(batch)
            case 1: m.dims.1 = Int64(batch)
            default: m.dims.2 = Int64(batch)
            }
            mn_par_softmax_masked_f32(pool, table, &m)
        case let .attention(index):
            var t = tables.attention[index]
            mn_par_attention_f32(pool, table, &t, Int64(batch))
        case let .recurrent(index):
            let a = tables.recurrent[index]
            let s = recurrentScratch.pointer.assumingMemoryBound(to: Float.self)
            mn_par_recurrent_f32(pool, table, Int32(a.gates), a.x, a.w, a.r, a.bias, a.y, a.yc, Int64(batch), Int64(a.steps), Int64(a.inputSize),
                                 Int64(a.hidden), Int64(a.directions), a.linearBeforeReset ? 1 : 0, s)
        default:
            break
        }
    }
}
