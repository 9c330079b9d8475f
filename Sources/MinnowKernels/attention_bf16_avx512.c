// Scaled dot-product attention with its two products in BF16 (AVX512-BF16 `vdpbf16ps`), for the
// AVX-512 tables on CPUs that have it (Zen 4, Sapphire Rapids): the opt-in reduced-precision path
// (mn_kernel_table.attention_bf16). Q, K, the probabilities and V are rounded to bfloat16 (round to
// nearest even: 8 significant bits); every product of two of them is exact in fp32 and the sums
// are fp32. The scale, mask and softmax stay fp32, in the table's own masked softmax. One
// `vdpbf16ps` does 32 multiply-adds where an fp32 FMA does 16, so the products take half the
// time; the rounding moves all-MiniLM-L6-v2's embeddings by ~2e-6 in cosine (docs/benchmarks.md),
// far inside its int8 Dense error (~1e-3).
//
// Layouts: `vdpbf16ps` multiplies pairs, so each product's shared dimension is stored in pairs,
// one 32-bit word (low half the even index) per pair:
//   kt2 [ceil(d/2)][np]: word (c, j) = (K[j][2c], K[j][2c+1]), keys zero past N;
//   vp  [ceil(N/2)][dvp]: word (t, c) = (V[2t][c], V[2t+1][c]), zero past N and dv;
//   qb, pb: a block's query and probability rows as bf16 in order, so word t of a row is a pair.
// K and V are packed once per product; each block of eight query rows converts its Q rows, then
// goes through the steps of attention_x86.c's driver (its order and pipelining, so the same
// aliasing promise: O may be Q's or K's very elements).
//
// Unsafe pointer code: shapes were validated at session creation and checked against
// MN_ATTENTION_SCRATCH_FLOATS with mn_attention_bf16_scratch_floats by the fusion.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")))

enum { R = 8 };

static inline __mmask16 tail_lanes(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }
static inline int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/// Sixteen words (bf16(even[i]) | bf16(odd[i]) << 16).
AVX512BF16 static inline __m512i pair16(__m512 even, __m512 odd) {
    const __m512i e = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(even));
    const __m512i o = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(odd));
    return _mm512_or_si512(e, _mm512_slli_epi32(o, 16));
}

