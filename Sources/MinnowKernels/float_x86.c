// x86-64 AVX2 + FMA kernels for the ops that stay float: a register-blocked GEMM (attention
// products, LSTM/GRU projections, float Dense) and vector exp/tanh/sigmoid/erf for the unary ops
// and softmax. Float results differ from the portable reference only by summation order and the
// polynomial approximations (within 3e-7 absolute for sigmoid/tanh/erf, 3e-7 relative for exp,
// 3e-7 * max(1, |x|) for GELU: the bounds minnow_kernels.h states and SIMDKernelTests checks).
//
// Unsafe pointer code: every function trusts shapes validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include "x86_internal.h"

#define INLINE_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

// ------------------------------------------------------------------ GEMM --------------------------
//
// C [M, N] is computed in 16-column panels and 256-deep k blocks. Within a panel, a 6x16 micro
// kernel keeps 12 accumulators in registers, broadcasts one A value per row and k, and multiplies
// it into two 8-wide rows of B (the classic AVX2 SGEMM shape: 12 FMAs per 2 loads of B and 6
// broadcasts). B is read in place when it is stored [K, N] and the panel is whole; otherwise the
// k block of the panel is first copied (transposed for weights stored [N, K]) into a 16 KB stack
// buffer, zero past N. Every row of C is the same chain of FMAs over k whatever M is, so a row's
// result does not depend on the batch size or on how threads split the rows (no dot-product path
// for small M: its different summation order would make batch 1 differ from batch 8).

enum { GEMM_MR = 6, GEMM_NR = 16, GEMM_KC = 256 };

// Lane masks for the column tail: lanes j < cols of the low and high 8.
INLINE_AVX2 __m256i lanes_below(int32_t cols) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// mode 0: start from zero, 1: from `init` (16 floats, a bias block), 2: from C (accumulate).
// A whole 16-column panel (`full`) loads and stores C with plain moves: AMD's masked stores are
// slow (vmaskmovps to memory is microcoded on Zen), and they were a third of a K = 48 product.
#define GEMM_MICRO(R)                                                                                                   \
    AVX2 static void gemm_micro_##R(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t kc, float *c,    \
                                    int64_t ldc, __m256i m0, __m256i m1, int mode, const float *init, int full) {       \
        __m256 lo[R], hi[R];                                                                                            \
        for (int r = 0; r < R; r++) {                                                                                   \
            if (mode == 2 && full) {                                                                                    \
                lo[r] = _mm256_loadu_ps(c + r * ldc);                                                                   \
                hi[r] = _mm256_loadu_ps(c + r * ldc + 8);                                                               \
            } else if (mode == 2) {                                                                                     \
                lo[r] = _mm256_maskload_ps(c + r * ldc, m0);                                                            \
                hi[r] = _mm256_maskload_ps(c + r * ldc + 8, m1);                                                        \
            } else if (mode == 1) {                                                                                     \
                lo[r] = _mm256_loadu_ps(init);                                                                          \
                hi[r] = _mm256_loadu_ps(init + 8);                                                                      \
            } else {                                                                                                    \
                lo[r] = _mm256_setzero_ps();                                                                            \
                hi[r] = _mm256_setzero_ps();                                                                            \
            }                                                                                                           \
        }                                                                                                               \
        for (int32_t k = 0; k < kc; k++) {                                                                              \
            const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);                      \
            for (int r = 0; r < R; r++) {                                                                               \
                const __m256 av = _mm256_broadcast_ss(a + r * lda + k);                                                 \
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);                                                                 \
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);                                                                 \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++) {                                                                                   \
            if (full) {                                                                                                 \
                _mm256_storeu_ps(c + r * ldc, lo[r]);                                                                   \
                _mm256_storeu_ps(c + r * ldc + 8, hi[r]);                                                               \
            } else {                                                                                                    \
                _mm256_maskstore_ps(c + r * ldc, m0, lo[r]);                                                            \
                _mm256_maskstore_ps(c + r * ldc + 8, m1, hi[r]);                                                        \
            }                                                                                                           \
        }                                                                                                               \
    }
