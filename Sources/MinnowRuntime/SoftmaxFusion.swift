import MinnowFormat

// Load-time fusion of attention's scale, mask and softmax. Exporters write scaled dot-product
// attention as MatMul, then Div (or Mul) by a scalar, then Add of a mask that broadcasts over
// heads and query rows, then Softmax over the last axis. Run apart, each op streams the whole
// [heads, L, L] score tensor through memory; fused, each block of rows is scaled, masked and
// normalised while it is in cache (mn_par_softmax_masked_f32). Every element is rounded as the
// separate ops round it, so the outputs are the same bytes.

enum SoftmaxFusion {
    /// Replaces each fusable ([Div|Mul by a scalar constant,] Add, Softmax) run of consecutive ops
    /// in `ops` (prepared from `d`, index for index) with (softmaxMasked, fusedIntoPrevious...).
    static func apply(_ ops: inout [PreparedOp], _ d: ModelDescription, constants: [AlignedBytes?]) {
        let readers = d.readerCounts
        let slot = d.arenaSlot
        /// Whether `strides` are row-major over `dims` (any stride where an extent is 1).
        func contiguous(_ dims: [Int64], _ strides: [Int64]) -> Bool {
            var step: Int64 = 1
            for i in (0..<4).reversed() {
                if dims[i] != 1 && strides[i] != step { return false }
                step *= dims[i]
            }
            return true
        }
        for i in ops.indices {
            // The Softmax: rows of `cols`, written once, read by nothing fused.
            guard i >= 1, case let .softmax(sx, sy, cols, rowsPerSample, log, nanToZero) = ops[i],
                  case let .binary(0, a0, b0, addOut, dims, aS, bS, axis) = ops[i - 1], addOut == sx, readers[addOut] == 1,
                  axis < 3, dims[3] == Int64(cols), dims[0] * dims[1] * dims[2] == Int64(rowsPerSample) else { continue }
            // Which Add operand is the scores (contiguous) and which the mask (unit stride along
            // the row, broadcast elsewhere or not)?
            let (scores, mask, maskStrides): (Int, Int, [Int64])
            if contiguous(dims, aS) && bS[3] == 1 && a0 != b0 {
                (scores, mask, maskStrides) = (a0, b0, bS)
            } else if contiguous(dims, bS) && aS[3] == 1 && a0 != b0 {
                (scores, mask, maskStrides) = (b0, a0, aS)
            } else { continue }
            // An optional scale just before: the scores over a scalar constant, read only here.
            var first = i - 1, x = scores, scaleOp: Int32 = -1, scale: Float = 1
            if i >= 2, case let .binary(code, sa, sb, scaled, sdims, saS, sbS, _) = ops[i - 2], scaled == scores, readers[scaled] == 1,
               code == 2 || code == 3, sdims == dims, contiguous(sdims, saS), sbS.allSatisfy({ $0 == 0 }),
               d.tensors[sb].isConstant, d.tensors[sb].shape.reduce(1, *) == 1, let c = constants[sb], c.count >= 4, sa != sb {
                let s = c.pointer.load(as: Float.self)
                // x / s is x * (1/s) to the bit when 1/s is exact (s a power of two): the multiply is cheaper.
                if code == 3, s.isNormal, s.significandBitPattern == 0, (1 / s).isNormal {
                    (scaleOp, scale) = (2, 1 / s)
                } else {
                    (scaleOp, scale) = (code, s)
                }
                (first, x) = (i - 2, sa)
            }
            // Rows are written in place of the scores or beside them, never over the mask.
            if !d.tensors[x].isConstant, slot(x) != slot(sy) && slot(x).overlaps(slot(sy)) { continue }
            if !d.tensors[mask].isConstant, slot(mask).overlaps(slot(sy)) { continue }
            if d.tensors[x].isConstant { continue }
            ops[first] = .softmaxMasked(PreparedOp.SoftmaxMasked(
                x: x, mask: mask, y: sy, rowDims: Array(dims[0..<3]), batchAxis: axis, maskStrides: Array(maskStrides[0..<3]),
                cols: cols, scaleOp: scaleOp, scale: scale, log: log, nanToZero: nanToZero))
            for j in (first + 1)...i { ops[j] = .fusedIntoPrevious }
        }
    }
}
