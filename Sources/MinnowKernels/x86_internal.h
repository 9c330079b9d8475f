// What the x86 kernel tables share: target attributes, the int8 GEMM contract between an ISA's
// inner loop and the ops written once above it (dense_s8_x86.c), and the vector requantization
// every table uses. Included only on x86-64 by the files that hold x86 kernels.
//
// The tables are layered (DESIGN notes, "Kernel tables"): an op's meaning (requantization,
// activations, dynamic zero points, softmax's special rows, tails) lives once, in the reference
// and in the shared drivers; an ISA contributes only the inner loop that computes exact dot
// products or a vector of exps, and a table entry points at the lower table's code unless its
// own loop measured faster on a host that has it.
#ifndef MINNOW_X86_INTERNAL_H
#define MINNOW_X86_INTERNAL_H
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "minnow_kernels.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))

/// Eight lanes of TFLite's MultiplyByQuantizedMultiplier for multipliers below 1 (shift <= 0),
/// bit-identical to the scalar code: 64-bit products, the +/-2^30 nudge, division by 2^31
/// truncating toward zero, then a rounding right shift (ties away from zero). Every x86 table's
/// epilogue uses it (dense_s8_x86.c).
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

/// requant8 at sixteen lanes for the AVX-512 tables: the same steps on each lane, so the same
/// bits (64-bit products of the even and odd lanes, floor((p + 2^30) / 2^31), then the rounding
/// right shift with ties away from zero).
AVX512 static inline __m512i requant16(__m512i x, __m512i mult, __m512i shift) {
    const __m512i half = _mm512_set1_epi64(1LL << 30), one = _mm512_set1_epi32(1);
    const __m512i pe = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, mult), half), 31);
    const __m512i po = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_shuffle_epi32(x, _MM_PERM_DDBB), _mm512_shuffle_epi32(mult, _MM_PERM_DDBB)), half), 1);
    const __m512i high = _mm512_mask_blend_epi32((__mmask16)0xAAAA, pe, po);
    const __m512i e = _mm512_sub_epi32(_mm512_setzero_si512(), shift);
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
    const __m512i rem = _mm512_and_si512(high, mask);
    const __m512i threshold = _mm512_add_epi32(_mm512_srai_epi32(mask, 1), _mm512_srli_epi32(high, 31));
    const __m512i shifted = _mm512_srav_epi32(high, e);
    return _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(rem, threshold), shifted, one);
}

// ---- x / s without a divide, to the same bits ----
//
// Quantization divides every value by its scale (the reference's x / scale). vdivps retires about
// 1.6 floats a cycle; three FMAs and a multiply retire ten. With y = RN(1/s), q0 = RN(x y) is
// within two ulps of x/s; one correction q1 = RN(q0 + (x - q0 s) y) (the remainder is exact in
// an FMA) brings it within one ulp, and a second gives RN(x/s) exactly (Markstein's theorem: q
// within an ulp of a/b and y = RN(1/b) make RN(q + (a - qb) y) the correctly rounded quotient,
// barring underflow and overflow). Callers take this path only when s and 1/s are normal
// (exact_quotient_ok). Where |x y| >= 2^64 (or is inf or NaN) q0 is kept: such a quotient
// saturates when quantized and its correction would overflow. Tiny quotients may lose the
// theorem to underflow, but they round to 0 either way.

static inline int exact_quotient_ok(float s) { return isnormal(s) && isnormal(1.f / s); }

AVX2 static inline __m256 exact_quotient8(__m256 x, __m256 s, __m256 y) {
    const __m256 q0 = _mm256_mul_ps(x, y);
    const __m256 q1 = _mm256_fmadd_ps(_mm256_fnmadd_ps(q0, s, x), y, q0);
    const __m256 q2 = _mm256_fmadd_ps(_mm256_fnmadd_ps(q1, s, x), y, q1);
    const __m256 big = _mm256_set1_ps(0x1p64f), abs = _mm256_andnot_ps(_mm256_set1_ps(-0.f), q0);
    return _mm256_blendv_ps(q0, q2, _mm256_cmp_ps(abs, big, _CMP_LT_OQ));
}

AVX512 static inline __m512 exact_quotient16(__m512 x, __m512 s, __m512 y) {
    const __m512 q0 = _mm512_mul_ps(x, y);
    const __m512 q1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, s, x), y, q0);
    const __m512 q2 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q1, s, x), y, q1);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(q0), _mm512_set1_ps(0x1p64f), _CMP_LT_OQ), q0, q2);
}

// ---- The int8 GEMM contract ----
//
// An ISA's GEMM computes exact int32 dot products sum_k x[m, k] w[n, k] (signed: a u8 x s8 loop
// subtracts 128 * wsum[n] itself) over x [M, K] with weights packed by its table's pack_s8, and
// hands each block of at most S8_ROWS_MAX rows x 16 columns to an epilogue. Blocks come in row
// order within a column block or column order within a row block, never twice.

enum { S8_MR = 6, S8_NR = 16, S8_KB = 2048, S8_ROWS_MAX = 8 };

