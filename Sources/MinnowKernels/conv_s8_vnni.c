// Channels-last int8 convolution as an implicit GEMM on AVX-512 VNNI: the same dot products as
// mn_im2col followed by dense_s8, without the patch matrix (as conv_s8_avx2.c, with u8 x s8
// vpdpbusd on 4 bytes a lane instead of vpmaddwd on 2). Each sample is copied once, shifted to u8
// (x ^ 0x80) and padded with the shifted input zero point, into `scratch` [PH, PW, C]; a patch row
// is then KH runs of KW*C contiguous bytes of that image, read 4 at a time. Weights are packed per
// 16-column block as the 16 column corrections 128 * sum(w) (int32, what the u8 shift added) and
// then each kernel row's run in quads, zero past the run's end, so a quad that reads into the next
// pixel meets zero weights. The sums go through the shared requantizing epilogue.
// Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

static inline int64_t run_quads(const conv_geometry *g) { return (g->KW * g->C + 3) / 4; }
static inline int64_t block_bytes(const conv_geometry *g) { return 64 + g->KH * run_quads(g) * 64; }

size_t mn_conv_s8_packed_size_vnni(const int64_t p[14], int32_t N) {
    const conv_geometry g = conv_geometry_of(p);
    return (size_t)s8_blocks(N) * (size_t)block_bytes(&g);
}

void mn_conv_s8_pack_vnni(const int8_t *w, int8_t *packed, const int64_t p[14], int32_t N) {
    const conv_geometry g = conv_geometry_of(p);
    const int64_t run = g.KW * g.C, K = g.KH * run, quads = run_quads(&g);
    for (int32_t nb = 0; nb < s8_blocks(N); nb++) {
        int8_t *block = packed + nb * block_bytes(&g);
        int32_t corr[16];
        for (int32_t j = 0; j < 16; j++) {
            const int32_t n = nb * 16 + j;
            int32_t sum = 0;
            for (int64_t k = 0; n < N && k < K; k++) sum += w[(int64_t)n * K + k];
            corr[j] = 128 * sum;
        }
        memcpy(block, corr, sizeof corr);
        for (int64_t kh = 0; kh < g.KH; kh++)
            for (int64_t q = 0; q < quads; q++)
                for (int32_t j = 0; j < 16; j++)
                    for (int32_t t = 0; t < 4; t++) {
                        const int32_t n = nb * 16 + j;
                        const int64_t i = 4 * q + t;
                        block[64 + (kh * quads + q) * 64 + j * 4 + t] = n < N && i < run ? w[(int64_t)n * K + kh * run + i] : 0;
                    }
    }
}

/// One sample [H, W, C] -> the padded u8 image [PH, PW, C] (+ 64 zero bytes of slack).
AVX512 static void widen_sample(const conv_geometry *g, const int8_t *x, uint8_t *img, int8_t pad_value) {
    const int64_t rowLen = g->PW * g->C, total = g->PH * rowLen;
    memset(img, (uint8_t)pad_value ^ 0x80, (size_t)total);
    memset(img + total, 0, 64);
    const int64_t n = g->W < g->PW - g->pl ? g->W : g->PW - g->pl, mid = n * g->C;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int64_t ih = 0; ih < g->H && ih + g->pt < g->PH; ih++) {
        const int8_t *src = x + ih * g->W * g->C;
        uint8_t *dst = img + (ih + g->pt) * rowLen + g->pl * g->C;
        for (int64_t k = 0; k < mid; k += 64) {
            const __mmask64 m = mid - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (mid - k)) - 1);
            _mm512_mask_storeu_epi8(dst + k, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + k), flip));
        }
    }
}

