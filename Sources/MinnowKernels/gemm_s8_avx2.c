// The AVX2 int8 GEMM inner loop (exact vpmaddwd products) and its weight packing. What the sums
// mean (requantization, activations, dynamic zero points) is in dense_s8_x86.c, once for every
// x86 table. Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

// Packed int8 GEMM. Weights are packed at load into 16-column panels of k pairs: for column block
// nb and pair g, 32 bytes hold w[nb*16 + j][2g + t] at (j / 8) * 16 + (j % 8) * 2 + t (zero past
// N or K). A block of up to 6 rows of x is widened to int16 once; then per pair, one broadcast of
// (x[2g], x[2g+1]) per row times the panel's two 8-column halves, sign-extended to int16, is a
// vpmaddwd each: 6x16 int32 accumulators, no horizontal sums. Exact (int16 products, int32 sums of
// pairs), so the bytes match the reference; vpmaddubsw would be twice as fast but saturates.

size_t mn_packed_s8_size_avx2(int32_t K, int32_t N) { return (size_t)s8_blocks(N) * (size_t)s8_pairs(K) * 32; }

void mn_pack_s8_avx2(const int8_t *w, int8_t *packed, int32_t K, int32_t N) {
    const int32_t pairs = s8_pairs(K);
    for (int32_t nb = 0; nb < s8_blocks(N); nb++)
        for (int32_t g = 0; g < pairs; g++)
            for (int32_t j = 0; j < S8_NR; j++)
                for (int32_t t = 0; t < 2; t++) {
                    const int32_t n = nb * S8_NR + j, k = 2 * g + t;
                    packed[((int64_t)nb * pairs + g) * 32 + (j / 8) * 16 + (j % 8) * 2 + t] =
                        (n < N && k < K) ? w[(int64_t)n * K + k] : 0;
                }
}

/// Widens rows [k0, k0 + kb) of up to 6 rows of x to int16 pairs (x16[r][i], a zero after an odd
/// K), so each pair is one aligned int32 to broadcast.
AVX2 static void widen_rows(const int8_t *const *x, int rows, int32_t k0, int32_t kb, int32_t K, int16_t *x16) {
    const int32_t stride = 2 * s8_pairs(kb);
    for (int r = 0; r < rows; r++) {
        const int8_t *src = x[r] + k0;
        int16_t *dst = x16 + r * stride;
        int32_t k = 0;
        for (; k + 16 <= kb; k += 16)
            _mm256_storeu_si256((__m256i *)(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + k))));
        if (k + 8 <= kb) {
            _mm_storeu_si128((__m128i *)(dst + k), _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(src + k))));
            k += 8;
        }
        for (; k < kb; k++) dst[k] = src[k];
        for (; k < stride; k++) dst[k] = 0;  // k0 + kb == K is odd: pad the last pair
        (void)K;
    }
}

#define S8_MICRO(R)                                                                                                     \
    AVX2 static void s8_micro_##R(const int16_t *x16, int32_t xstride, const int8_t *panel, int32_t pairs,              \
                                  int accumulate, int32_t acc[S8_ROWS_MAX][S8_NR]) {                                           \
        __m256i lo[R], hi[R];                                                                                           \
        for (int r = 0; r < R; r++) {                                                                                   \
            lo[r] = accumulate ? _mm256_loadu_si256((const __m256i *)acc[r]) : _mm256_setzero_si256();                  \
            hi[r] = accumulate ? _mm256_loadu_si256((const __m256i *)(acc[r] + 8)) : _mm256_setzero_si256();            \
        }                                                                                                               \
        for (int32_t g = 0; g < pairs; g++) {                                                                           \
            const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(panel + (int64_t)g * 32)));      \
            const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(panel + (int64_t)g * 32 + 16))); \
            for (int r = 0; r < R; r++) {                                                                               \
                int32_t pair;                                                                                           \
                memcpy(&pair, x16 + r * xstride + 2 * g, 4);                                                            \
                const __m256i xv = _mm256_set1_epi32(pair);                                                             \
                lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(xv, w0));                                             \
                hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(xv, w1));                                             \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++) {                                                                                   \
            _mm256_storeu_si256((__m256i *)acc[r], lo[r]);                                                              \
            _mm256_storeu_si256((__m256i *)(acc[r] + 8), hi[r]);                                                        \
        }                                                                                                               \
    }