/// `n` floats of a row as bf16 in order into `dst` (zero up to the next 32), 32 at a time.
AVX512BF16 static inline void row_bf16(const float *src, int64_t n, uint32_t *dst, int nan_to_zero) {
    for (int64_t c = 0; c < n; c += 32) {
        __m512 lo = _mm512_maskz_loadu_ps(tail_lanes(n - c), src + c);
        __m512 hi = _mm512_maskz_loadu_ps(tail_lanes(n - c - 16), src + c + 16);
        if (nan_to_zero) {
            lo = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(lo, lo, _CMP_ORD_Q), lo);
            hi = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(hi, hi, _CMP_ORD_Q), hi);
        }
        _mm512_store_si512((void *)(dst + c / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

/// K into kt2 (see the top). From rows (k_rows): one 64-bit gather fetches the pair
/// (K[j][2c], K[j][2c+1]) of eight keys, and two of them in key order convert straight into 16
/// words (half the gathered elements of two 32-bit gathers per pair and no shuffle); an odd d's
/// last pair, and rows too far apart for 32-bit indices, go element by element. From K^T: its two
/// rows of the pair, converted and interleaved.
AVX512BF16 static void pack_keys(const float *k, int64_t ldk, int32_t k_rows, int64_t N, int64_t d, uint32_t *kt2,
                                 int64_t np) {
    const int64_t dh = (d + 1) / 2;
    if (!k_rows) {
        for (int64_t j0 = 0; j0 < np; j0 += 16)
            for (int64_t c = 0; c < dh; c++) {
                const __mmask16 m = tail_lanes(N - j0);
                const __m512 e = _mm512_maskz_loadu_ps(m, k + 2 * c * ldk + j0);
                const __m512 o = 2 * c + 1 < d ? _mm512_maskz_loadu_ps(m, k + (2 * c + 1) * ldk + j0) : _mm512_setzero_ps();
                _mm512_store_si512((void *)(kt2 + c * np + j0), pair16(e, o));
            }
        return;
    }
    const int64_t whole = ldk < (INT64_C(1) << 26) ? d / 2 : 0;  // pairs gathered whole
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int32_t)ldk));
    for (int64_t j0 = 0; j0 < np; j0 += 16) {
        const __mmask8 m0 = (__mmask8)tail_lanes(N - j0), m1 = (__mmask8)tail_lanes(N - j0 - 8);
        for (int64_t c = 0; c < whole; c++) {
            const float *base = k + j0 * ldk + 2 * c;
            const __m512 lo = _mm512_castsi512_ps(_mm512_mask_i32gather_epi64(_mm512_setzero_si512(), m0, idx, base, 4));
            const __m512 hi = _mm512_castsi512_ps(_mm512_mask_i32gather_epi64(_mm512_setzero_si512(), m1, idx, base + 8 * ldk, 4));
            _mm512_store_si512((void *)(kt2 + c * np + j0), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        for (int64_t c = whole; c < dh; c++) {
            float ev[16] = {0}, ov[16] = {0};
            for (int64_t j = 0; j < 16 && j0 + j < N; j++) {
                ev[j] = k[(j0 + j) * ldk + 2 * c];
                ov[j] = 2 * c + 1 < d ? k[(j0 + j) * ldk + 2 * c + 1] : 0.f;
            }
            _mm512_store_si512((void *)(kt2 + c * np + j0), pair16(_mm512_loadu_ps(ev), _mm512_loadu_ps(ov)));
        }
    }
}

/// V [N, dv] (rows ldv apart) into vp (see the top).
AVX512BF16 static void pack_values(const float *v, int64_t ldv, int64_t N, int64_t dv, uint32_t *vp, int64_t dvp) {
    for (int64_t t = 0; t < (N + 1) / 2; t++)
        for (int64_t c = 0; c < dvp; c += 16) {
            const __mmask16 m = tail_lanes(dv - c);
            const __m512 e = _mm512_maskz_loadu_ps(m, v + 2 * t * ldv + c);
            const __m512 o = 2 * t + 1 < N ? _mm512_maskz_loadu_ps(m, v + (2 * t + 1) * ldv + c) : _mm512_setzero_ps();
            _mm512_store_si512((void *)(vp + t * dvp + c), pair16(e, o));
        }
}

/// Both products are one shape: acc[r][u] = sum over pair steps t of (A row r, word t) times
/// (B row t, lanes 16u..16u+15), with A a block's bf16 rows (queries: t runs over d's pairs;
/// probabilities: over the keys' pairs) and B the packed K^T or V, from column j0.
#define DOT_BLOCK(NV)                                                                                                   \
    AVX512BF16 static inline __attribute__((always_inline)) void dot_block_##NV(                                       \
        const uint32_t *a, int64_t lda, const uint32_t *b, int64_t ldb, int64_t steps, __m512 acc[R][NV]) {             \
        for (int r = 0; r < R; r++)                                                                                     \
            for (int u = 0; u < NV; u++) acc[r][u] = _mm512_setzero_ps();                                              \
        for (int64_t t = 0; t < steps; t++) {                                                                           \
            __m512bh w[NV];                                                                                             \
            for (int u = 0; u < NV; u++) w[u] = (__m512bh)_mm512_load_si512((const void *)(b + t * ldb + 16 * u));     \
            for (int r = 0; r < R; r++) {                                                                               \
                const __m512bh x = (__m512bh)_mm512_set1_epi32((int32_t)a[r * lda + t]);                                \
                for (int u = 0; u < NV; u++) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], x, w[u]);                         \
            }                                                                                                           \
        }                                                                                                               \
    }
DOT_BLOCK(1)
DOT_BLOCK(2)

/// Scores of the block's R bf16 query rows (qs words apart) for keys [j0, j0 + 16 NV), into s
/// (rows np apart, all R stored: rows past M are never read).
#define QK_BLOCK(NV)                                                                                                    \
    AVX512BF16 static inline __attribute__((always_inline)) void qk_block_##NV(                                        \
        const uint32_t *qb, int64_t qs, const uint32_t *kt2, int64_t np, int64_t dh, int64_t j0, float *s) {           \
        __m512 acc[R][NV];                                                                                              \
        dot_block_##NV(qb, qs, kt2 + j0, np, dh, acc);                                                                 \
        for (int r = 0; r < R; r++)                                                                                     \
            for (int u = 0; u < NV; u++) _mm512_store_ps(s + r * np + j0 + 16 * u, acc[r][u]);                         \
    }