/// R output pixels (image rows at p[r]) x P 16-column panels; acc starts at -128 * sum(w).
#define CONV_VNNI_MICRO(R, P)                                                                                           \
    AVX512 static void conv_vnni_micro_##R##_##P(const uint8_t *const *p, int64_t row_stride, int64_t KH,               \
                                                 int64_t quads, const int8_t *block, int64_t block_stride,              \
                                                 int32_t acc[2][S8_ROWS_MAX][S8_NR]) {                                   \
        __m512i a0[R], a1[R];                                                                                           \
        const __m512i c0 = _mm512_loadu_si512((const void *)block);                                                     \
        const __m512i c1 = P == 2 ? _mm512_loadu_si512((const void *)(block + block_stride)) : _mm512_setzero_si512();  \
        for (int r = 0; r < R; r++) {                                                                                   \
            a0[r] = _mm512_sub_epi32(_mm512_setzero_si512(), c0);                                                       \
            a1[r] = _mm512_sub_epi32(_mm512_setzero_si512(), c1);                                                       \
        }                                                                                                               \
        const int8_t *wq = block + 64;                                                                                  \
        for (int64_t kh = 0; kh < KH; kh++) {                                                                           \
            const uint8_t *src[R];                                                                                      \
            for (int r = 0; r < R; r++) src[r] = p[r] + kh * row_stride;                                               \
            for (int64_t q = 0; q < quads; q++, wq += 64) {                                                             \
                const __m512i w0 = _mm512_loadu_si512((const void *)wq);                                                \
                const __m512i w1 = P == 2 ? _mm512_loadu_si512((const void *)(wq + block_stride)) : _mm512_setzero_si512(); \
                for (int r = 0; r < R; r++) {                                                                           \
                    int32_t quad;                                                                                       \
                    memcpy(&quad, src[r] + 4 * q, 4);                                                                   \
                    const __m512i xv = _mm512_set1_epi32(quad);                                                         \
                    a0[r] = _mm512_dpbusd_epi32(a0[r], xv, w0);                                                         \
                    if (P == 2) a1[r] = _mm512_dpbusd_epi32(a1[r], xv, w1);                                             \
                }                                                                                               \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < R; r++) {                                                                                   \
            _mm512_store_si512((void *)acc[0][r], a0[r]);                                                               \
            if (P == 2) _mm512_store_si512((void *)acc[1][r], a1[r]);                                                   \
        }                                                                                                               \
    }
CONV_VNNI_MICRO(1, 1)
CONV_VNNI_MICRO(2, 1)
CONV_VNNI_MICRO(3, 1)
CONV_VNNI_MICRO(4, 1)
CONV_VNNI_MICRO(5, 1)
CONV_VNNI_MICRO(6, 1)
CONV_VNNI_MICRO(7, 1)
CONV_VNNI_MICRO(8, 1)
CONV_VNNI_MICRO(1, 2)
CONV_VNNI_MICRO(2, 2)
CONV_VNNI_MICRO(3, 2)
CONV_VNNI_MICRO(4, 2)
CONV_VNNI_MICRO(5, 2)
CONV_VNNI_MICRO(6, 2)
CONV_VNNI_MICRO(7, 2)
CONV_VNNI_MICRO(8, 2)

typedef void (*conv_vnni_micro_fn)(const uint8_t *const *, int64_t, int64_t, int64_t, const int8_t *, int64_t,
                                   int32_t[2][S8_ROWS_MAX][S8_NR]);
static const conv_vnni_micro_fn conv_vnni_micro[2][S8_ROWS_MAX + 1] = {
    {0, conv_vnni_micro_1_1, conv_vnni_micro_2_1, conv_vnni_micro_3_1, conv_vnni_micro_4_1, conv_vnni_micro_5_1,
     conv_vnni_micro_6_1, conv_vnni_micro_7_1, conv_vnni_micro_8_1},
    {0, conv_vnni_micro_1_2, conv_vnni_micro_2_2, conv_vnni_micro_3_2, conv_vnni_micro_4_2, conv_vnni_micro_5_2,
     conv_vnni_micro_6_2, conv_vnni_micro_7_2, conv_vnni_micro_8_2},
};

AVX512 void mn_conv_s8_vnni(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                            const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                            const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch) {
    const conv_geometry g = conv_geometry_of(params);
    uint8_t *img = (uint8_t *)scratch;
    const int64_t P = g.OH * g.OW, row_stride = g.PW * g.C, quads = run_quads(&g), bb = block_bytes(&g);
    const int32_t blocks = s8_blocks(N);
    s8_requant_ctx c = {bias, mult, shift, out_zp, qmin, qmax, N, y};
    const s8_epilogue_fn epilogue = mn_s8_requant_epilogue_for(1);
    int32_t acc[2][S8_ROWS_MAX][S8_NR] __attribute__((aligned(64)));
    for (int64_t b = 0; b < batch; b++) {
        widen_sample(&g, x + b * g.H * g.W * g.C, img, pad_value);
        for (int32_t nb = 0; nb < blocks; nb += 2) {
            const int np = blocks - nb >= 2 ? 2 : 1;
            const int32_t n0 = nb * 16;
            int64_t oh = 0, ow = 0;  // the output pixel of the block's next row
            for (int64_t m = 0; m < P; m += S8_ROWS_MAX) {
                const int rows = P - m < S8_ROWS_MAX ? (int)(P - m) : S8_ROWS_MAX;
                const uint8_t *p[S8_ROWS_MAX];
                for (int r = 0; r < rows; r++) {
                    p[r] = img + oh * g.sh * row_stride + ow * g.sw * g.C;
                    if (++ow == g.OW) { ow = 0; oh++; }
                }
                conv_vnni_micro[np - 1][rows](p, row_stride, g.KH, quads, packed + nb * bb, bb, acc);
                epilogue(&c, b * P + m, rows, n0, N - n0 < 16 ? N - n0 : 16, acc[0]);
                if (np == 2) epilogue(&c, b * P + m, rows, n0 + 16, N - n0 - 16 < 16 ? N - n0 - 16 : 16, acc[1]);
            }
        }
    }
}
#endif