S8_MICRO(1)
S8_MICRO(2)
S8_MICRO(3)
S8_MICRO(4)
S8_MICRO(5)
S8_MICRO(6)

typedef void (*s8_micro_fn)(const int16_t *, int32_t, const int8_t *, int32_t, int, int32_t[S8_ROWS_MAX][S8_NR]);
static const s8_micro_fn s8_micro[S8_MR + 1] = {0, s8_micro_1, s8_micro_2, s8_micro_3, s8_micro_4, s8_micro_5, s8_micro_6};

/// Runs the packed GEMM over x [M, K] (int8) and hands every (row block, column block) of exact
/// dot products to `epilogue` (s8_gemm_fn; signed products, so wsum is not needed).
AVX2 void mn_gemm_s8_avx2(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                          s8_epilogue_fn epilogue, void *ctx) {
    (void)wsum;
    int16_t x16[S8_MR * S8_KB] __attribute__((aligned(32)));
    int32_t acc[S8_ROWS_MAX][S8_NR] __attribute__((aligned(32)));
    const int32_t pairs = s8_pairs(K);
    for (int64_t m = 0; m < M; m += S8_MR) {
        const int rows = M - m < S8_MR ? (int)(M - m) : S8_MR;
        const int8_t *xr[S8_MR];
        for (int r = 0; r < rows; r++) xr[r] = x + (m + r) * K;
        const int one_block = K <= S8_KB;
        if (one_block) widen_rows(xr, rows, 0, K, K, x16);
        for (int32_t nb = 0; nb < s8_blocks(N); nb++) {
            const int8_t *panel = packed + (int64_t)nb * pairs * 32;
            for (int32_t k0 = 0; k0 < K; k0 += S8_KB) {
                const int32_t kb = K - k0 < S8_KB ? K - k0 : S8_KB;
                if (!one_block) widen_rows(xr, rows, k0, kb, K, x16);
                s8_micro[rows](x16, 2 * s8_pairs(kb), panel + (int64_t)(k0 / 2) * 32, s8_pairs(kb), k0 > 0, acc);
            }
            const int32_t n0 = nb * S8_NR;
            epilogue(ctx, m, rows, n0, N - n0 < S8_NR ? N - n0 : S8_NR, acc);
        }
    }
}

/// One vector of the reference's IEEE steps: divide (exact_quotient8 gives the same bits), round
/// half to even, add zp, clamp (NaN lands on -128, as in the reference), truncate to int32.
AVX2 static inline __m256i quantize8(__m256 xv, __m256 vs, __m256 vy, __m256 vz, int exact) {
    const __m256 lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
    __m256 v = _mm256_round_ps(exact ? exact_quotient8(xv, vs, vy) : _mm256_div_ps(xv, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_add_ps(v, vz);
    v = _mm256_blendv_ps(lo, _mm256_min_ps(v, hi), _mm256_cmp_ps(v, lo, _CMP_GE_OQ));
    return _mm256_cvttps_epi32(v);
}

/// quantize8 over the row; the tail goes through the reference (bit-identical).
AVX2 void mn_quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps((float)zp), vy = _mm256_set1_ps(1.f / scale);
    const int exact = exact_quotient_ok(scale);
    int64_t i = 0;
    // 32 values narrowed by three packs and one dword permute into a single 32-byte store: packing
    // each vector of eight on its own (extract, two packs, an 8-byte store) put three shuffles on
    // every eight values, and the shuffle ports bounded the loop. The values are already in
    // [-128, 127], so the saturating packs change none of them. After the packs, dword 4 L + e holds
    // v_e's values 4 L to 4 L + 3 (L = 0, 1); the permute moves them to dword 2 e + L.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (; i + 32 <= n; i += 32) {
        const __m256i v0 = quantize8(_mm256_loadu_ps(x + i), vs, vy, vz, exact);
        const __m256i v1 = quantize8(_mm256_loadu_ps(x + i + 8), vs, vy, vz, exact);
        const __m256i v2 = quantize8(_mm256_loadu_ps(x + i + 16), vs, vy, vz, exact);
        const __m256i v3 = quantize8(_mm256_loadu_ps(x + i + 24), vs, vy, vz, exact);
        const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256i w = quantize8(_mm256_loadu_ps(x + i), vs, vy, vz, exact);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(w16, w16));
    }
    if (i < n) mn_quantize_s8(x + i, q + i, n - i, scale, zp);
}
#endif