GEMM_MICRO(1)
GEMM_MICRO(2)
GEMM_MICRO(3)
GEMM_MICRO(4)
GEMM_MICRO(5)
GEMM_MICRO(6)

typedef void (*gemm_micro_fn)(const float *, int64_t, const float *, int64_t, int32_t, float *, int64_t, __m256i,
                              __m256i, int, const float *, int);

AVX2 void mn_gemm_f32_avx2(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans,
                               const float *bias, float *c, int64_t ldc, int64_t M, int64_t N, int64_t K,
                               int32_t accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) if (!accumulate) c[m * ldc + n] = bias ? bias[n] : 0.f;
        return;
    }
    static const gemm_micro_fn micro[GEMM_MR + 1] = {0, gemm_micro_1, gemm_micro_2, gemm_micro_3,
                                                     gemm_micro_4, gemm_micro_5, gemm_micro_6};
    float panel[GEMM_KC * GEMM_NR] __attribute__((aligned(32)));
    float init[GEMM_NR];
    for (int64_t n0 = 0; n0 < N; n0 += GEMM_NR) {
        const int32_t cols = N - n0 < GEMM_NR ? (int32_t)(N - n0) : GEMM_NR;
        const __m256i m0 = lanes_below(cols), m1 = lanes_below(cols - 8);
        for (int32_t j = 0; j < GEMM_NR; j++) init[j] = bias && j < cols ? bias[n0 + j] : 0.f;
        for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
            const int32_t kc = K - k0 < GEMM_KC ? (int32_t)(K - k0) : GEMM_KC;
            const float *bp;
            int64_t bstride;
            if (!b_trans && cols == GEMM_NR) {
                bp = b + k0 * ldb + n0;  // read in place
                bstride = ldb;
            } else {
                for (int32_t k = 0; k < kc; k++) {
                    float *row = panel + k * GEMM_NR;
                    if (b_trans) {
                        for (int32_t j = 0; j < cols; j++) row[j] = b[(n0 + j) * ldb + k0 + k];
                    } else {
                        memcpy(row, b + (k0 + k) * ldb + n0, (size_t)cols * sizeof(float));
                    }
                    for (int32_t j = cols; j < GEMM_NR; j++) row[j] = 0.f;
                }
                bp = panel;
                bstride = GEMM_NR;
            }
            const int mode = k0 > 0 || accumulate ? 2 : (bias ? 1 : 0);
            for (int64_t m = 0; m < M; m += GEMM_MR) {
                const int rows = M - m < GEMM_MR ? (int)(M - m) : GEMM_MR;
                micro[rows](a + m * lda + k0, lda, bp, bstride, kc, c + m * ldc + n0, ldc, m0, m1, mode, init, cols == GEMM_NR);
            }
        }
    }
}

// --------------------------------------------------------------- vector math ---------------------

/// The shared core of exp8 and exp8_gate: x = n ln2 + r, |r| <= ln2/2 (n returned), and Cephes'
/// degree-6 polynomial for exp(r). The callers clamp x and apply the 2^n scale.
INLINE_AVX2 __m256 exp8_reduced(__m256 x, __m256 *n_out) {
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    *n_out = n;
    return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
}

/// exp(x): x = n ln2 + r, |r| <= ln2/2, Cephes' degree-6 polynomial for exp(r), scaled by 2^n
/// through the exponent bits. Relative error about 2e-7 where the result is a normal float; +inf
/// above 88.72 (as expf), 0 below -87.33 (where expf is denormal or 0); NaN stays NaN.
INLINE_AVX2 __m256 exp8(__m256 x) {
    const __m256 x0 = x;
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GT_OQ);
    const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n;
    const __m256 p = exp8_reduced(x, &n);
    // 2^n: n in [-126, 128] after the clamp; 2^128 is split as 2^127 * 2 to stay finite.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    y = _mm256_andnot_ps(under, y);
    return _mm256_blendv_ps(y, _mm256_add_ps(x0, x0), nan);
}

