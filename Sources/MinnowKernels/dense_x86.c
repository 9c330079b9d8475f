// x86-64 SIMD dense kernels. Each function carries its own target attribute, so the binary runs
// on any x86-64 and these are only called after CPU detection (dispatch.c). Integer results are
// bit-identical to dense_reference.c: the dot products are exact in int32 and the epilogues are
// the shared scalar ones from kernels_internal.h. fp32 paths differ from the reference only in
// summation order.
#include "minnow_kernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// ---------------------------------------------------------------- AVX2 --------------------------

/// Eight lanes of TFLite's MultiplyByQuantizedMultiplier for multipliers below 1 (shift <= 0),
/// bit-identical to the scalar code (the AVX-512 requant16 below, with what AVX2 lacks spelled
/// out): 64-bit products, the +/-2^30 nudge, division by 2^31 truncating toward zero, then a
/// rounding right shift (ties away from zero).
AVX2 static inline __m256i requant8(__m256i x, __m256i mult, __m256i shift) {
    const __m256i zero = _mm256_setzero_si256();
    // The reference's saturating rounding doubling high multiply is (p + nudge) / 2^31 truncated,
    // nudge = 2^30 for p >= 0 and 1 - 2^30 below. Truncating a negative quotient is flooring
    // after adding 2^31 - 1, and 1 - 2^30 + 2^31 - 1 = 2^30: so in both cases it is
    // floor((p + 2^30) / 2^31), one add and one shift. (Its saturating case, both operands
    // INT32_MIN, cannot happen: multipliers are positive.) AVX2 has no 64-bit arithmetic shift,
    // but only the low 32 bits of the quotient are kept, and those are the same for a logical one.
    const __m256i half = _mm256_set1_epi64x(1LL << 30);
    // Even lanes (mul_epi32 reads the low 32 bits of each 64-bit lane, sign-extended), then odd
    // ones moved down. An odd lane's quotient goes to the high half of its 64-bit lane, where
    // (v >> 31) << 32 and v << 1 agree (the blend drops the low half).
    const __m256i pe = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, mult), half), 31);
    const __m256i po = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_shuffle_epi32(x, 0xF5), _mm256_shuffle_epi32(mult, 0xF5)), half), 1);
    const __m256i high = _mm256_blend_epi32(pe, po, 0xAA);
    // Rounding divide by 2^e, e = -shift.
    const __m256i e = _mm256_sub_epi32(zero, shift);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    const __m256i rem = _mm256_and_si256(high, mask);
    const __m256i neg = _mm256_srli_epi32(high, 31);  // 1 where high < 0
    const __m256i threshold = _mm256_add_epi32(_mm256_srai_epi32(mask, 1), neg);
    const __m256i up = _mm256_and_si256(_mm256_cmpgt_epi32(rem, threshold), one);
    return _mm256_add_epi32(_mm256_srav_epi32(high, e), up);
}

// Packed int8 GEMM. Weights are packed at load into 16-column panels of k pairs: for column block
// nb and pair g, 32 bytes hold w[nb*16 + j][2g + t] at (j / 8) * 16 + (j % 8) * 2 + t (zero past
// N or K). A block of up to 6 rows of x is widened to int16 once; then per pair, one broadcast of
// (x[2g], x[2g+1]) per row times the panel's two 8-column halves, sign-extended to int16, is a
// vpmaddwd each: 6x16 int32 accumulators, no horizontal sums. Exact (int16 products, int32 sums of
// pairs), so the bytes match the reference; vpmaddubsw would be twice as fast but saturates.

enum { S8_MR = 6, S8_NR = 16, S8_KB = 2048 };

static inline int32_t s8_pairs(int32_t K) { return (K + 1) / 2; }
static inline int32_t s8_blocks(int32_t N) { return (N + S8_NR - 1) / S8_NR; }

static size_t packed_size_avx2(int32_t K, int32_t N) { return (size_t)s8_blocks(N) * (size_t)s8_pairs(K) * 32; }

