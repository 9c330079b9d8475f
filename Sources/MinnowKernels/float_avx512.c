// The AVX-512 float kernels: vector_math_x86.inc at 16 lanes (the same code and bits as the AVX2
// table's, element by element), and a float GEMM (attention products, LSTM/GRU projections, float
// Dense) with the AVX2 one's
// blocking with twice the registers. An 8x32 micro kernel keeps 16 zmm accumulators, broadcasts
// one A value per row and k and multiplies it into two 16-wide rows of B: 16 FMAs per 2 loads of B
// and 8 broadcasts (AVX2: 12 ymm FMAs per 2 loads and 6 broadcasts). Each element of C is the same
// chain as in mn_gemm_f32_avx2: its init (0, bias or C), then one FMA per k in order, stored and
// reloaded every 256-deep k block; so the two tables give the same bits, at any M and any split.
//
// Unsafe pointer code: every function trusts shapes validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

enum { G_MR = 8, G_NR = 32, G_KC = 256 };

// mode 0: start from zero, 1: from `init` (32 floats, a bias block), 2: from C (accumulate).
// H: 16-column halves computed (1 when at most 16 columns are left). m0, m1: the halves' lanes.
#define GEMM512_MICRO(R, H)                                                                                             \
    AVX512 static void gemm512_micro_##R##_##H(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t kc,    \
                                               float *c, int64_t ldc, __mmask16 m0, __mmask16 m1, int mode,            \
                                               const float *init) {                                                     \
        __m512 lo[R], hi[R];                                                                                            \
        for (int r = 0; r < R; r++) {                                                                                   \
            if (mode == 2) {                                                                                            \
                lo[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);                                                         \
                hi[r] = H == 2 ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();                     \
            } else if (mode == 1) {                                                                                     \
                lo[r] = _mm512_loadu_ps(init);                                                                          \
                hi[r] = H == 2 ? _mm512_loadu_ps(init + 16) : _mm512_setzero_ps();                                      \
            } else {                                                                                                    \
                lo[r] = _mm512_setzero_ps();                                                                            \
                hi[r] = _mm512_setzero_ps();                                                                            \
            }                                                                                                           \
        }                                                                                                               \
        for (int32_t k = 0; k < kc; k++) {                                                                              \
            const __m512 b0 = _mm512_loadu_ps(b + k * ldb);                                                             \
            const __m512 b1 = H == 2 ? _mm512_loadu_ps(b + k * ldb + 16) : _mm512_setzero_ps();                         \
            for (int r = 0; r < R; r++) {                                                                               \
                const __m512 av = _mm512_set1_ps(a[r * lda + k]);                                                       \
                lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);                                                                 \
                if (H == 2) hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);                                                     \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++) {                                                                                   \
            _mm512_mask_storeu_ps(c + r * ldc, m0, lo[r]);                                                              \
            if (H == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, hi[r]);                                             \
        }                                                                                                               \
    }
GEMM512_MICRO(1, 1)
GEMM512_MICRO(2, 1)
GEMM512_MICRO(3, 1)
GEMM512_MICRO(4, 1)
GEMM512_MICRO(5, 1)
GEMM512_MICRO(6, 1)
GEMM512_MICRO(7, 1)
GEMM512_MICRO(8, 1)
GEMM512_MICRO(1, 2)
GEMM512_MICRO(2, 2)
GEMM512_MICRO(3, 2)
GEMM512_MICRO(4, 2)
GEMM512_MICRO(5, 2)
GEMM512_MICRO(6, 2)
GEMM512_MICRO(7, 2)
GEMM512_MICRO(8, 2)

typedef void (*gemm512_micro_fn)(const float *, int64_t, const float *, int64_t, int32_t, float *, int64_t, __mmask16,
                                 __mmask16, int, const float *);
