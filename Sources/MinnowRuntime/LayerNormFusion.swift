import MinnowFormat

// Load-time fusion of a transformer block's residual Add into the LayerNorm after it
// (y = LayerNorm(a + b)). Apart, the Add writes the sum and the LayerNorm reads it back; fused,
// mn_layer_norm_f32 adds a + b as it reads them (rounded as the Add rounds them), so the outputs
// are the same bytes and the sum never goes through memory.

enum LayerNormFusion {
    /// Replaces each (Add, LayerNorm) pair of consecutive ops in `ops` (prepared from `d`, index
    /// for index) whose sum only the LayerNorm reads with (layerNorm(residual:), fusedIntoPrevious).
    static func apply(_ ops: inout [PreparedOp], _ d: ModelDescription) {
        let readers = d.readerCounts
        let slot = d.arenaSlot
        for i in ops.indices where i >= 1 {
            guard case let .layerNorm(x, nil, gamma, beta, y, rows, dim, eps) = ops[i],
                  case let .binary(0, a, b, sum, _, _, _, _) = ops[i - 1], sum == x, readers[sum] == 1 else { continue }
            // Both operands whole activations of the sum's shape: no broadcast, nothing constant.
            let shape = d.tensors[sum].shape
            guard [a, b].allSatisfy({ !d.tensors[$0].isConstant && d.tensors[$0].shape == shape }) else { continue }
            // The kernel normalizes row by row: y may be an operand's very bytes (each row read
            // before it is written), never part of one.
            guard [a, b].allSatisfy({ slot($0) == slot(y) || !slot($0).overlaps(slot(y)) }) else { continue }
            ops[i - 1] = .layerNorm(x: a, residual: b, gamma: gamma, beta: beta, y: y, rowsPerSample: rows, dim: dim, eps: eps)
            ops[i] = .fusedIntoPrevious
        }
    }
}
