// Channels-last int8 convolution on AVX2 (the AVX2 table's conv_s8, and the AVX-512 table's until a
// VNNI variant earns its place). Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

// Channels-last int8 convolution as an implicit GEMM: the same dot products as im2col followed
// by the packed GEMM above, without the patch matrix. Each sample is first copied, with its
// padding, into `scratch` widened to int16 ([PH, PW, C], pad = the input zero point, exactly what
// im2col writes for an out-of-image tap). A patch row is then KH runs of KW*C contiguous int16
// in that image, so the micro kernel broadcasts its pairs straight from the image: no im2col
// copy and no per-block widening. The weights are packed as the GEMM's panels over K' = KH runs
// of KW*C rounded up to a pair (a zero weight where a run is odd, which meets the next element of
// the image: one extra padded column keeps that read inside the buffer).

size_t mn_conv_s8_scratch(const int64_t p[14]) {
    // The larger of the two tables' images: AVX2's int16 [PH, PW, C], VNNI's bytes (half of it),
    // plus slack for the VNNI loop's reads of whole quads past the last run.
    const conv_geometry g = conv_geometry_of(p);
    return (size_t)(g.PH * g.PW * g.C) * sizeof(int16_t) + 64;
}

size_t mn_conv_s8_packed_size_avx2(const int64_t p[14], int32_t N) {
    const conv_geometry g = conv_geometry_of(p);
    return mn_packed_s8_size_avx2((int32_t)g.KH * 2 * g.run_pairs, N);
}

/// w [N, KH * KW * C] (columns (kh, kw, c), as the channels-last im2col orders them), packed as
/// pack_avx2 would pack it with each kernel row's run spread to whole pairs (zero after an odd run).
void mn_conv_s8_pack_avx2(const int8_t *w, int8_t *packed, const int64_t p[14], int32_t N) {
    const conv_geometry g = conv_geometry_of(p);
    const int64_t run = g.KW * g.C, K = g.KH * run, spread = 2 * (int64_t)g.run_pairs;
    const int32_t pairs = (int32_t)g.KH * g.run_pairs;
    for (int32_t nb = 0; nb < s8_blocks(N); nb++)
        for (int32_t q = 0; q < pairs; q++)
            for (int32_t j = 0; j < S8_NR; j++)
                for (int32_t t = 0; t < 2; t++) {
                    const int32_t n = nb * S8_NR + j;
                    const int64_t k2 = 2 * (int64_t)q + t, kh = k2 / spread, i = k2 % spread;
                    packed[((int64_t)nb * pairs + q) * 32 + (j / 8) * 16 + (j % 8) * 2 + t] =
                        n < N && i < run ? w[(int64_t)n * K + kh * run + i] : 0;
                }
}

/// One sample [H, W, C] -> the padded int16 image [PH, PW, C]: the whole image filled with the
/// pad value, then each input row that lands in it widened into place.
AVX2 static void conv_widen_sample(const conv_geometry *g, const int8_t *x, int16_t *img, int8_t pad_value) {
    const __m256i vpad = _mm256_set1_epi16(pad_value);
    const int64_t rowLen = g->PW * g->C, total = g->PH * rowLen;
    int64_t i = 0;
    for (; i + 16 <= total; i += 16) _mm256_storeu_si256((__m256i *)(img + i), vpad);
    for (; i < total; i++) img[i] = pad_value;
    // Input columns [0, n) land in padded columns [pl, pl + n); rows [0, H) in rows [pt, pt + H).
    const int64_t n = g->W < g->PW - g->pl ? g->W : g->PW - g->pl, mid = n * g->C;
    for (int64_t ih = 0; ih < g->H && ih + g->pt < g->PH; ih++) {
        const int8_t *src = x + ih * g->W * g->C;
        int16_t *dst = img + (ih + g->pt) * rowLen + g->pl * g->C;
        int64_t k = 0;
        for (; k + 16 <= mid; k += 16)
            _mm256_storeu_si256((__m256i *)(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + k))));
        if (k + 8 <= mid) {
            _mm_storeu_si128((__m128i *)(dst + k), _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(src + k))));
            k += 8;
        }
        for (; k < mid; k++) dst[k] = src[k];
    }
}