static inline int32_t s8_pairs(int32_t K) { return (K + 1) / 2; }
static inline int32_t s8_blocks(int32_t N) { return (N + S8_NR - 1) / S8_NR; }

typedef void (*s8_epilogue_fn)(void *ctx, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_ROWS_MAX][S8_NR]);
typedef void (*s8_gemm_fn)(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                           s8_epilogue_fn epilogue, void *ctx);

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

// ---- Implicit-GEMM convolution geometry (conv_s8_avx2.c, conv_s8_vnni.c) ----
// params as mn_im2col's (channels last, dilations 1): the padded image holds every tap of every
// output pixel, plus one column so a kernel row's run may be read in whole pairs or quads.
typedef struct {
    int64_t C, H, W, KH, KW, OH, OW, sh, sw, pt, pl;
    int64_t PH, PW;     // padded image rows and columns
    int32_t run_pairs;  // pairs per kernel row: (KW * C + 1) / 2
} conv_geometry;

static inline conv_geometry conv_geometry_of(const int64_t p[14]) {
    conv_geometry g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], 0, 0, 0};
    g.PH = (g.OH - 1) * g.sh + g.KH;
    g.PW = (g.OW - 1) * g.sw + g.KW + 1;
    g.run_pairs = (int32_t)((g.KW * g.C + 1) / 2);
    return g;
}

// ---- Shared ops (dense_s8_x86.c): the table entries call these with their own GEMM ----
void mn_s8_requant_epilogue(void *ctx, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_ROWS_MAX][S8_NR]);
/// The static requantization epilogue: 16 lanes (AVX-512 tables) or 8 (AVX2); the same bits.
s8_epilogue_fn mn_s8_requant_epilogue_for(int avx512);
void mn_x86_dense_s8(s8_gemm_fn gemm, s8_epilogue_fn epilogue, const int8_t *x, const int8_t *w, const int32_t *bias,
                     const int32_t *wsum, const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin,
                     int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N);
void mn_x86_dense_s8_f32(s8_gemm_fn gemm, const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                         const float *scale, float *y, int32_t M, int32_t K, int32_t N, mn_activation act);
/// The dynamic-mode epilogue: 16 lanes (AVX-512 tables) or 8 (AVX2); the same bits either way.
s8_epilogue_fn mn_s8_dyn_epilogue(int avx512);
void mn_x86_dense_dyn(s8_gemm_fn gemm, s8_epilogue_fn epilogue, void (*quantize)(const float *, int8_t *, int64_t, float, int32_t),
                      const float *x, const int8_t *w, const int32_t *wsum, const float *wscale, const float *bias,
                      float *y, int8_t *xq, int32_t M, int32_t K, int32_t N, mn_activation act);

// ---- AVX2 (gemm_s8_avx2.c, conv_s8_avx2.c) ----
size_t mn_packed_s8_size_avx2(int32_t K, int32_t N);
void mn_pack_s8_avx2(const int8_t *w, int8_t *packed, int32_t K, int32_t N);
void mn_gemm_s8_avx2(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                     s8_epilogue_fn epilogue, void *ctx);
void mn_quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zp);
void mn_conv_s8_avx2(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                     const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch);
size_t mn_conv_s8_packed_size_avx2(const int64_t params[14], int32_t N);
void mn_conv_s8_pack_avx2(const int8_t *w, int8_t *packed, const int64_t params[14], int32_t N);

// ---- AVX-512 VNNI (gemm_s8_vnni.c) ----
size_t mn_packed_s8_size_vnni(int32_t K, int32_t N);
void mn_pack_s8_vnni(const int8_t *w, int8_t *packed, int32_t K, int32_t N);
void mn_pack_s8_vnni_groups(const int8_t *w, int8_t *packed, int32_t K, int32_t N, int32_t groups);
void mn_gemm_s8_vnni(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                     s8_epilogue_fn epilogue, void *ctx);
void mn_gemm_s8_vnni_panels(const int8_t *x, const int8_t *packed, int64_t panel_bytes, const int32_t *wsum,
                            int32_t M, int32_t K, int32_t N, s8_epilogue_fn epilogue, void *ctx);
void mn_quantize_s8_avx512(const float *x, int8_t *q, int64_t n, float scale, int32_t zp);
void mn_conv_s8_vnni(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                     const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch);
size_t mn_conv_s8_packed_size_vnni(const int64_t params[14], int32_t N);
void mn_conv_s8_pack_vnni(const int8_t *w, int8_t *packed, const int64_t params[14], int32_t N);

// ---- AMX (gemm_s8_amx.c): the default on CPUs with AMX-INT8 (MINNOW_AMX=0 opts out) ----
int mn_amx_usable(void);
size_t mn_packed_s8_size_amx(int32_t K, int32_t N);
void mn_pack_s8_amx(const int8_t *w, int8_t *packed, int32_t K, int32_t N);
void mn_gemm_s8_amx(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                    s8_epilogue_fn epilogue, void *ctx);

