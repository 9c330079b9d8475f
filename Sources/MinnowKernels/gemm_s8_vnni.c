// The AVX-512 VNNI int8 GEMM inner loop (u8 x s8 vpdpbusd) and its weight packing, plus the
// AVX-512 quantization. What the sums mean is in dense_s8_x86.c, shared with the AVX2 table.
// Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

// Weights are packed at load into 16-column panels: for column block nb and k-group g (4 values),
// 64 bytes hold w[nb*16 + j][g*4 + t] at j*4 + t (zero where j or k runs past N or K). One
// vpdpbusd multiplies 4 consecutive u8 inputs, broadcast to every lane, with 4 weights of each of
// 16 columns: the accumulators hold 16 outputs each and need no horizontal sums.
//
// vpdpbusd wants unsigned inputs, so each block of rows is first copied shifted by 128
// (x + 128 == x ^ 0x80); the accumulators start at -128 * wsum[n], so what comes out is the exact
// signed sum (int32 adds wrap, so the order does not matter). An 8-row x 32-column micro kernel
// keeps 16 accumulators in registers: per k-group two 64-byte weight loads and eight broadcasts
// feed sixteen vpdpbusd.
//
// Each call starts two new weight streams (one per panel) and runs them for only K / 4 groups, too
// short for the hardware prefetcher to learn them: in a whole model (weights in L3, not L2) loads
// of w0 and w1 stalled a quarter of the loop on Zen 4. Each group prefetches its panels'
// VNNI_PREFETCH bytes ahead (32 groups); past a panel's end that is the next panel, read next.

enum { VNNI_MR = 8, VNNI_KB = 4096, VNNI_PREFETCH = 2048 };

static inline int32_t vnni_kgroups(int32_t K) { return (K + 3) / 4; }

size_t mn_packed_s8_size_vnni(int32_t K, int32_t N) { return (size_t)s8_blocks(N) * (size_t)vnni_kgroups(K) * 64; }

void mn_pack_s8_vnni(const int8_t *w, int8_t *packed, int32_t K, int32_t N) {
    mn_pack_s8_vnni_groups(w, packed, K, N, vnni_kgroups(K));
}

/// The VNNI layout with `groups` >= (K + 3) / 4 k-groups per panel (the rest zero weights).
void mn_pack_s8_vnni_groups(const int8_t *w, int8_t *packed, int32_t K, int32_t N, int32_t groups) {
    for (int32_t nb = 0; nb < s8_blocks(N); nb++)
        for (int32_t g = 0; g < groups; g++)
            for (int32_t j = 0; j < 16; j++)
                for (int32_t t = 0; t < 4; t++) {
                    const int32_t n = nb * 16 + j, k = g * 4 + t;
                    packed[((int64_t)nb * groups + g) * 64 + j * 4 + t] = (n < N && k < K) ? w[(int64_t)n * K + k] : 0;
                }
}

/// Rows [k0, k0 + kb) of up to 8 rows of x, shifted to u8, into xu (rows `xs` bytes apart), written
/// in whole 64-byte blocks; bytes past kb hold 0x80 and meet zero weights.
AVX512 static void shift_rows(const int8_t *x, int64_t ldx, int rows, int32_t k0, int32_t kb, uint8_t *xu, int64_t xs) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int r = 0; r < rows; r++) {
        const int8_t *src = x + r * ldx + k0;
        uint8_t *dst = xu + r * xs;
        for (int32_t k = 0; k < kb; k += 64) {
            const __mmask64 m = kb - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (kb - k)) - 1);
            _mm512_store_si512((void *)(dst + k), _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + k), flip));
        }
    }
}

