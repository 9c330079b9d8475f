// Scaled dot-product attention for one product (one sample's head) on the AVX-512 tables:
// S = Q K^T, P = softmax((S OP scale) + mask), O = P V, eight query rows at a time, so a block's
// scores and probabilities live in 8 x N stack buffers (L1) and never go through the arena.
// The steps' order and buffers are the shared driver's (attention_x86.c); this file has the
// 16-lane blocks.
//
// Bits: each score is mn_gemm_f32_avx512's chain for that element (0, then one FMA per k in
// order; its store and reload every 256 k are exact), the block's rows go through the table's own
// mn_softmax_masked_f32_avx512, and each output is again the GEMM's chain (0, one FMA per key in
// order). So the fused op gives the same bytes as the three ops it replaces (SIMDKernelTests and
// RecommendationFixtureTests check it); what it saves is the GEMM's panel copies (K^T is gathered once
// per head here, not once per 32-column panel), its per-call setup on short K, and the scores'
// and probabilities' round trips through L2.
//
// Unsafe pointer code: shapes were validated at session creation and checked against
// MN_ATTENTION_SCRATCH_FLOATS by the fusion (AttentionFusion.swift).
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

static inline __mmask16 tail_lanes(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

// Blocks of R = 8 query rows: each product element is one FMA chain (its bits fixed by the order
// of k or keys), so only more rows make more independent chains; 8 rows x 2 vectors keep both
// FMA ports busy through the 4-cycle latency (4 rows x 1 vector, dv = 16, ran at a quarter).
enum { R = 8 };

/// R rows of scores for keys [j0, j0 + 16 NV): s[r][j] = sum_c q[r][c] kt[c][j], the GEMM's
/// chain. Rows past the last query repeat it (computed, stored into the buffer, never used).
#define QK_BLOCK(NV)                                                                                                    \
    AVX512 static inline __attribute__((always_inline)) void qk_block_##NV(const float *const *qr, const float *kt,      \
                                                                          int64_t ldkt, int64_t d, int64_t j0,          \
                                                                          int64_t N, float *s, int64_t ld) {            \
        __m512 acc[R][NV];                                                                                              \
        __mmask16 m[NV];                                                                                                \
        for (int v = 0; v < NV; v++) {                                                                                  \
            m[v] = tail_lanes(N - j0 - 16 * v);                                                                        \
            for (int r = 0; r < R; r++) acc[r][v] = _mm512_setzero_ps();                                               \
        }                                                                                                               \
        for (int64_t c = 0; c < d; c++) {                                                                               \
            __m512 b[NV];                                                                                               \
            for (int v = 0; v < NV; v++) b[v] = _mm512_maskz_loadu_ps(m[v], kt + c * ldkt + j0 + 16 * v);            \
            for (int r = 0; r < R; r++) {                                                                               \
                const __m512 a = _mm512_set1_ps(qr[r][c]);                                                             \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);                          \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++)                                                                                     \
            for (int v = 0; v < NV; v++) _mm512_store_ps(s + r * ld + j0 + 16 * v, acc[r][v]);                         \
    }
QK_BLOCK(1)
QK_BLOCK(2)

/// Output columns [c0, c0 + 16 NV) of `rows` rows: o[r][c] = sum_j p[r][j] v[j][c], the GEMM's chain.
#define PV_BLOCK(NV)                                                                                                    \
    AVX512 static inline __attribute__((always_inline)) void pv_block_##NV(                                            \
        const float *p, int64_t N, int64_t ld, const float *v, int64_t ldv, int64_t c0, int64_t dv, float *o, int64_t ldo,       \
        int rows) {                                                                                                     \
        __m512 acc[R][NV];                                                                                              \
        __mmask16 m[NV];                                                                                                \
        for (int u = 0; u < NV; u++) {                                                                                  \
            m[u] = tail_lanes(dv - c0 - 16 * u);                                                                       \
            for (int r = 0; r < R; r++) acc[r][u] = _mm512_setzero_ps();                                               \
        }                                                                                                               \
        for (int64_t j = 0; j < N; j++) {                                                                               \
            __m512 b[NV];                                                                                               \
            for (int u = 0; u < NV; u++) b[u] = _mm512_maskz_loadu_ps(m[u], v + j * ldv + c0 + 16 * u);              \
            for (int r = 0; r < R; r++) {                                                                               \
                const __m512 a = _mm512_set1_ps(p[r * ld + j]);                                                         \
                for (int u = 0; u < NV; u++) acc[r][u] = _mm512_fmadd_ps(a, b[u], acc[r][u]);                          \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < rows; r++)                                                                                  \
            for (int u = 0; u < NV; u++) _mm512_mask_storeu_ps(o + r * ldo + c0 + 16 * u, m[u], acc[r][u]);           \
    }
PV_BLOCK(1)
PV_BLOCK(2)

/// K [N, d] (rows ldk apart) into kt [d, np], np = N rounded up to 16, zero past N: one gather
/// per 16 keys and k where the indices fit in int32, else element by element.
AVX512 static void transpose_keys(const float *k, int64_t ldk, int64_t N, int64_t d, float *kt, int64_t np) {
    if (ldk < (INT64_C(1) << 26)) {
        const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32((int32_t)ldk));
        for (int64_t j0 = 0; j0 < np; j0 += 16) {
            const __mmask16 m = tail_lanes(N - j0);
            const float *base = k + j0 * ldk;
            for (int64_t c = 0; c < d; c++)
                _mm512_storeu_ps(kt + c * np + j0, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base + c, 4));
        }
        return;
    }
    for (int64_t c = 0; c < d; c++)
        for (int64_t j = 0; j < np; j++) kt[c * np + j] = j < N ? k[j * ldk + c] : 0.f;
}

/// The scores of query rows [i0, i0 + R) (the last repeated past M) into s [R, N].
AVX512 static void qk_rows(const float *q, int64_t ldq, int64_t M, int64_t i0, const float *kt, int64_t ldkt, int64_t d,
                           int64_t N, float *s, int64_t ld) {
    const float *qr[R];
    for (int r = 0; r < R; r++) qr[r] = q + (i0 + r < M ? i0 + r : M - 1) * ldq;
    for (int64_t j0 = 0; j0 < N; j0 += 32) {
        if (N - j0 > 16) qk_block_2(qr, kt, ldkt, d, j0, N, s, ld);
        else qk_block_1(qr, kt, ldkt, d, j0, N, s, ld);
    }
}

/// The block's outputs, 32 columns at a time.
AVX512 static void outputs(const float *p, int64_t N, int64_t ld, const float *v, int64_t ldv, int64_t dv, float *o,
                           int64_t ldo, int rows) {
    for (int64_t c0 = 0; c0 < dv; c0 += 32) {
        if (dv - c0 > 16) pv_block_2(p, N, ld, v, ldv, c0, dv, o, ldo, rows);
        else pv_block_1(p, N, ld, v, ldv, c0, dv, o, ldo, rows);
    }
}

static const mn_attention_isa isa512 = {R, transpose_keys, qk_rows, mn_softmax_masked_ld_f32_avx512, outputs};

void mn_attention_f32_avx512(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows, const float *v,
                             int64_t ldv, const float *mask, int64_t mask_row_stride, float *o, int64_t ldo, int64_t M,
                             int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale, int32_t nan_to_zero) {
    mn_x86_attention(&isa512, q, ldq, k, ldk, k_rows, v, ldv, mask, mask_row_stride, o, ldo, M, N, d, dv, scale_op, scale,
                     nan_to_zero);
}
#endif
