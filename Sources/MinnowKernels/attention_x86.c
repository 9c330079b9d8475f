// The fused attention's driver, written once for the x86 tables: an ISA (attention_avx2.c,
// attention_avx512.c) supplies the K^T gather, a block of score rows, its masked softmax and the
// block's output product; the order of the steps, the buffers and the NaN rule live here.
//
// Per product: K^T gathered once into a stack buffer (when K is stored as rows), then blocks of
// `rows` query rows, software-pipelined over two score buffers: block i's softmax, then block
// i + 1's scores, then block i's output product. Each step reads what the step before last stored:
// loads cannot take their data from masked (and partly overlapping) stores still in flight, and
// waiting for them cost a third of the op. Score rows are np = round_up(N, 16) floats apart, so
// every row is 64-byte aligned (rows N apart split most vectors across cache lines).
//
// O may be Q's very elements: block i + 1's query rows are read before block i's outputs are
// written, and a block's own rows before that. Unsafe pointer code: shapes were validated at
// session creation and checked against MN_ATTENTION_SCRATCH_FLOATS by the fusion.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

void mn_x86_attention(const mn_attention_isa *isa, const float *q, int64_t ldq, const float *k, int64_t ldk,
                      int32_t k_rows, const float *v, int64_t ldv, const float *mask, int64_t mask_row_stride, float *o,
                      int64_t ldo, int64_t M, int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale,
                      int32_t nan_to_zero) {
    float buf[MN_ATTENTION_SCRATCH_FLOATS] __attribute__((aligned(64)));
    if (M <= 0 || N <= 0 || dv <= 0) return;
    const int64_t np = (N + 15) & ~(int64_t)15, R = isa->rows;
    const float *kt = k;
    int64_t ldkt = ldk;
    float *s = buf;
    if (k_rows) {
        isa->transpose_keys(k, ldk, N, d, buf, np);
        kt = buf;
        ldkt = np;
        s = buf + d * np;
    }
    float *sb[2] = {s, s + R * np};
    isa->scores(q, ldq, M, 0, kt, ldkt, d, N, sb[0], np);
    for (int64_t i0 = 0; i0 < M; i0 += R) {
        const int rows = M - i0 < R ? (int)(M - i0) : (int)R;
        float *p = sb[(i0 / R) & 1];
        isa->softmax(p, mask + i0 * mask_row_stride, mask_row_stride, p, rows, N, np, scale_op, scale);
        if (nan_to_zero)
            for (int r = 0; r < rows; r++)
                for (int64_t j = 0; j < N; j++) p[r * np + j] = p[r * np + j] != p[r * np + j] ? 0.f : p[r * np + j];
        if (i0 + R < M) isa->scores(q, ldq, M, i0 + R, kt, ldkt, d, N, sb[(i0 / R + 1) & 1], np);
        isa->outputs(p, N, np, v, ldv, dv, o + i0 * ldo, ldo, rows);
    }
}
#endif