static void pack_avx2(const int8_t *w, int8_t *packed, int32_t K, int32_t N) {
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
                                  int accumulate, int32_t acc[S8_MR][S8_NR]) {                                           \
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

typedef void (*s8_micro_fn)(const int16_t *, int32_t, const int8_t *, int32_t, int, int32_t[S8_MR][S8_NR]);
static const s8_micro_fn s8_micro[S8_MR + 1] = {0, s8_micro_1, s8_micro_2, s8_micro_3, s8_micro_4, s8_micro_5, s8_micro_6};

/// The epilogue of one 16-column block: called with the rows' exact int32 dot products.
typedef void (*s8_epilogue_fn)(void *ctx, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_MR][S8_NR]);

/// Runs the packed GEMM over x [M, K] (int8) and hands every (row block, column block) of exact
/// dot products to `epilogue`.
AVX2 static void gemm_s8_avx2(const int8_t *x, const int8_t *packed, int32_t M, int32_t K, int32_t N,
                              s8_epilogue_fn epilogue, void *ctx) {
    int16_t x16[S8_MR * S8_KB] __attribute__((aligned(32)));
    int32_t acc[S8_MR][S8_NR] __attribute__((aligned(32)));
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

typedef struct {
    const int32_t *bias, *mult, *shift;
    int32_t out_zp, qmin, qmax, N;
    int8_t *y;
} s8_requant_ctx;

/// Per-column requantization constants of one panel's H halves (8 columns each).
typedef struct {
    __m256i bias[2], mult[2], shift[2];
} requant_cols;

AVX2 static inline requant_cols load_requant_cols(const s8_requant_ctx *c, int32_t n0, int H) {
    requant_cols q;
    for (int h = 0; h < 2; h++) {
        const int32_t at = n0 + 8 * (h < H ? h : 0);  // H = 1: both slots hold the first half
        q.bias[h] = _mm256_loadu_si256((const __m256i *)(c->bias + at));
        q.mult[h] = _mm256_loadu_si256((const __m256i *)(c->mult + at));
        q.shift[h] = _mm256_loadu_si256((const __m256i *)(c->shift + at));
    }
    return q;
}

/// Requantizes one row's 8 (H = 1) or 16 (H = 2) exact sums and stores them as int8 at dst, for
/// columns whose multipliers are all below 1.
AVX2 static inline void requant_store_row(const s8_requant_ctx *c, const requant_cols *q, int H, __m256i lo, __m256i hi, int8_t *dst) {
    const __m256i vzp = _mm256_set1_epi32(c->out_zp), vmin = _mm256_set1_epi32(c->qmin), vmax = _mm256_set1_epi32(c->qmax);
    lo = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(requant8(_mm256_add_epi32(lo, q->bias[0]), q->mult[0], q->shift[0]), vzp), vmin), vmax);
    if (H == 1) {
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
        _mm_storel_epi64((__m128i *)dst, _mm_packs_epi16(w16, w16));
        return;
    }
    hi = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(requant8(_mm256_add_epi32(hi, q->bias[1]), q->mult[1], q->shift[1]), vzp), vmin), vmax);
    // packs interleave the 128-bit lanes: dwords 0, 4, 1, 5 hold outputs 0-3, 4-7, 8-11, 12-15.
    const __m256i w16 = _mm256_packs_epi32(lo, hi), w8 = _mm256_packs_epi16(w16, w16);
    _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(w8, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0))));
}