static const gemm512_micro_fn micro[2][G_MR + 1] = {
    {0, gemm512_micro_1_1, gemm512_micro_2_1, gemm512_micro_3_1, gemm512_micro_4_1, gemm512_micro_5_1, gemm512_micro_6_1,
     gemm512_micro_7_1, gemm512_micro_8_1},
    {0, gemm512_micro_1_2, gemm512_micro_2_2, gemm512_micro_3_2, gemm512_micro_4_2, gemm512_micro_5_2, gemm512_micro_6_2,
     gemm512_micro_7_2, gemm512_micro_8_2},
};

static inline __mmask16 lanes(int32_t n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/// mn_gemm_f32_fn: B read in place when stored [K, N] and the 32-column panel is whole; otherwise
/// the k block of the panel is copied (transposed for weights [N, K]) into a 32 KB stack buffer,
/// zero past N.
AVX512 void mn_gemm_f32_avx512(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans,
                               const float *bias, float *c, int64_t ldc, int64_t M, int64_t N, int64_t K,
                               int32_t accumulate) {
    if (gemm_f32_trivial(bias, c, ldc, M, N, K, accumulate)) return;
    float panel[G_KC * G_NR] __attribute__((aligned(64)));
    float init[G_NR];
    for (int64_t n0 = 0; n0 < N; n0 += G_NR) {
        const int32_t cols = N - n0 < G_NR ? (int32_t)(N - n0) : G_NR;
        const int H = cols > 16 ? 2 : 1;
        const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
        for (int32_t j = 0; j < G_NR; j++) init[j] = bias && j < cols ? bias[n0 + j] : 0.f;
        for (int64_t k0 = 0; k0 < K; k0 += G_KC) {
            const int32_t kc = K - k0 < G_KC ? (int32_t)(K - k0) : G_KC;
            int64_t bstride;
            const float *bp = gemm_f32_panel(b, ldb, b_trans, n0, k0, kc, cols, G_NR, panel, &bstride);
            const int mode = k0 > 0 || accumulate ? 2 : (bias ? 1 : 0);
            for (int64_t m = 0; m < M; m += G_MR) {
                const int rows = M - m < G_MR ? (int)(M - m) : G_MR;
                micro[H - 1][rows](a + m * lda + k0, lda, bp, bstride, kc, c + m * ldc + n0, ldc, m0, m1, mode, init);
            }
        }
    }
}

// ---------------------------------------------------------------- vector math --------------------

#define V __m512
#define VI __m512i
#define M __mmask16
#define W 16
#define FN(name) name##_avx512
#define TARGET AVX512
#define V_SET1 _mm512_set1_ps
#define V_ZERO _mm512_setzero_ps
#define V_LOADU _mm512_loadu_ps
#define V_STOREU _mm512_storeu_ps
// The first n < W lanes (masked lanes neither read nor written: no fault past the end).
#define V_LOADN(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << (n)) - 1), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_FMADD _mm512_fmadd_ps
#define V_FNMADD _mm512_fnmadd_ps
#define V_FMSUB _mm512_fmsub_ps
#define V_MIN _mm512_min_ps
#define V_MAX _mm512_max_ps
#define V_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define V_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define V_UNORD(a, b) _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
#define V_BLEND(m, a, b) _mm512_mask_blend_ps(m, a, b)
#define V_ZERO_IF(m, v) _mm512_maskz_mov_ps((__mmask16)~(m), v)
#define V_AND _mm512_and_ps
#define V_ANDNOT _mm512_andnot_ps
#define V_OR _mm512_or_ps
#define VI_CVT _mm512_cvtps_epi32
#define VI_SET1 _mm512_set1_epi32
#define VI_ADD _mm512_add_epi32
#define VI_SUB _mm512_sub_epi32
#define VI_SRAI _mm512_srai_epi32
#define VI_SLLI _mm512_slli_epi32
#define VI_AS_V _mm512_castsi512_ps
#define V_HMAX _mm512_reduce_max_ps
#define V_HSUM _mm512_reduce_add_ps

#include "vector_math_x86.inc"
#endif