/// The GEMM micro kernel over an implicit patch row: row r's pairs are at p[r] + kh * row_stride + 2g,
/// H halves of 8 columns. With `q` the rows are requantized into y (rows N bytes apart); without,
/// the sums are left in `acc` for s8_requant_epilogue.
#define CONV_MICRO(R, H)                                                                                                \
    AVX2 static void conv_micro_##R##_##H(const int16_t *const *p, int64_t row_stride, int64_t KH, int32_t run_pairs,   \
                                          const int8_t *panel, const s8_requant_ctx *c, const requant_cols *q,          \
                                          int8_t *y, int32_t acc[S8_ROWS_MAX][S8_NR]) {                                        \
        __m256i lo[R], hi[R];                                                                                           \
        for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_si256();                                            \
        for (int64_t kh = 0; kh < KH; kh++) {                                                                           \
            const int16_t *src[R];                                                                                      \
            for (int r = 0; r < R; r++) src[r] = p[r] + kh * row_stride;                                               \
            for (int32_t g = 0; g < run_pairs; g++, panel += 32) {                                                      \
                const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)panel));                      \
                const __m256i w1 = H == 2 ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(panel + 16)))       \
                                          : _mm256_setzero_si256();                                                     \
                for (int r = 0; r < R; r++) {                                                                           \
                    int32_t pair;                                                                                       \
                    memcpy(&pair, src[r] + 2 * g, 4);                                                                   \
                    const __m256i xv = _mm256_set1_epi32(pair);                                                         \
                    lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(xv, w0));                                         \
                    if (H == 2) hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(xv, w1));                             \
                }                                                                                                       \
            }                                                                                                           \
        }                                                                                                               \
        /* Through memory either way: reading the sums back keeps the compiler from spilling */                       \
        /* the accumulators inside the loop (it did, 12 stores a pair, when the registers fed the */                    \
        /* requantization directly). */                                                                                 \
        for (int r = 0; r < R; r++) {                                                                                   \
            _mm256_store_si256((__m256i *)acc[r], lo[r]);                                                               \
            _mm256_store_si256((__m256i *)(acc[r] + 8), hi[r]);                                                         \
        }                                                                                                               \
        if (q)                                                                                                          \
            for (int r = 0; r < R; r++)                                                                                 \
                requant_store_row(c, q, H, _mm256_load_si256((const __m256i *)acc[r]),                                     \
                               _mm256_load_si256((const __m256i *)(acc[r] + 8)), y + r * (int64_t)c->N);                \
    }
CONV_MICRO(1, 1)
CONV_MICRO(2, 1)
CONV_MICRO(3, 1)
CONV_MICRO(4, 1)
CONV_MICRO(5, 1)
CONV_MICRO(6, 1)
CONV_MICRO(1, 2)
CONV_MICRO(2, 2)
CONV_MICRO(3, 2)
CONV_MICRO(4, 2)
CONV_MICRO(5, 2)
CONV_MICRO(6, 2)

typedef void (*conv_micro_fn)(const int16_t *const *, int64_t, int64_t, int32_t, const int8_t *, const s8_requant_ctx *,
                              const requant_cols *, int8_t *, int32_t[S8_ROWS_MAX][S8_NR]);
static const conv_micro_fn conv_micro[2][S8_MR + 1] = {
    {0, conv_micro_1_1, conv_micro_2_1, conv_micro_3_1, conv_micro_4_1, conv_micro_5_1, conv_micro_6_1},
    {0, conv_micro_1_2, conv_micro_2_2, conv_micro_3_2, conv_micro_4_2, conv_micro_5_2, conv_micro_6_2},
};

AVX2 void mn_conv_s8_avx2(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                              const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                              const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch) {
    const conv_geometry g = conv_geometry_of(params);
    int16_t *img = (int16_t *)scratch;
    const int64_t P = g.OH * g.OW, row_stride = g.PW * g.C;
    const int64_t panel_bytes = (int64_t)g.KH * g.run_pairs * 32;
    s8_requant_ctx c = {bias, mult, shift, out_zp, qmin, qmax, N, y};
    int32_t acc[S8_ROWS_MAX][S8_NR] __attribute__((aligned(32)));
    for (int64_t b = 0; b < batch; b++) {
        conv_widen_sample(&g, x + b * g.H * g.W * g.C, img, pad_value);
        for (int32_t nb = 0; nb < s8_blocks(N); nb++) {
            const int32_t n0 = nb * S8_NR, cols = N - n0 < S8_NR ? N - n0 : S8_NR;
            const int H = cols > 8 ? 2 : 1;
            // Whole halves with multipliers below 1 requantize in registers; the rest (column
            // tails, the saturating left shift) through the shared epilogue.
            int direct = cols == 8 * H;
            for (int32_t j = 0; j < cols; j++) direct &= shift[n0 + j] <= 0;
            const requant_cols q = direct ? load_requant_cols(&c, n0, H) : (requant_cols){0};
            const int8_t *panel = packed + nb * panel_bytes;
            int64_t oh = 0, ow = 0;  // the output pixel of the block's next row
            for (int64_t m = 0; m < P; m += S8_MR) {
                const int rows = P - m < S8_MR ? (int)(P - m) : S8_MR;
                const int16_t *p[S8_MR];
                for (int r = 0; r < rows; r++) {
                    p[r] = img + oh * g.sh * row_stride + ow * g.sw * g.C;
                    if (++ow == g.OW) { ow = 0; oh++; }
                }
                conv_micro[H - 1][rows](p, row_stride, g.KH, g.run_pairs, panel, &c, direct ? &q : NULL, y + (b * P + m) * N + n0, acc);
                if (!direct) mn_s8_requant_epilogue(&c, b * P + m, rows, n0, cols, acc);
            }
        }
    }
}


#else
size_t mn_conv_s8_scratch(const int64_t p[14]) { (void)p; return 0; }
#endif