AVX2 static void s8_requant_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_MR][S8_NR]) {
    const s8_requant_ctx *c = (const s8_requant_ctx *)p;
    int positive_shift = 0;
    for (int32_t j = 0; j < cols; j++) positive_shift |= c->shift[n0 + j] > 0;
    const __m256i vzp = _mm256_set1_epi32(c->out_zp), vmin = _mm256_set1_epi32(c->qmin), vmax = _mm256_set1_epi32(c->qmax);
    if (!positive_shift && (cols == 8 || cols == S8_NR)) {
        // Whole halves: each row narrowed at once (one store of 8 or 16 bytes).
        const int H = cols / 8;
        const requant_cols q = load_requant_cols(c, n0, H);
        for (int r = 0; r < rows; r++)
            requant_store_row(c, &q, H, _mm256_loadu_si256((const __m256i *)acc[r]), _mm256_loadu_si256((const __m256i *)(acc[r] + 8)),
                              c->y + (m + r) * c->N + n0);
        return;
    }
    for (int32_t h = 0; h < cols; h += 8) {
        if (positive_shift || cols - h < 8) {
            // Column tails and multipliers >= 1 (the saturating left shift): the shared scalar epilogue.
            for (int r = 0; r < rows; r++)
                for (int32_t j = h; j < cols && j < h + 8; j++)
                    c->y[(m + r) * c->N + n0 + j] =
                        requantize(c->bias[n0 + j] + acc[r][j], c->mult[n0 + j], c->shift[n0 + j], c->out_zp, c->qmin, c->qmax);
            continue;
        }
        const __m256i vmult = _mm256_loadu_si256((const __m256i *)(c->mult + n0 + h));
        const __m256i vshift = _mm256_loadu_si256((const __m256i *)(c->shift + n0 + h));
        const __m256i vbias = _mm256_loadu_si256((const __m256i *)(c->bias + n0 + h));
        for (int r = 0; r < rows; r++) {
            const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc[r] + h)), vbias);
            __m256i out = _mm256_add_epi32(requant8(v, vmult, vshift), vzp);
            out = _mm256_min_epi32(_mm256_max_epi32(out, vmin), vmax);
            // Narrow eight int32 (already in [-128, 127]) to bytes.
            const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(out), _mm256_extracti128_si256(out, 1));
            _mm_storel_epi64((__m128i *)(c->y + (m + r) * c->N + n0 + h), _mm_packs_epi16(w16, w16));
        }
    }
}

AVX2 static void dense_s8_avx2(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                               const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax,
                               int8_t *y, int32_t M, int32_t K, int32_t N) {
    (void)wsum;  // x and w are both signed: no zero-point correction
    s8_requant_ctx c = {bias, mult, shift, out_zp, qmin, qmax, N, y};
    gemm_s8_avx2(x, w, M, K, N, s8_requant_epilogue, &c);
}

typedef struct {
    const int32_t *bias;
    const float *scale;
    float *y;
    int32_t N;
    mn_activation act;
} s8_float_ctx;

AVX2 static void s8_float_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_MR][S8_NR]) {
    const s8_float_ctx *c = (const s8_float_ctx *)p;
    const int vector_act = c->act.kind == 0 || c->act.kind == 1;
    for (int32_t h = 0; h < cols; h += 8) {
        if (!vector_act || cols - h < 8) {
            for (int r = 0; r < rows; r++)
                for (int32_t j = h; j < cols && j < h + 8; j++)
                    c->y[(m + r) * c->N + n0 + j] = apply_act((float)(c->bias[n0 + j] + acc[r][j]) * c->scale[n0 + j], c->act);
            continue;
        }
        // The same int32 sum, one rounding int -> float, one multiply, then max(., 0) for relu
        // (max turns -0 into +0, as v > 0 ? v : 0 does).
        const __m256i vbias = _mm256_loadu_si256((const __m256i *)(c->bias + n0 + h));
        const __m256 vscale = _mm256_loadu_ps(c->scale + n0 + h);
        for (int r = 0; r < rows; r++) {
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc[r] + h)), vbias)), vscale);
            if (c->act.kind == 1) f = _mm256_max_ps(f, _mm256_setzero_ps());
            _mm256_storeu_ps(c->y + (m + r) * c->N + n0 + h, f);
        }
    }
}

AVX2 static void dense_s8_f32_avx2(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                                   const float *scale, float *y, int32_t M, int32_t K, int32_t N, mn_activation act) {
    (void)wsum;
    s8_float_ctx c = {bias, scale, y, N, act};
    gemm_s8_avx2(x, w, M, K, N, s8_float_epilogue, &c);
}

typedef struct {
    const int32_t *wsum;
    const float *wscale, *bias;
    float *y;
    int32_t N, zp;
    float s;
    mn_activation act;
} s8_dyn_ctx;

