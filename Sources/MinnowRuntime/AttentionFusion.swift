import MinnowFormat
import MinnowKernels

// Load-time fusion of scaled dot-product attention: the scores' product (Q K^T), the masked
// softmax SoftmaxFusion made of the scale, mask and Softmax, and the output product (P V) run as
// one operator on the table's attention_f32, a block of query rows at a time. Apart, the scores and the
// probabilities ([heads, L, L] per sample) go through the arena twice; fused, a block of rows
// stays in a stack buffer. Every element is computed by the same chain of operations as the
// three ops compute it (see attention_avx512.c and attention_avx2.c), so the outputs are the
// same bytes. The reference table has no attention_f32 and keeps the three ops.
//
// With `bf16`, where the table's attention_bf16 runs on this CPU and its scratch fits, the fused
// op rounds Q, K, the probabilities and V to bfloat16 for the products (attention_bf16_avx512.c):
// not the three ops' bytes, the opt-in AttentionPrecision.bf16.

enum AttentionFusion {
    /// Replaces each (matmul, softmaxMasked, fusedIntoPrevious..., matmul) run of ops in `ops`
    /// (prepared from `d`, index for index) that is attention with (attention, fusedIntoPrevious...).
    static func apply(_ ops: inout [PreparedOp], _ d: ModelDescription, kernels: mn_kernel_table, bf16: Bool) {
        guard kernels.attention_f32 != nil else { return }
        let readers = d.readerCounts
        let slot = d.arenaSlot
        for i in ops.indices {
            guard case let .matmul(q, k, scores, qk, qkOffsets) = ops[i], qkOffsets.y == 0,
                  i + 1 < ops.count, case let .softmaxMasked(sm) = ops[i + 1], sm.x == scores else { continue }
            var j = i + 2
            while j < ops.count, case .fusedIntoPrevious = ops[j] { j += 1 }
            guard j < ops.count, case let .matmul(probs, v, o, pv, pvOffsets) = ops[j], probs == sm.y, pvOffsets.a == 0 else { continue }
            let (count, m, n) = (qk.count, qk.M, qk.N)
            // The scores and probabilities: dense [count, M, N] per sample, read by nothing else.
            guard readers[scores] == 1, readers[probs] == 1, !sm.log, sm.cols == Int(n),
                  qk.y_stride == m * n, qk.y_batch_stride == count * m * n, qk.ldc == n,
                  pv.a_stride == m * n, pv.a_batch_stride == count * m * n, pv.lda == n,
                  pv.b_trans == 0, pv.count == count, pv.M == m, pv.K == n else { continue }
            // Softmax rows indexed (sample, product, query row), so each product's mask is one
            // pointer and a row stride.
            guard sm.batchAxis == 0, sm.rowDims.count == 3, sm.rowDims[1] == count, sm.rowDims[2] == m,
                  sm.maskStrides.count == 3 else { continue }
            // The kernel's stack buffer: K^T (when stored as rows) and two blocks of (up to eight) score rows.
            // The bf16 kernel's: K and V in pairs, score, probability and query blocks.
            let padded = (n + 15) / 16 * 16
            let inBF16 = bf16 && mn_attention_bf16_scratch_floats(n, qk.K, pv.N) <= Int64(MN_ATTENTION_SCRATCH_FLOATS)
            guard inBF16 || ((qk.b_trans != 0 ? qk.K : 0) + 16) * padded <= Int64(MN_ATTENTION_SCRATCH_FLOATS) else { continue }
            // O is written while Q, K, V and the mask are still read: it must not share their bytes,
            // except where it is Q's or K's very elements (the memory plan reuses Q's slot for O
            // once the scores' product has read it): the kernel reads a block's query rows before
            // it writes their outputs, and a head's keys before any of its outputs.
            let sameAsQ = slot(q) == slot(o) && qk.a_batch_stride == pv.y_batch_stride && qk.a_stride == pv.y_stride
                && qk.lda == pv.ldc && qkOffsets.a == pvOffsets.y && qk.K == pv.N
            let sameAsK = qk.b_trans != 0 && slot(k) == slot(o) && qk.b_batch_stride == pv.y_batch_stride
                && qk.b_stride == pv.y_stride && qk.ldb == pv.ldc && qkOffsets.b == pvOffsets.y && qk.K == pv.N && n == m
            let reads = [(q, sameAsQ), (k, sameAsK), (v, false), (sm.mask, false)].filter { !d.tensors[$0.0].isConstant }
            guard !d.tensors[o].isConstant, reads.allSatisfy({ $0.1 || !slot($0.0).overlaps(slot(o)) }) else { continue }
            ops[i] = .attention(PreparedOp.Attention(
                q: q, k: k, v: v, mask: sm.mask, o: o, qk: qk, pv: pv,
                offsets: (q: qkOffsets.a, k: qkOffsets.b, v: pvOffsets.b, o: pvOffsets.y),
                maskStrides: sm.maskStrides, scaleOp: sm.scaleOp, scale: sm.scale, nanToZero: sm.nanToZero, bf16: inBF16))
            for f in (i + 1)...j { ops[f] = .fusedIntoPrevious }
        }
    }
}
