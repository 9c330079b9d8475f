// x86-64 AVX2 + FMA kernels for the ops that stay float: a register-blocked GEMM (attention
// products, LSTM/GRU projections, float Dense), and the vector math of vector_math_x86.inc (exp,
// tanh, sigmoid, erf, GELU, softmax rows, the LSTM cell) at 8 lanes. Float results differ from the portable reference only by summation order and the
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
    if (gemm_f32_trivial(bias, c, ldc, M, N, K, accumulate)) return;
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
            int64_t bstride;
            const float *bp = gemm_f32_panel(b, ldb, b_trans, n0, k0, kc, cols, GEMM_NR, panel, &bstride);
            const int mode = k0 > 0 || accumulate ? 2 : (bias ? 1 : 0);
            for (int64_t m = 0; m < M; m += GEMM_MR) {
                const int rows = M - m < GEMM_MR ? (int)(M - m) : GEMM_MR;
                micro[rows](a + m * lda + k0, lda, bp, bstride, kc, c + m * ldc + n0, ldc, m0, m1, mode, init, cols == GEMM_NR);
            }
        }
    }
}

// --------------------------------------------------------------- vector math ---------------------

#define V __m256
#define VI __m256i
#define M __m256
#define W 8
#define FN(name) name##_avx2
#define TARGET __attribute__((target("avx2,fma")))
#define V_SET1 _mm256_set1_ps
#define V_ZERO _mm256_setzero_ps
#define V_LOADU _mm256_loadu_ps
#define V_STOREU _mm256_storeu_ps
// The first n < W lanes (vmaskmovps neither reads nor writes the others: no fault past the end).
#define LANES_BELOW(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_LOADN(p, n, fill) _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, LANES_BELOW(n)), _mm256_castsi256_ps(LANES_BELOW(n)))
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, LANES_BELOW(n), v)
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_FMADD _mm256_fmadd_ps
#define V_FNMADD _mm256_fnmadd_ps
#define V_FMSUB _mm256_fmsub_ps
#define V_MIN _mm256_min_ps
#define V_MAX _mm256_max_ps
#define V_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define V_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define V_UNORD(a, b) _mm256_cmp_ps(a, b, _CMP_UNORD_Q)
#define V_BLEND(m, a, b) _mm256_blendv_ps(a, b, m)
#define V_ZERO_IF(m, v) _mm256_andnot_ps(m, v)
#define V_AND _mm256_and_ps
#define V_ANDNOT _mm256_andnot_ps
#define V_OR _mm256_or_ps
#define VI_CVT _mm256_cvtps_epi32
#define VI_SET1 _mm256_set1_epi32
#define VI_ADD _mm256_add_epi32
#define VI_SUB _mm256_sub_epi32
#define VI_SRAI _mm256_srai_epi32
#define VI_SLLI _mm256_slli_epi32
#define VI_AS_V _mm256_castsi256_ps

INLINE_AVX2 float hmax8(__m256 v) {
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    return _mm_cvtss_f32(_mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 0x55)));
}

INLINE_AVX2 float hsum8(__m256 v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 0x55)));
}
#define V_HMAX hmax8
#define V_HSUM hsum8

#include "vector_math_x86.inc"

// ---------------------------------------------------------------- layer norm ---------------------

/// The lanes below n (n < 8) of 8 floats at p, the rest 0 (vmaskmovps reads no others).
#define LN_LOADN(p, n) _mm256_maskload_ps(p, LANES_BELOW(n))

/// mn_layer_norm_f32 (every x86 table's entry): the same eight interleaved partial sums in the
/// same order, eight lanes a step, so the bits are the reference's. A tail of dim % 8 adds zeros
/// to the lanes past it, which leaves those sums as they are (a sum that starts at +0 is never
/// -0), and its centred squares are zeroed there. No FMA: (v - mean) * inv * gamma + beta rounds
/// each step as the C does.
__attribute__((target("avx2,fma"))) void mn_layer_norm_f32_avx2(const float *x, const float *x2, const float *gamma,
                                                               const float *beta, float *y, int64_t rows, int64_t dim, float eps) {
    const int64_t full = dim - dim % 8, tail = dim - full;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim, *x2r = x2 ? x2 + r * dim : NULL;
        float *yr = y + r * dim;
#define LN_V(i) (x2r ? _mm256_add_ps(_mm256_loadu_ps(xr + (i)), _mm256_loadu_ps(x2r + (i))) : _mm256_loadu_ps(xr + (i)))
#define LN_VT() (x2r ? _mm256_add_ps(LN_LOADN(xr + full, tail), LN_LOADN(x2r + full, tail)) : LN_LOADN(xr + full, tail))
        __m256 s = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) s = _mm256_add_ps(s, LN_V(i));
        if (tail) s = _mm256_add_ps(s, LN_VT());
        float l[8];
        _mm256_storeu_ps(l, s);
        const float mean = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) / (float)dim;
        const __m256 vm = _mm256_set1_ps(mean);
        __m256 q = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            const __m256 c = _mm256_sub_ps(LN_V(i), vm);
            q = _mm256_add_ps(q, _mm256_mul_ps(c, c));
        }
        if (tail) {
            const __m256 c = _mm256_and_ps(_mm256_sub_ps(LN_VT(), vm), _mm256_castsi256_ps(LANES_BELOW(tail)));
            q = _mm256_add_ps(q, _mm256_mul_ps(c, c));
        }
        _mm256_storeu_ps(l, q);
        const float var = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) / (float)dim;
        const __m256 inv = _mm256_set1_ps(1.f / sqrtf(var + eps));
        for (int64_t i = 0; i < full; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(LN_V(i), vm), inv), _mm256_loadu_ps(gamma + i));
            if (beta) v = _mm256_add_ps(v, _mm256_loadu_ps(beta + i));
            _mm256_storeu_ps(yr + i, v);
        }
        if (tail) {
            __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(LN_VT(), vm), inv), LN_LOADN(gamma + full, tail));
            if (beta) v = _mm256_add_ps(v, LN_LOADN(beta + full, tail));
            _mm256_maskstore_ps(yr + full, LANES_BELOW(tail), v);
        }
#undef LN_V
#undef LN_VT
    }
}

#endif