AVX2 static void s8_dyn_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_MR][S8_NR]) {
    const s8_dyn_ctx *c = (const s8_dyn_ctx *)p;
    (void)rows;  // one row at a time: each has its own scale and zero point
    for (int32_t j = 0; j < cols; j++) {
        const int32_t n = n0 + j;
        c->y[m * c->N + n] = dynamic_epilogue(acc[0][j], c->zp, c->wsum[n], c->s, c->wscale[n], c->bias ? c->bias[n] : 0.f, c->act);
    }
}

AVX2 static void dense_dyn_avx2(const float *x, const int8_t *w, const int32_t *wsum, const float *wscale,
                                const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                                mn_activation act) {
    for (int32_t m = 0; m < M; m++) {
        s8_dyn_ctx c = {wsum, wscale, bias, y + (int64_t)m * N, N, 0, 0.f, act};
        c.s = quantize_row(x + (int64_t)m * K, xq, K, &c.zp);
        gemm_s8_avx2(xq, w, 1, K, N, s8_dyn_epilogue, &c);
    }
}

// Channels-last int8 convolution as an implicit GEMM: the same dot products as im2col followed
// by the packed GEMM above, without the patch matrix. Each sample is first copied, with its
// padding, into `scratch` widened to int16 ([PH, PW, C], pad = the input zero point, exactly what
// im2col writes for an out-of-image tap). A patch row is then KH runs of KW*C contiguous int16
// in that image, so the micro kernel broadcasts its pairs straight from the image: no im2col
// copy and no per-block widening. The weights are packed as the GEMM's panels over K' = KH runs
// of KW*C rounded up to a pair (a zero weight where a run is odd, which meets the next element of
// the image: one extra padded column keeps that read inside the buffer).

typedef struct {
    int64_t C, H, W, KH, KW, OH, OW, sh, sw, pt, pl;
    int64_t PH, PW;     // padded image rows and columns
    int32_t run_pairs;  // pairs per kernel row: (KW * C + 1) / 2
} conv_geometry;

static conv_geometry conv_geometry_of(const int64_t p[14]) {
    conv_geometry g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], 0, 0, 0};
    g.PH = (g.OH - 1) * g.sh + g.KH;
    g.PW = (g.OW - 1) * g.sw + g.KW + 1;
    g.run_pairs = (int32_t)((g.KW * g.C + 1) / 2);
    return g;
}

size_t mn_conv_s8_scratch(const int64_t p[14]) {
    const conv_geometry g = conv_geometry_of(p);
    return (size_t)(g.PH * g.PW * g.C) * sizeof(int16_t) + 32;
}

static size_t conv_packed_size_avx2(const int64_t p[14], int32_t N) {
    const conv_geometry g = conv_geometry_of(p);
    return packed_size_avx2((int32_t)g.KH * 2 * g.run_pairs, N);
}

/// w [N, KH * KW * C] (columns (kh, kw, c), as the channels-last im2col orders them), packed as
/// pack_avx2 would pack it with each kernel row's run spread to whole pairs (zero after an odd run).
static void conv_pack_avx2(const int8_t *w, int8_t *packed, const int64_t p[14], int32_t N) {
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
                                          int8_t *y, int32_t acc[S8_MR][S8_NR]) {                                        \
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
                              const requant_cols *, int8_t *, int32_t[S8_MR][S8_NR]);
static const conv_micro_fn conv_micro[2][S8_MR + 1] = {
    {0, conv_micro_1_1, conv_micro_2_1, conv_micro_3_1, conv_micro_4_1, conv_micro_5_1, conv_micro_6_1},
    {0, conv_micro_1_2, conv_micro_2_2, conv_micro_3_2, conv_micro_4_2, conv_micro_5_2, conv_micro_6_2},
};

AVX2 static void conv_s8_avx2(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                              const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                              const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch) {
    const conv_geometry g = conv_geometry_of(params);
    int16_t *img = (int16_t *)scratch;
    const int64_t P = g.OH * g.OW, row_stride = g.PW * g.C;
    const int64_t panel_bytes = (int64_t)g.KH * g.run_pairs * 32;
    s8_requant_ctx c = {bias, mult, shift, out_zp, qmin, qmax, N, y};
    int32_t acc[S8_MR][S8_NR] __attribute__((aligned(32)));
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
                if (!direct) s8_requant_epilogue(&c, b * P + m, rows, n0, cols, acc);
            }
        }
    }
}