/// sigmoid(x) = 1 / (1 + exp(-x)); exp's clamp keeps both tails finite (1 and ~3e-39).
INLINE_AVX2 __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/// tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); below |x| = 0.04 the odd Taylor series to x^7
/// avoids the cancellation, so small inputs keep their relative precision.
INLINE_AVX2 __m256 tanh8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
    const __m256 one = _mm256_set1_ps(1.f);
    const __m256 e = exp8(_mm256_add_ps(ax, ax));
    const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(e, one)));
    const __m256 x2 = _mm256_mul_ps(ax, ax);
    __m256 p = _mm256_set1_ps(-17.f / 315.f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.f / 15.f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.f / 3.f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), ax, ax);
    const __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.04f), _CMP_LT_OQ));
    // NaN: |x| is NaN, both branches are NaN; the sign OR keeps it NaN.
    return _mm256_or_ps(y, sign);
}

/// erf(x): below |x| = 0.5 the Maclaurin series to x^13 (no cancellation near 0); above it
/// Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7) with exp8. Odd, saturates at +-1.
INLINE_AVX2 __m256 erf8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
    const __m256 one = _mm256_set1_ps(1.f);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 x2 = _mm256_mul_ps(ax, ax);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x2));
    const __m256 big = _mm256_fnmadd_ps(p, e, one);
    // 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), n <= 6.
    __m256 q = _mm256_set1_ps(1.f / 9360.f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.f / 1320.f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.f / 216.f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.f / 42.f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.f / 10.f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.f / 3.f));
    q = _mm256_fmadd_ps(q, x2, one);
    const __m256 small = _mm256_mul_ps(_mm256_mul_ps(q, ax), _mm256_set1_ps(1.12837916709551257f));
    const __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.5f), _CMP_LT_OQ));
    return _mm256_or_ps(y, sign);
}

/// The unary ops with a transcendental function, eight lanes at a time, the tail too (through a
/// padded copy): an element's result never depends on where it falls, so batch 1 and batch 8 give
/// the same bits. The other ops go to the portable code.
AVX2 void mn_unary_f32_avx2(int32_t op, const float *x, float *y, int64_t n, float p0, float p1) {
    if (op != 2 && op != 3 && op != 5 && op != 7 && op != 10 && op != 11) { mn_unary_f32(op, x, y, n, p0, p1); return; }
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.f);
    float tail[8] = {0};
    for (int64_t i = 0; i < n; i += 8) {
        const int64_t left = n - i;
        if (left < 8) memcpy(tail, x + i, (size_t)left * sizeof(float));
        const __m256 v = left < 8 ? _mm256_loadu_ps(tail) : _mm256_loadu_ps(x + i);
        __m256 r;
        switch (op) {
        case 2: r = sigmoid8(v); break;
        case 3: r = tanh8(v); break;
        case 5: r = exp8(v); break;
        case 7: r = erf8(v); break;
        case 10: r = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f))))); break;
        default: {
            // 0.5 v (1 + tanh(u)) = v sigmoid(2u) = v / (1 + exp(-2u)): one exp and one division.
            const __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(-1.5957691216057307f),
                                            _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
            r = _mm256_div_ps(v, _mm256_add_ps(one, exp8(u2)));
        }
        }
        if (left < 8) {
            _mm256_storeu_ps(tail, r);
            memcpy(y + i, tail, (size_t)left * sizeof(float));
        } else {
            _mm256_storeu_ps(y + i, r);
        }
    }
}

// ------------------------------------------------------------------ LSTM cell ---------------------

/// exp for the gates' sigmoid and tanh, whose results saturate long before exp overflows: the
/// input is clamped to [-87.3, 88], so n <= 127 and one exponent scale suffices, and no overflow,
/// underflow or NaN blends are needed (NaN survives the clamp: it is max/min's second operand, and
/// the polynomial carries it). Same reduction and polynomial as exp8 (exp8_reduced).
INLINE_AVX2 __m256 exp8_gate(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(88.f), _mm256_max_ps(_mm256_set1_ps(-87.3f), x));
    __m256 n;
    const __m256 p = exp8_reduced(x, &n);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

