import MinnowFormat
import MinnowKernels

// Load-time fusion of GELU into the Dense before it (a transformer's feed-forward up projection):
// the Dense's epilogue applies GELU to each block of outputs while it is in registers, instead of
// storing the pre-activation and reading it back. Only for Dense ops with a float output (dynamic
// and int8 -> fp32), and only the erf form. The epilogues call the table's own vector GELU (the
// reference its scalar one), so each output is the bits the separate GELU op gives.

enum GeluFusion {
    /// Replaces each (Dense, GELU) pair of consecutive ops in `ops` (prepared from `d`, index for
    /// index) whose pre-activation only the GELU reads with (Dense writing GELU's output, fusedIntoPrevious).
    static func apply(_ ops: inout [PreparedOp], _ d: ModelDescription) {
        let readers = d.readerCounts
        let slot = d.arenaSlot
        for i in ops.indices where i + 1 < ops.count {
            guard case let .unary(10, gx, gy, n, _, _) = ops[i + 1] else { continue }
            var dense: PreparedOp.Dense
            switch ops[i] {
            case let .denseDynamic(dd, _, _, _): dense = dd
            case let .denseS8F32(dd, _, _, _): dense = dd
            default: continue
            }
            guard dense.act.kind == 0, dense.y == gx, readers[gx] == 1, n == dense.rowsPerSample * dense.n,
                  !d.tensors[gy].isConstant, !slot(dense.x).overlaps(slot(gy)) else { continue }
            dense.act = mn_activation(kind: 4, lo: 0, hi: 0, alpha: 0)
            dense.y = gy
            switch ops[i] {
            case let .denseDynamic(_, bias, wsum, wscale): ops[i] = .denseDynamic(dense, bias: bias, wsum: wsum, wscale: wscale)
            case let .denseS8F32(_, bias, wsum, scale): ops[i] = .denseS8F32(dense, bias: bias, wsum: wsum, scale: scale)
            default: continue
            }
            ops[i + 1] = .fusedIntoPrevious
        }
    }
}