/// Applies a fused activation to a row-major [M, N] block in place (after the float GEMM).
static void activate_rows(float *y, int64_t count, mn_activation act) {
    if (act.kind == 0) return;
    for (int64_t i = 0; i < count; i++) y[i] = apply_act(y[i], act);
}

/// Eight at a time, the reference's IEEE steps: divide, round half to even, add zp, clamp (NaN
/// lands on -128, as in the reference); the tail goes through the reference (bit-identical).
AVX2 static void quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps((float)zp);
    const __m256 lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_add_ps(v, vz);
        v = _mm256_blendv_ps(lo, _mm256_min_ps(v, hi), _mm256_cmp_ps(v, lo, _CMP_GE_OQ));
        const __m256i w = _mm256_cvttps_epi32(v);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(w16, w16));
    }
    if (i < n) mn_quantize_s8(x + i, q + i, n - i, scale, zp);
}

/// Float Dense through the register-blocked GEMM (float_x86.c) at every M, so a row's result does
/// not depend on the batch size or the thread split.
AVX2 static void dense_f32_avx2(const float *x, const float *w, const float *bias, float *y,
                                int32_t M, int32_t K, int32_t N, mn_activation act) {
    mn_gemm_f32_avx2(x, K, w, K, 1, bias, y, N, M, N, K, 0);
    activate_rows(y, (int64_t)M * N, act);
}

static const mn_kernel_table avx2_table = {
    .name = "avx2",
    .dense_f32 = dense_f32_avx2,
    .dense_s8 = dense_s8_avx2,
    .dense_s8_f32 = dense_s8_f32_avx2,
    .dense_dyn = dense_dyn_avx2,
    .packed_s8_size = packed_size_avx2,
    .pack_s8 = pack_avx2,
    .quantize_s8 = quantize_s8_avx2,
    .softmax_f32 = mn_softmax_f32_avx2,
    .unary_f32 = mn_unary_f32_avx2,
    .gemm_f32 = mn_gemm_f32_avx2,
    .lstm_cell_f32 = mn_lstm_cell_f32_avx2,
    .conv_s8 = conv_s8_avx2,
    .conv_s8_packed_size = conv_packed_size_avx2,
    .conv_s8_pack = conv_pack_avx2,
};

// ------------------------------------------------------- AVX-512 VNNI ---------------------------
//
// Weights are packed at load into 16-column panels: for column block nb and k-group g (4 values),
// 64 bytes hold w[nb*16 + j][g*4 + t] at j*4 + t (zero where j or k runs past N or K). One
// vpdpbusd then multiplies 4 consecutive u8 inputs, broadcast to every lane, with 4 weights of
// 16 columns: the accumulators hold 16 outputs each and need no horizontal sums.

static inline int32_t vnni_kgroups(int32_t K) { return (K + 3) / 4; }
static inline int32_t vnni_nblocks(int32_t N) { return (N + 15) / 16; }

static size_t packed_size_vnni(int32_t K, int32_t N) {
    return (size_t)vnni_nblocks(N) * (size_t)vnni_kgroups(K) * 64;
}

static void pack_vnni(const int8_t *w, int8_t *packed, int32_t K, int32_t N) {
    const int32_t groups = vnni_kgroups(K);
    for (int32_t nb = 0; nb < vnni_nblocks(N); nb++)
        for (int32_t g = 0; g < groups; g++)
            for (int32_t j = 0; j < 16; j++)
                for (int32_t t = 0; t < 4; t++) {
                    const int32_t n = nb * 16 + j, k = g * 4 + t;
                    packed[((int64_t)nb * groups + g) * 64 + j * 4 + t] = (n < N && k < K) ? w[(int64_t)n * K + k] : 0;
                }
}