// ---- Float (float_x86.c, float_avx512.c) ----

/// The float GEMMs' B operand for one k block of one `nr`-column panel: read in place when B is
/// stored [K, N] and the panel is whole (returns b's address, *stride = ldb); otherwise copied
/// (transposed for weights stored [N, K]) into `panel`, zero past N (*stride = nr).
static inline const float *gemm_f32_panel(const float *b, int64_t ldb, int32_t b_trans, int64_t n0, int64_t k0,
                                          int32_t kc, int32_t cols, int32_t nr, float *panel, int64_t *stride) {
    if (!b_trans && cols == nr) {
        *stride = ldb;
        return b + k0 * ldb + n0;
    }
    for (int32_t k = 0; k < kc; k++) {
        float *row = panel + k * nr;
        if (b_trans) {
            for (int32_t j = 0; j < cols; j++) row[j] = b[(n0 + j) * ldb + k0 + k];
        } else {
            memcpy(row, b + (k0 + k) * ldb + n0, (size_t)cols * sizeof(float));
        }
        for (int32_t j = cols; j < nr; j++) row[j] = 0.f;
    }
    *stride = nr;
    return panel;
}

/// C for K = 0: the bias (or 0) unless accumulating. Returns whether there was nothing else to do.
static inline int gemm_f32_trivial(const float *bias, float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate) {
    if (M <= 0 || N <= 0) return 1;
    if (K > 0) return 0;
    for (int64_t m = 0; m < M && !accumulate; m++)
        for (int64_t n = 0; n < N; n++) c[m * ldc + n] = bias ? bias[n] : 0.f;
    return 1;
}
void mn_gemm_f32_avx2(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans, const float *bias,
                      float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate);
void mn_unary_f32_avx2(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);
void mn_softmax_f32_avx2(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);
void mn_softmax_masked_f32_avx2(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows,
                                 int64_t cols, int32_t scale_op, float scale);
void mn_lstm_cell_f32_avx2(float *g, const float *c_prev, float *h, int64_t H);
void mn_layer_norm_f32_avx2(const float *x, const float *x2, const float *gamma, const float *beta, float *y, int64_t rows,
                            int64_t dim, float eps);
void mn_unary_f32_avx512(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);
void mn_softmax_f32_avx512(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);
void mn_softmax_masked_f32_avx512(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows,
                                 int64_t cols, int32_t scale_op, float scale);
void mn_softmax_masked_ld_f32_avx512(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows,
                                     int64_t cols, int64_t ld, int32_t scale_op, float scale);
void mn_softmax_masked_ld_f32_avx2(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows,
                                   int64_t cols, int64_t ld, int32_t scale_op, float scale);
void mn_lstm_cell_f32_avx512(float *g, const float *c_prev, float *h, int64_t H);
void mn_gemm_f32_avx512(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans, const float *bias,
                        float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate);
/// What an ISA gives the shared attention driver (attention_x86.c): blocks of `rows` query rows.
typedef struct {
    int64_t rows;
    /// K [N, d] (rows ldk apart) into kt [d, np], zero past N.
    void (*transpose_keys)(const float *k, int64_t ldk, int64_t N, int64_t d, float *kt, int64_t np);
    /// Scores of query rows [i0, i0 + rows) (the last repeated past M) into s, rows ld apart.
    void (*scores)(const float *q, int64_t ldq, int64_t M, int64_t i0, const float *kt, int64_t ldkt, int64_t d,
                   int64_t N, float *s, int64_t ld);
    /// The table's masked softmax with rows ld apart.
    void (*softmax)(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows, int64_t cols,
                    int64_t ld, int32_t scale_op, float scale);
    /// o [rows, dv] = p [rows, N] (rows ld apart) times v [N, dv].
    void (*outputs)(const float *p, int64_t N, int64_t ld, const float *v, int64_t ldv, int64_t dv, float *o, int64_t ldo,
                    int rows);
} mn_attention_isa;
void mn_x86_attention(const mn_attention_isa *isa, const float *q, int64_t ldq, const float *k, int64_t ldk,
                      int32_t k_rows, const float *v, int64_t ldv, const float *mask, int64_t mask_row_stride, float *o,
                      int64_t ldo, int64_t M, int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale,
                      int32_t nan_to_zero);
void mn_attention_f32_avx2(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows, const float *v,
                           int64_t ldv, const float *mask, int64_t mask_row_stride, float *o, int64_t ldo, int64_t M,
                           int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale, int32_t nan_to_zero);
void mn_attention_f32_avx512(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows, const float *v,
                             int64_t ldv, const float *mask, int64_t mask_row_stride, float *o, int64_t ldo, int64_t M,
                             int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale, int32_t nan_to_zero);
void mn_attention_bf16_avx512(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows, const float *v,
                              int64_t ldv, const float *mask, int64_t mask_row_stride, float *o, int64_t ldo, int64_t M,
                              int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale, int32_t nan_to_zero);
#endif