INLINE_AVX2 __m256 sigmoid8_gate(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8_gate(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/// tanh(x) = 2 sigmoid(2x) - 1: absolute error within 3e-7 like the other gate functions (it gives
/// up tanh8's relative precision for tiny |x|, which an absolute bound does not need).
INLINE_AVX2 __m256 tanh8_gate(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f);
    const __m256 e = exp8_gate(_mm256_mul_ps(_mm256_set1_ps(-2.f), x));
    return _mm256_fmsub_ps(two, _mm256_div_ps(one, _mm256_add_ps(one, e)), one);
}

/// mn_lstm_cell_f32 eight units at a time, in two passes over the row: first the cell state
/// c = sigmoid(f) c_prev + sigmoid(i) tanh(c~) of every group, then h = sigmoid(o) tanh(c). Each
/// function is a long dependent chain; in two passes the groups of each pass are independent and
/// overlap (with the one-pass form each group waited on c -> tanh(c) -> h). The last partial group
/// goes through padded copies, so a unit's result does not depend on H.
AVX2 void mn_lstm_cell_f32_avx2(float *g, const float *c_prev, float *h, int64_t H) {
    const int64_t full = H & ~(int64_t)7, left = H - full;
    for (int64_t k = 0; k < full; k += 8) {
        __m256 c = _mm256_mul_ps(sigmoid8_gate(_mm256_loadu_ps(g + k)), tanh8_gate(_mm256_loadu_ps(g + 3 * H + k)));
        if (c_prev) c = _mm256_fmadd_ps(sigmoid8_gate(_mm256_loadu_ps(g + 2 * H + k)), _mm256_loadu_ps(c_prev + k), c);
        _mm256_storeu_ps(g + k, c);
    }
    for (int64_t k = 0; k < full; k += 8)
        _mm256_storeu_ps(h + k, _mm256_mul_ps(sigmoid8_gate(_mm256_loadu_ps(g + H + k)), tanh8_gate(_mm256_loadu_ps(g + k))));
    if (left) {
        float pad[5][8] = {{0}};  // i, o, f, c~, c_prev of the last units
        for (int j = 0; j < 4; j++) memcpy(pad[j], g + j * H + full, (size_t)left * sizeof(float));
        if (c_prev) memcpy(pad[4], c_prev + full, (size_t)left * sizeof(float));
        __m256 c = _mm256_mul_ps(sigmoid8_gate(_mm256_loadu_ps(pad[0])), tanh8_gate(_mm256_loadu_ps(pad[3])));
        if (c_prev) c = _mm256_fmadd_ps(sigmoid8_gate(_mm256_loadu_ps(pad[2])), _mm256_loadu_ps(pad[4]), c);
        _mm256_storeu_ps(pad[0], c);
        _mm256_storeu_ps(pad[1], _mm256_mul_ps(sigmoid8_gate(_mm256_loadu_ps(pad[1])), tanh8_gate(c)));
        memcpy(g + full, pad[0], (size_t)left * sizeof(float));
        memcpy(h + full, pad[1], (size_t)left * sizeof(float));
    }
}

/// Softmax rows with exp8 (log-softmax stays on the portable code).
AVX2 void mn_softmax_f32_avx2(const float *x, float *y, int64_t rows, int64_t cols, int32_t log) {
    if (log || cols < 8) { mn_softmax_f32(x, y, rows, cols, log); return; }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(xr + c));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 0x55));
        float mx = _mm_cvtss_f32(m4);
        for (; c < cols; c++) mx = xr[c] > mx ? xr[c] : mx;
        if (!isfinite(mx)) { mn_softmax_f32(xr, yr, 1, cols, 0); continue; }  // inf/NaN rows: the reference's answer
        const __m256 vm = _mm256_set1_ps(mx);
        __m256 vsum = _mm256_setzero_ps();
        for (c = 0; c + 8 <= cols; c += 8) {
            const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vm));
            _mm256_storeu_ps(yr + c, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(vsum), _mm256_extractf128_ps(vsum, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 0x55));
        float sum = _mm_cvtss_f32(s4);
        for (; c < cols; c++) { yr[c] = expf(xr[c] - mx); sum += yr[c]; }
        const __m256 inv = _mm256_set1_ps(1.f / sum);
        for (c = 0; c + 8 <= cols; c += 8) _mm256_storeu_ps(yr + c, _mm256_mul_ps(_mm256_loadu_ps(yr + c), inv));
        for (; c < cols; c++) yr[c] *= 1.f / sum;
    }
}

#endif