/// Four consecutive inputs of row x from k, shifted to u8 (x + 128 == x ^ 0x80), as one int32;
/// bytes past K read as 0 before the shift (they meet zero weights).
static inline int32_t u8_quad(const int8_t *x, int32_t k, int32_t K) {
    uint32_t v = 0;
    if (k + 4 <= K) {
        memcpy(&v, x + k, 4);
    } else {
        for (int32_t t = 0; k + t < K; t++) v |= (uint32_t)(uint8_t)x[k + t] << (8 * t);
    }
    return (int32_t)(v ^ 0x80808080u);
}

/// Σ_k (x[r][k] + 128) · w[n][k] for up to 8 rows and the 16 columns of block nb, into out[r][16].
AVX512 static void gemm_block_vnni(const int8_t *const *x, int rows, const int8_t *panel, int32_t K, int32_t out[8][16]) {
    __m512i acc[8];
    for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_si512();
    const int32_t groups = vnni_kgroups(K);
    for (int32_t g = 0; g < groups; g++) {
        const __m512i vw = _mm512_loadu_si512((const void *)(panel + (int64_t)g * 64));
        for (int r = 0; r < rows; r++)
            acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(u8_quad(x[r], g * 4, K)), vw);
    }
    for (int r = 0; r < rows; r++) _mm512_storeu_si512((void *)out[r], acc[r]);
}

/// Sixteen lanes of TFLite's MultiplyByQuantizedMultiplier for multipliers below 1 (shift <= 0),
/// bit-identical to the scalar code: 64-bit products, the +/-2^30 nudge, division by 2^31
/// truncating toward zero, then a rounding right shift (ties away from zero).
AVX512 static inline __m512i requant16(__m512i x, __m512i mult, __m512i shift) {
    const __m512i nudge_pos = _mm512_set1_epi64(1LL << 30), nudge_neg = _mm512_set1_epi64(1 - (1LL << 30));
    const __m512i low31 = _mm512_set1_epi64((1LL << 31) - 1);
    // Even lanes (mul_epi32 reads the low 32 bits of each 64-bit lane, sign-extended) ...
    __m512i pe = _mm512_mul_epi32(x, mult);
    // ... and odd lanes, moved down first.
    __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mult, 32));
    pe = _mm512_add_epi64(pe, _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(pe, _mm512_setzero_si512()), nudge_pos, nudge_neg));
    po = _mm512_add_epi64(po, _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(po, _mm512_setzero_si512()), nudge_pos, nudge_neg));
    // Truncating division by 2^31: add 2^31 - 1 to negatives before the arithmetic shift.
    pe = _mm512_srai_epi64(_mm512_add_epi64(pe, _mm512_and_si512(_mm512_srai_epi64(pe, 63), low31)), 31);
    po = _mm512_srai_epi64(_mm512_add_epi64(po, _mm512_and_si512(_mm512_srai_epi64(po, 63), low31)), 31);
    const __m512i high = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    // Rounding divide by 2^e, e = -shift.
    const __m512i e = _mm512_sub_epi32(_mm512_setzero_si512(), shift);
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), e), _mm512_set1_epi32(1));
    const __m512i rem = _mm512_and_si512(high, mask);
    const __m512i neg = _mm512_srli_epi32(high, 31);  // 1 where high < 0
    const __m512i threshold = _mm512_add_epi32(_mm512_srai_epi32(mask, 1), neg);
    const __m512i up = _mm512_maskz_set1_epi32(_mm512_cmpgt_epi32_mask(rem, threshold), 1);
    return _mm512_add_epi32(_mm512_srav_epi32(high, e), up);
}

AVX512 static void quantize_s8_avx512(const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps((float)zp);
    const __m512 lo = _mm512_set1_ps(-128.f), hi = _mm512_set1_ps(127.f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        // Same IEEE steps as the reference: divide, round half to even, add zp, clamp.
        __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_add_ps(v, vz);
        // NaN compares false both ways and must land on -128, as in the reference.
        const __mmask16 ge_lo = _mm512_cmp_ps_mask(v, lo, _CMP_GE_OQ);
        v = _mm512_mask_blend_ps(ge_lo, lo, _mm512_min_ps(v, hi));
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(v)));
    }
    if (i < n) mn_quantize_s8(x + i, q + i, n - i, scale, zp);
}