QK_BLOCK(1)
QK_BLOCK(2)

/// Output columns [c0, c0 + 16 NV) of `rows` rows from the block's bf16 probability rows (pp
/// words apart), stored masked to dv.
#define PV_BLOCK(NV)                                                                                                    \
    AVX512BF16 static inline __attribute__((always_inline)) void pv_block_##NV(                                        \
        const uint32_t *pb, int64_t pp, int64_t nh, const uint32_t *vp, int64_t dvp, int64_t c0, int64_t dv, float *o, \
        int64_t ldo, int rows) {                                                                                        \
        __m512 acc[R][NV];                                                                                              \
        dot_block_##NV(pb, pp, vp + c0, dvp, nh, acc);                                                                 \
        for (int r = 0; r < rows; r++)                                                                                  \
            for (int u = 0; u < NV; u++) _mm512_mask_storeu_ps(o + r * ldo + c0 + 16 * u, tail_lanes(dv - c0 - 16 * u), acc[r][u]); \
    }
PV_BLOCK(1)
PV_BLOCK(2)

/// Query rows [i0, i0 + R) (the last repeated past M) as bf16, then their scores into s.
AVX512BF16 static void scores(const float *q, int64_t ldq, int64_t M, int64_t i0, int64_t d, uint32_t *qb, int64_t qs,
                              const uint32_t *kt2, int64_t np, float *s) {
    for (int r = 0; r < R; r++) row_bf16(q + (i0 + r < M ? i0 + r : M - 1) * ldq, d, qb + r * qs, 0);
    const int64_t dh = (d + 1) / 2;
    int64_t j0 = 0;
    for (; j0 + 32 <= np; j0 += 32) qk_block_2(qb, qs, kt2, np, dh, j0, s);
    if (j0 < np) qk_block_1(qb, qs, kt2, np, dh, j0, s);
}

AVX512BF16 void mn_attention_bf16_avx512(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows,
                                         const float *v, int64_t ldv, const float *mask, int64_t mask_row_stride, float *o,
                                         int64_t ldo, int64_t M, int64_t N, int64_t d, int64_t dv, int32_t scale_op,
                                         float scale, int32_t nan_to_zero) {
    float buf[MN_ATTENTION_SCRATCH_FLOATS] __attribute__((aligned(64)));
    if (M <= 0 || N <= 0 || dv <= 0) return;
    // The pieces, as mn_attention_bf16_scratch_floats counts them (R = 8 rows a block); each is a
    // multiple of 16 words long, so each starts 64-byte aligned.
    const int64_t np = round16(N), dh = (d + 1) / 2, nh = (N + 1) / 2, dvp = round16(dv), pp = round16(nh), qs = round16(dh);
    uint32_t *kt2 = (uint32_t *)buf, *vp = kt2 + dh * np;
    float *sb[2] = {(float *)(vp + nh * dvp), (float *)(vp + nh * dvp) + R * np};
    uint32_t *pb = (uint32_t *)(sb[1] + R * np), *qb = pb + R * pp;
    pack_keys(k, ldk, k_rows, N, d, kt2, np);
    pack_values(v, ldv, N, dv, vp, dvp);
    scores(q, ldq, M, 0, d, qb, qs, kt2, np, sb[0]);
    for (int64_t i0 = 0; i0 < M; i0 += R) {
        const int rows = M - i0 < R ? (int)(M - i0) : R;
        float *p = sb[(i0 / R) & 1];
        mn_softmax_masked_ld_f32_avx512(p, mask + i0 * mask_row_stride, mask_row_stride, p, rows, N, np, scale_op, scale);
        for (int r = 0; r < R; r++) row_bf16(p + (r < rows ? r : 0) * np, N, pb + r * pp, nan_to_zero);
        // The next block's query rows are read before this block's outputs are written.
        if (i0 + R < M) scores(q, ldq, M, i0 + R, d, qb, qs, kt2, np, sb[(i0 / R + 1) & 1]);
        int64_t c0 = 0;
        for (; c0 + 16 < dv; c0 += 32) pv_block_2(pb, pp, nh, vp, dvp, c0, dv, o + i0 * ldo, ldo, rows);
        if (c0 < dv) pv_block_1(pb, pp, nh, vp, dvp, c0, dv, o + i0 * ldo, ldo, rows);
    }
}
#endif
