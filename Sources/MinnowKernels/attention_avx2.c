// The fused attention's 8-lane blocks for the AVX2 table (the driver, attention_x86.c, and the
// why, attention_avx512.c, are shared): blocks of four query rows (4 rows x 2 vectors = the eight
// FMA chains two ports need in 16 registers), the table's own masked softmax. Each element is mn_gemm_f32_avx2's chain (0, then one FMA per k or key in order), so
// the bytes are the three operators'.
//
// Unsafe pointer code: shapes were validated at session creation and checked against
// MN_ATTENTION_SCRATCH_FLOATS by the fusion (AttentionFusion.swift).
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

enum { R2 = 4 };

/// Lanes [0, n) of an 8-lane mask (all for n >= 8, none for n <= 0).
AVX2 static inline __m256i lanes8(int64_t n) {
    const int32_t k = n >= 8 ? 8 : n <= 0 ? 0 : (int32_t)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Four rows of scores for keys [j0, j0 + 8 NV) into rows `ld` apart (whole vectors: ld is N
/// rounded up to 8). Rows past the last query repeat it.
#define QK8_BLOCK(NV)                                                                                                   \
    AVX2 static inline __attribute__((always_inline)) void qk8_block_##NV(const float *const *qr, const float *kt,      \
                                                                         int64_t ldkt, int64_t d, int64_t j0,           \
                                                                         int64_t N, float *s, int64_t ld) {             \
        __m256 acc[R2][NV];                                                                                             \
        __m256i m[NV];                                                                                                  \
        int full[NV]; /* whole vectors take plain loads (vmaskmovps costs more) */                                      \
        for (int v = 0; v < NV; v++) {                                                                                  \
            m[v] = lanes8(N - j0 - 8 * v);                                                                              \
            full[v] = N - j0 - 8 * v >= 8;                                                                              \
            for (int r = 0; r < R2; r++) acc[r][v] = _mm256_setzero_ps();                                              \
        }                                                                                                               \
        for (int64_t c = 0; c < d; c++) {                                                                               \
            __m256 b[NV];                                                                                               \
            for (int v = 0; v < NV; v++)                                                                                \
                b[v] = full[v] ? _mm256_loadu_ps(kt + c * ldkt + j0 + 8 * v) : _mm256_maskload_ps(kt + c * ldkt + j0 + 8 * v, m[v]); \
            for (int r = 0; r < R2; r++) {                                                                              \
                const __m256 a = _mm256_broadcast_ss(qr[r] + c);                                                       \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);                          \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R2; r++)                                                                                    \
            for (int v = 0; v < NV; v++) _mm256_store_ps(s + r * ld + j0 + 8 * v, acc[r][v]);                          \
    }
QK8_BLOCK(1)
QK8_BLOCK(2)

/// Output columns [c0, c0 + 8 NV) of `rows` rows: o[r][c] = sum_j p[r][j] v[j][c].
#define PV8_BLOCK(NV)                                                                                                   \
    AVX2 static inline __attribute__((always_inline)) void pv8_block_##NV(                                             \
        const float *p, int64_t N, int64_t ld, const float *v, int64_t ldv, int64_t c0, int64_t dv, float *o,         \
        int64_t ldo, int rows) {                                                                                        \
        __m256 acc[R2][NV];                                                                                             \
        __m256i m[NV];                                                                                                  \
        int full[NV];                                                                                                   \
        for (int u = 0; u < NV; u++) {                                                                                  \
            m[u] = lanes8(dv - c0 - 8 * u);                                                                             \
            full[u] = dv - c0 - 8 * u >= 8;                                                                             \
            for (int r = 0; r < R2; r++) acc[r][u] = _mm256_setzero_ps();                                              \
        }                                                                                                               \
        for (int64_t j = 0; j < N; j++) {                                                                               \
            __m256 b[NV];                                                                                               \
            for (int u = 0; u < NV; u++)                                                                                \
                b[u] = full[u] ? _mm256_loadu_ps(v + j * ldv + c0 + 8 * u) : _mm256_maskload_ps(v + j * ldv + c0 + 8 * u, m[u]); \
            for (int r = 0; r < R2; r++) {                                                                              \
                const __m256 a = _mm256_broadcast_ss(p + r * ld + j);                                                  \
                for (int u = 0; u < NV; u++) acc[r][u] = _mm256_fmadd_ps(a, b[u], acc[r][u]);                          \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < rows; r++)                                                                                  \
            for (int u = 0; u < NV; u++) _mm256_maskstore_ps(o + r * ldo + c0 + 8 * u, m[u], acc[r][u]);              \
    }
PV8_BLOCK(1)
PV8_BLOCK(2)

/// K [N, d] (rows ldk apart) into kt [d, np], zero past N.
AVX2 static void transpose_keys8(const float *k, int64_t ldk, int64_t N, int64_t d, float *kt, int64_t np) {
    if (ldk < (INT64_C(1) << 27)) {
        const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int32_t)ldk));
        for (int64_t j0 = 0; j0 < np; j0 += 8) {
            const __m256 m = _mm256_castsi256_ps(lanes8(N - j0));
            const float *base = k + j0 * ldk;
            for (int64_t c = 0; c < d; c++)
                _mm256_storeu_ps(kt + c * np + j0, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + c, idx, m, 4));
        }
        return;
    }
    for (int64_t c = 0; c < d; c++)
        for (int64_t j = 0; j < np; j++) kt[c * np + j] = j < N ? k[j * ldk + c] : 0.f;
}

AVX2 static void qk8_rows(const float *q, int64_t ldq, int64_t M, int64_t i0, const float *kt, int64_t ldkt, int64_t d,
                          int64_t N, float *s, int64_t ld) {
    const float *qr[R2];
    for (int r = 0; r < R2; r++) qr[r] = q + (i0 + r < M ? i0 + r : M - 1) * ldq;
    for (int64_t j0 = 0; j0 < N; j0 += 16) {
        if (N - j0 > 8) qk8_block_2(qr, kt, ldkt, d, j0, N, s, ld);
        else qk8_block_1(qr, kt, ldkt, d, j0, N, s, ld);
    }
}

/// The block's outputs, 16 columns at a time.
AVX2 static void outputs8(const float *p, int64_t N, int64_t ld, const float *v, int64_t ldv, int64_t dv, float *o,
                          int64_t ldo, int rows) {
    for (int64_t c0 = 0; c0 < dv; c0 += 16) {
        if (dv - c0 > 8) pv8_block_2(p, N, ld, v, ldv, c0, dv, o, ldo, rows);
        else pv8_block_1(p, N, ld, v, ldv, c0, dv, o, ldo, rows);
    }
}

static const mn_attention_isa isa256 = {R2, transpose_keys8, qk8_rows, mn_softmax_masked_ld_f32_avx2, outputs8};

void mn_attention_f32_avx2(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows, const float *v,
                           int64_t ldv, const float *mask, int64_t mask_row_stride, float *o, int64_t ldo, int64_t M,
                           int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale, int32_t nan_to_zero) {
    mn_x86_attention(&isa256, q, ldq, k, ldk, k_rows, v, ldv, mask, mask_row_stride, o, ldo, M, N, d, dv, scale_op, scale,
                     nan_to_zero);
}
#endif