AVX512 static void dense_s8_vnni(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                                 const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax,
                                 int8_t *y, int32_t M, int32_t K, int32_t N) {
    const int64_t panel = (int64_t)vnni_kgroups(K) * 64;
    int32_t acc[8][16];
    for (int32_t m = 0; m < M; m += 8) {
        const int rows = M - m < 8 ? (int)(M - m) : 8;
        const int8_t *xr[8];
        for (int r = 0; r < rows; r++) xr[r] = x + (int64_t)(m + r) * K;
        for (int32_t nb = 0; nb < vnni_nblocks(N); nb++) {
            gemm_block_vnni(xr, rows, w + nb * panel, K, acc);
            const int32_t n0 = nb * 16, cols = N - n0 < 16 ? N - n0 : 16;
            const __mmask16 lanes = (__mmask16)((1u << cols) - 1);
            const __m512i vshift = _mm512_maskz_loadu_epi32(lanes, shift + n0);
            if (_mm512_mask_cmpgt_epi32_mask(lanes, vshift, _mm512_setzero_si512())) {
                // A multiplier >= 1 needs the saturating left shift: keep the scalar path.
                for (int r = 0; r < rows; r++)
                    for (int32_t j = 0; j < cols; j++) {
                        const int32_t n = n0 + j;
                        y[(int64_t)(m + r) * N + n] =
                            requantize(bias[n] + (acc[r][j] - 128 * wsum[n]), mult[n], shift[n], out_zp, qmin, qmax);
                    }
                continue;
            }
            const __m512i vbias = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(lanes, bias + n0),
                                                   _mm512_slli_epi32(_mm512_maskz_loadu_epi32(lanes, wsum + n0), 7));
            const __m512i vmult = _mm512_maskz_loadu_epi32(lanes, mult + n0);
            const __m512i vzp = _mm512_set1_epi32(out_zp), vmin = _mm512_set1_epi32(qmin), vmax = _mm512_set1_epi32(qmax);
            for (int r = 0; r < rows; r++) {
                // bias + (acc - 128 wsum): the same int32 value as the scalar path (wrapping adds agree).
                const __m512i v = _mm512_add_epi32(_mm512_loadu_si512((const void *)acc[r]), vbias);
                __m512i out = _mm512_add_epi32(requant16(v, vmult, vshift), vzp);
                out = _mm512_min_epi32(_mm512_max_epi32(out, vmin), vmax);
                _mm_mask_storeu_epi8(y + (int64_t)(m + r) * N + n0, lanes, _mm512_cvtepi32_epi8(out));
            }
        }
    }
}

AVX512 static void dense_s8_f32_vnni(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                                     const float *scale, float *y, int32_t M, int32_t K, int32_t N, mn_activation act) {
    const int64_t panel = (int64_t)vnni_kgroups(K) * 64;
    int32_t acc[8][16];
    for (int32_t m = 0; m < M; m += 8) {
        const int rows = M - m < 8 ? (int)(M - m) : 8;
        const int8_t *xr[8];
        for (int r = 0; r < rows; r++) xr[r] = x + (int64_t)(m + r) * K;
        for (int32_t nb = 0; nb < vnni_nblocks(N); nb++) {
            gemm_block_vnni(xr, rows, w + nb * panel, K, acc);
            const int32_t n0 = nb * 16, cols = N - n0 < 16 ? N - n0 : 16;
            if (act.kind == 0 || act.kind == 1) {
                // Vector epilogue: the same int32 sum, one rounding int->float, one multiply, max(., 0).
                const __mmask16 lanes = (__mmask16)((1u << cols) - 1);
                const __m512i vbias = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(lanes, bias + n0),
                                                       _mm512_slli_epi32(_mm512_maskz_loadu_epi32(lanes, wsum + n0), 7));
                const __m512 vscale = _mm512_maskz_loadu_ps(lanes, scale + n0);
                for (int r = 0; r < rows; r++) {
                    const __m512i v = _mm512_add_epi32(_mm512_loadu_si512((const void *)acc[r]), vbias);
                    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), vscale);
                    if (act.kind == 1) f = _mm512_max_ps(f, _mm512_setzero_ps());  // -0 -> +0, as v > 0 ? v : 0
                    _mm512_mask_storeu_ps(y + (int64_t)(m + r) * N + n0, lanes, f);
                }
                continue;
            }
            for (int r = 0; r < rows; r++)
                for (int32_t j = 0; j < cols; j++) {
                    const int32_t n = n0 + j;
                    y[(int64_t)(m + r) * N + n] = apply_act((float)(bias[n] + (acc[r][j] - 128 * wsum[n])) * scale[n], act);
                }
        }
    }
}