/// R rows x P panels (16 columns each) over `groups` k-groups. accumulate 0: start from
/// -128 * wsum (lanes < cols[p]); 1: from acc (an earlier k block).
#define VNNI_MICRO(R, P)                                                                                                \
    AVX512 static void vnni_micro_##R##_##P(const uint8_t *xu, int64_t xs, const int8_t *panel, int64_t panel_stride,   \
                                            int32_t groups, int accumulate, const int32_t *wsum, const int32_t *cols,    \
                                            int32_t acc[2][S8_ROWS_MAX][S8_NR]) {                                        \
        __m512i a0[R], a1[R];                                                                                           \
        for (int r = 0; r < R; r++) {                                                                                   \
            if (accumulate) {                                                                                           \
                a0[r] = _mm512_load_si512((const void *)acc[0][r]);                                                     \
                a1[r] = P == 2 ? _mm512_load_si512((const void *)acc[1][r]) : _mm512_setzero_si512();                   \
            }                                                                                                           \
        }                                                                                                               \
        if (!accumulate) {                                                                                              \
            const __m512i c0 = _mm512_slli_epi32(                                                                       \
                _mm512_maskz_loadu_epi32((__mmask16)((1u << cols[0]) - 1), wsum), 7);                                   \
            const __m512i c1 = P == 2 ? _mm512_slli_epi32(                                                              \
                _mm512_maskz_loadu_epi32((__mmask16)((1u << cols[1]) - 1), wsum + 16), 7) : _mm512_setzero_si512();     \
            for (int r = 0; r < R; r++) {                                                                               \
                a0[r] = _mm512_sub_epi32(_mm512_setzero_si512(), c0);                                                   \
                a1[r] = _mm512_sub_epi32(_mm512_setzero_si512(), c1);                                                   \
            }                                                                                                           \
        }                                                                                                               \
        for (int32_t g = 0; g < groups; g++) {                                                                          \
            _mm_prefetch((const char *)(panel + (int64_t)g * 64 + VNNI_PREFETCH), _MM_HINT_T0);                         \
            if (P == 2) _mm_prefetch((const char *)(panel + panel_stride + (int64_t)g * 64 + VNNI_PREFETCH), _MM_HINT_T0); \
            const __m512i w0 = _mm512_loadu_si512((const void *)(panel + (int64_t)g * 64));                              \
            const __m512i w1 = P == 2 ? _mm512_loadu_si512((const void *)(panel + panel_stride + (int64_t)g * 64))       \
                                      : _mm512_setzero_si512();                                                         \
            for (int r = 0; r < R; r++) {                                                                               \
                int32_t quad;                                                                                           \
                memcpy(&quad, xu + r * xs + 4 * g, 4);                                                                  \
                const __m512i xv = _mm512_set1_epi32(quad);                                                             \
                a0[r] = _mm512_dpbusd_epi32(a0[r], xv, w0);                                                             \
                if (P == 2) a1[r] = _mm512_dpbusd_epi32(a1[r], xv, w1);                                                 \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++) {                                                                                   \
            _mm512_store_si512((void *)acc[0][r], a0[r]);                                                               \
            if (P == 2) _mm512_store_si512((void *)acc[1][r], a1[r]);                                                   \
        }                                                                                                               \
    }
VNNI_MICRO(1, 1)
VNNI_MICRO(2, 1)
VNNI_MICRO(3, 1)
VNNI_MICRO(4, 1)
VNNI_MICRO(5, 1)
VNNI_MICRO(6, 1)
VNNI_MICRO(7, 1)
VNNI_MICRO(8, 1)
VNNI_MICRO(1, 2)
VNNI_MICRO(2, 2)
VNNI_MICRO(3, 2)
VNNI_MICRO(4, 2)
VNNI_MICRO(5, 2)
VNNI_MICRO(6, 2)
VNNI_MICRO(7, 2)
VNNI_MICRO(8, 2)

typedef void (*vnni_micro_fn)(const uint8_t *, int64_t, const int8_t *, int64_t, int32_t, int, const int32_t *, const int32_t *,
                              int32_t[2][S8_ROWS_MAX][S8_NR]);
static const vnni_micro_fn vnni_micro[2][VNNI_MR + 1] = {
    {0, vnni_micro_1_1, vnni_micro_2_1, vnni_micro_3_1, vnni_micro_4_1, vnni_micro_5_1, vnni_micro_6_1, vnni_micro_7_1, vnni_micro_8_1},
    {0, vnni_micro_1_2, vnni_micro_2_2, vnni_micro_3_2, vnni_micro_4_2, vnni_micro_5_2, vnni_micro_6_2, vnni_micro_7_2, vnni_micro_8_2},
};

/// s8_gemm_fn on VNNI: row blocks of 8, column blocks of 32, k blocks of VNNI_KB; panels
/// `panel_bytes` apart (the AMX table pads them to whole tiles).
AVX512 void mn_gemm_s8_vnni_panels(const int8_t *x, const int8_t *packed, int64_t panel_bytes, const int32_t *wsum,
                                   int32_t M, int32_t K, int32_t N, s8_epilogue_fn epilogue, void *ctx) {
    uint8_t xu[VNNI_MR * (VNNI_KB + 64)] __attribute__((aligned(64)));
    int32_t acc[2][S8_ROWS_MAX][S8_NR] __attribute__((aligned(64)));
    const int32_t blocks = s8_blocks(N);
    const int one_block = K <= VNNI_KB;
    // Row stride: whole 64-byte blocks plus one, so the 8 rows do not all fall in one L1 set.
    const int64_t xs = (((int64_t)(one_block ? K : VNNI_KB) + 63) & ~(int64_t)63) + 64;
    for (int64_t m = 0; m < M; m += VNNI_MR) {
        const int rows = M - m < VNNI_MR ? (int)(M - m) : VNNI_MR;
        if (one_block) shift_rows(x + m * K, K, rows, 0, K, xu, xs);
        for (int32_t nb = 0; nb < blocks; nb += 2) {
            const int P = blocks - nb >= 2 ? 2 : 1;
            const int32_t n0 = nb * 16;
            const int32_t cols[2] = {N - n0 < 16 ? N - n0 : 16, P == 2 ? (N - n0 - 16 < 16 ? N - n0 - 16 : 16) : 0};
            for (int32_t k0 = 0; k0 < K; k0 += VNNI_KB) {
                const int32_t kb = K - k0 < VNNI_KB ? K - k0 : VNNI_KB;
                if (!one_block) shift_rows(x + m * K, K, rows, k0, kb, xu, xs);
                vnni_micro[P - 1][rows](xu, xs, packed + nb * panel_bytes + (int64_t)(k0 / 4) * 64, panel_bytes,
                                        vnni_kgroups(kb), k0 > 0, wsum + n0, cols, acc);
            }
            epilogue(ctx, m, rows, n0, cols[0], acc[0]);
            if (P == 2) epilogue(ctx, m, rows, n0 + 16, cols[1], acc[1]);
        }
    }
}

AVX512 void mn_gemm_s8_vnni(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                            s8_epilogue_fn epilogue, void *ctx) {
    mn_gemm_s8_vnni_panels(x, packed, (int64_t)vnni_kgroups(K) * 64, wsum, M, K, N, epilogue, ctx);
}

/// One vector of the reference's steps: divide (exact_quotient16 gives the same bits), round half
/// to even, add zp, clamp (NaN compares false both ways and lands on -128, as in the reference),
/// to int32 in [-128, 127].
AVX512 static inline __m512i quantize16(__m512 xv, __m512 vs, __m512 vy, __m512 vz, int exact) {
    const __m512 lo = _mm512_set1_ps(-128.f), hi = _mm512_set1_ps(127.f);
    __m512 v = _mm512_roundscale_ps(exact ? exact_quotient16(xv, vs, vy) : _mm512_div_ps(xv, vs),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_add_ps(v, vz);
    const __mmask16 ge_lo = _mm512_cmp_ps_mask(v, lo, _CMP_GE_OQ);
    return _mm512_cvttps_epi32(_mm512_mask_blend_ps(ge_lo, lo, _mm512_min_ps(v, hi)));
}

AVX512 void mn_quantize_s8_avx512(const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps((float)zp), vy = _mm512_set1_ps(1.f / scale);
    const int exact = exact_quotient_ok(scale);
    int64_t i = 0;
    // 64 values at a time narrowed by two packs and one dword permute into a single 64-byte store:
    // vpmovsdb to memory (the 16-value form) is a slow store and bounded the whole loop. The values
    // are already in [-128, 127], so the saturating packs change none of them. After the packs,
    // 128-bit lane L holds dwords (v0, v1, v2, v3)[4L..4L+3]; the permute puts v_e's dword L at e * 4 + L.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (; i + 64 <= n; i += 64) {
        const __m512i v0 = quantize16(_mm512_loadu_ps(x + i), vs, vy, vz, exact);
        const __m512i v1 = quantize16(_mm512_loadu_ps(x + i + 16), vs, vy, vz, exact);
        const __m512i v2 = quantize16(_mm512_loadu_ps(x + i + 32), vs, vy, vz, exact);
        const __m512i v3 = quantize16(_mm512_loadu_ps(x + i + 48), vs, vy, vz, exact);
        const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(v0, v1), _mm512_packs_epi32(v2, v3));
        _mm512_storeu_si512((void *)(q + i), _mm512_permutexvar_epi32(order, b));
    }
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(quantize16(_mm512_loadu_ps(x + i), vs, vy, vz, exact)));
    if (i < n) mn_quantize_s8(x + i, q + i, n - i, scale, zp);
}
#endif