AVX512 static void dense_dyn_vnni(const float *x, const int8_t *w, const int32_t *wsum, const float *wscale,
                                  const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                                  mn_activation act) {
    const int64_t panel = (int64_t)vnni_kgroups(K) * 64;
    int32_t acc[8][16];
    for (int32_t m = 0; m < M; m++) {
        int32_t zp = 0;
        const float s = quantize_row(x + (int64_t)m * K, xq, K, &zp);
        const int8_t *xr[1] = {xq};
        for (int32_t nb = 0; nb < vnni_nblocks(N); nb++) {
            gemm_block_vnni(xr, 1, w + nb * panel, K, acc);
            const int32_t n0 = nb * 16, cols = N - n0 < 16 ? N - n0 : 16;
            for (int32_t j = 0; j < cols; j++) {
                const int32_t n = n0 + j;
                y[(int64_t)m * N + n] = dynamic_epilogue(acc[0][j] - 128 * wsum[n], zp, wsum[n], s, wscale[n], bias ? bias[n] : 0.f, act);
            }
        }
    }
}

/// exp(x) for 16 lanes: x = n·ln2 + r with |r| <= ln2/2, a degree-6 polynomial for exp(r)
/// (Cephes expf coefficients), then scaling by 2^n. Relative error about 2e-7 over the clamped range.
AVX512 static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    return _mm512_scalef_ps(p, n);
}

AVX512 static void softmax_f32_avx512(const float *x, float *y, int64_t rows, int64_t cols, int32_t log) {
    if (log) { mn_softmax_f32(x, y, rows, cols, log); return; }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int64_t c = 0; c < cols; c += 16) {
            const __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, xr + c));
        }
        const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vsum = _mm512_setzero_ps();
        for (int64_t c = 0; c < cols; c += 16) {
            const __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), mx));
            _mm512_mask_storeu_ps(yr + c, m, e);
            vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vsum));
        for (int64_t c = 0; c < cols; c += 16) {
            const __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            _mm512_mask_storeu_ps(yr + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + c), inv));
        }
    }
}

static const mn_kernel_table avx512vnni_table = {
    .name = "avx512vnni",
    .dense_f32 = dense_f32_avx2,
    .dense_s8 = dense_s8_vnni,
    .dense_s8_f32 = dense_s8_f32_vnni,
    .dense_dyn = dense_dyn_vnni,
    .packed_s8_size = packed_size_vnni,
    .pack_s8 = pack_vnni,
    .quantize_s8 = quantize_s8_avx512,
    .softmax_f32 = softmax_f32_avx512,
    .unary_f32 = mn_unary_f32_avx2,
    .gemm_f32 = mn_gemm_f32_avx2,
    .lstm_cell_f32 = mn_lstm_cell_f32_avx2,
    .conv_s8 = conv_s8_avx2,
    .conv_s8_packed_size = conv_packed_size_avx2,
    .conv_s8_pack = conv_pack_avx2,
};

const mn_kernel_table *mn_avx2_kernels(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_table : 0;
}

const mn_kernel_table *mn_avx512vnni_kernels(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") ? &avx512vnni_table : 0;
}

#else  // not x86-64: only the reference exists

const mn_kernel_table *mn_avx2_kernels(void) { return 0; }
const mn_kernel_table *mn_avx512vnni_kernels(void) { return 0; }
size_t mn_conv_s8_scratch(const int64_t p[14]) { (void)p; return 0; }

#endif
