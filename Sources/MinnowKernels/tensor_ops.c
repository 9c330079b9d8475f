// Kernels for the tensor operators of format 1.2 (portable C): layout copies, embedding gathers,
// reductions, batched matmul, layer norm, comparisons, masks and casts. As everywhere in this
// library, shapes were validated when the session was made: nothing here checks or fails, except
// the gathers, whose ids are data and are checked on every run.
#include "minnow_kernels.h"
#include <math.h>
#include <string.h>

void mn_strided_copy(const void *x, void *y, int32_t elem, int32_t rank, const int64_t dims[6],
                     const int64_t strides[6], int64_t offset, int64_t batch, int64_t x_batch_stride) {
    // One element a sample (DLRM's id columns, a sequence's last position): a typed load per
    // sample, not five loop levels and a memcpy call each.
    if (rank == 1 && dims[0] == 1 && (elem == 8 || elem == 4)) {
        if (elem == 8) {
            const int64_t *src = (const int64_t *)x + offset;
            int64_t *dst = (int64_t *)y;
            for (int64_t b = 0; b < batch; b++) dst[b] = src[b * x_batch_stride];
        } else {
            const int32_t *src = (const int32_t *)x + offset;
            int32_t *dst = (int32_t *)y;
            for (int64_t b = 0; b < batch; b++) dst[b] = src[b * x_batch_stride];
        }
        return;
    }
    // Pad to 6 dimensions from the left (extent 1, stride 0), then walk the output in order.
    int64_t d[6] = {1, 1, 1, 1, 1, 1}, s[6] = {0, 0, 0, 0, 0, 0};
    for (int32_t i = 0; i < rank; i++) { d[6 - rank + i] = dims[i]; s[6 - rank + i] = strides[i]; }
    const char *src = (const char *)x;
    char *dst = (char *)y;
    for (int64_t b = 0; b < batch; b++) {
        const int64_t base = b * x_batch_stride + offset;
        for (int64_t i0 = 0; i0 < d[0]; i0++)
        for (int64_t i1 = 0; i1 < d[1]; i1++)
        for (int64_t i2 = 0; i2 < d[2]; i2++)
        for (int64_t i3 = 0; i3 < d[3]; i3++)
        for (int64_t i4 = 0; i4 < d[4]; i4++) {
            const int64_t o = base + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3] + i4 * s[4];
            if (s[5] == 1 && elem == 4 && d[5] <= 16) {
                // Short contiguous float runs (a head's slice, an embedding row): a typed copy,
                // not a memcpy call per run.
                const float *from = (const float *)(src + o * 4);
                float *to = (float *)dst;
                for (int64_t i5 = 0; i5 < d[5]; i5++) to[i5] = from[i5];
                dst += d[5] * 4;
            } else if (s[5] == 1) {  // contiguous innermost run: one memcpy
                memcpy(dst, src + o * elem, (size_t)(d[5] * elem));
                dst += d[5] * elem;
            } else if (elem == 4) {
                for (int64_t i5 = 0; i5 < d[5]; i5++) { memcpy(dst, src + (o + i5 * s[5]) * 4, 4); dst += 4; }
            } else if (elem == 1) {
                for (int64_t i5 = 0; i5 < d[5]; i5++) *dst++ = src[o + i5 * s[5]];
            } else {
                for (int64_t i5 = 0; i5 < d[5]; i5++) { memcpy(dst, src + (o + i5 * s[5]) * elem, (size_t)elem); dst += elem; }
            }
        }
    }
}

static inline int64_t load_id(const void *ids, int32_t id_bytes, int64_t i) {
    return id_bytes == 8 ? ((const int64_t *)ids)[i] : (int64_t)((const int32_t *)ids)[i];
}

int64_t mn_gather_f32(const float *table, int64_t rows, int64_t dim, const void *ids, int32_t id_bytes, int64_t n,
                      float *y) {
    for (int64_t i = 0; i < n; i++) {
        int64_t r = load_id(ids, id_bytes, i);
        if (r < 0) r += rows;  // ONNX Gather counts negative indices from the end
        if (r < 0 || r >= rows) return i;
        if (dim == 1) y[i] = table[r];  // a Take of single values (DLRM's interaction triangle)
        else memcpy(y + i * dim, table + r * dim, (size_t)dim * sizeof(float));
    }
    return -1;
}

void mn_take_f32(const float *x, int64_t rows, int64_t inner, const int64_t *picks, int64_t count, int64_t batch,
                 float *y) {
    for (int64_t b = 0; b < batch; b++) {
        const float *xb = x + b * rows * inner;
        if (inner == 1) {  // single values (DLRM's interaction triangle): a plain indexed load each
            for (int64_t i = 0; i < count; i++) y[i] = xb[picks[i]];
        } else {
            for (int64_t i = 0; i < count; i++) memcpy(y + i * inner, xb + picks[i] * inner, (size_t)inner * sizeof(float));
        }
        y += count * inner;
    }
}

int64_t mn_gather_s8_rows(const int8_t *table, const float *scales, const int32_t *zero_points, int64_t rows,
                          int64_t dim, const void *ids, int32_t id_bytes, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) {
        int64_t r = load_id(ids, id_bytes, i);
        if (r < 0) r += rows;
        if (r < 0 || r >= rows) return i;
        // Only the looked-up row is dequantized: real = scale[r] * (q - zp[r]).
        const int8_t *q = table + r * dim;
        const float s = scales[r];
        const int32_t z = zero_points[r];
        float *out = y + i * dim;
        for (int64_t c = 0; c < dim; c++) out[c] = s * (float)((int32_t)q[c] - z);
    }
    return -1;
}

void mn_reduce_f32(int32_t kind, const float *x, float *y, int64_t outer, int64_t extent, int64_t inner) {
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = x + o * extent * inner;
        float *yo = y + o * inner;
        for (int64_t i = 0; i < inner; i++) {
            float acc = kind == 2 ? -INFINITY : (kind == 3 ? INFINITY : 0.f);
            for (int64_t e = 0; e < extent; e++) {
                const float v = xo[e * inner + i];
                switch (kind) {
                case 2: acc = v > acc ? v : acc; break;
                case 3: acc = v < acc ? v : acc; break;
                case 4: acc += v * v; break;
                default: acc += v; break;
                }
            }
            if (kind == 1) acc /= (float)extent;
            if (kind == 4) acc = sqrtf(acc);
            yo[i] = acc;
        }
    }
}

void mn_gemm_f32_ref(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans, const float *bias,
                     float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate) {
    for (int64_t m = 0; m < M; m++) {
        const float *ar = a + m * lda;
        float *cr = c + m * ldc;
        if (!accumulate) for (int64_t n = 0; n < N; n++) cr[n] = bias ? bias[n] : 0.f;
        if (b_trans) {
            for (int64_t n = 0; n < N; n++) {
                const float *br = b + n * ldb;
                float s = 0.f;
                for (int64_t k = 0; k < K; k++) s += ar[k] * br[k];
                cr[n] += s;
            }
        } else {
            // i-k-j order: the inner loop streams a row of B and vectorizes.
            for (int64_t k = 0; k < K; k++) {
                const float av = ar[k];
                const float *br = b + k * ldb;
                for (int64_t n = 0; n < N; n++) cr[n] += av * br[n];
            }
        }
    }
}

// One row of mn_layer_norm_f32 over v(i) = x[i] (+ x2[i]: the residual Add's sum, rounded as
// mn_binary_f32 rounds it and recomputed in each pass rather than stored).
static inline __attribute__((always_inline)) void layer_norm_row(const float *xr, const float *x2r, const float *gamma,
                                                                 const float *beta, float *yr, int64_t dim, float eps) {
#define LN_V(i) (x2r ? xr[i] + x2r[i] : xr[i])
    // Two passes (mean, then centred variance): stable where E[x^2] - E[x]^2 is not. Each
    // sums in eight interleaved lanes (vectorized, and the same order on every CPU).
    float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, q[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++) s[j] += LN_V(i + j);
    for (; i < dim; i++) s[i & 7] += LN_V(i);
    const float mean = (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) / (float)dim;
    for (i = 0; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++) { const float c = LN_V(i + j) - mean; q[j] += c * c; }
    for (; i < dim; i++) { const float c = LN_V(i) - mean; q[i & 7] += c * c; }
    const float var = (((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]))) / (float)dim;
    const float inv = 1.f / sqrtf(var + eps);
    if (beta) {
        for (i = 0; i < dim; i++) yr[i] = (LN_V(i) - mean) * inv * gamma[i] + beta[i];
    } else {
        for (i = 0; i < dim; i++) yr[i] = (LN_V(i) - mean) * inv * gamma[i];
    }
#undef LN_V
}

void mn_layer_norm_f32(const float *x, const float *x2, const float *gamma, const float *beta, float *y, int64_t rows,
                       int64_t dim, float eps) {
    // Specialized with and without the residual, so neither loop tests x2 per element.
    if (x2) {
        for (int64_t r = 0; r < rows; r++) layer_norm_row(x + r * dim, x2 + r * dim, gamma, beta, y + r * dim, dim, eps);
    } else {
        for (int64_t r = 0; r < rows; r++) layer_norm_row(x + r * dim, NULL, gamma, beta, y + r * dim, dim, eps);
    }
}

// 4-D broadcast walk shared by the comparison, logic and where kernels (as mn_binary_f32).
// Broadcast walks: the three outer dimensions pick a row per operand; the innermost row runs in a
// loop specialized for the strides that occur (1: contiguous, 0: one broadcast value), so the
// compiler vectorizes the common cases (the attention mask's Equal/Not/Where run over every score).
#define MN_ROWS4(d, ...)                                                    \
    int64_t o = 0;                                                          \
    for (int64_t i0 = 0; i0 < d[0]; i0++)                                   \
    for (int64_t i1 = 0; i1 < d[1]; i1++)                                   \
    for (int64_t i2 = 0; i2 < d[2]; i2++) { __VA_ARGS__; o += d[3]; }

#define MN_ROW(s) (i0 * s[0] + i1 * s[1] + i2 * s[2])

// BODY reads operand k at index i * stride: ia, ib (and ic) are the row offsets.
#define MN_INNER2(n, sa, sb, BODY)                                                                            \
    if (sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ia = i, ib = i; BODY; } }       \
    else if (sa == 1 && sb == 0) { for (int64_t i = 0; i < n; i++) { const int64_t ia = i, ib = 0; BODY; } }  \
    else if (sa == 0 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ia = 0, ib = i; BODY; } }  \
    else { for (int64_t i = 0; i < n; i++) { const int64_t ia = i * sa, ib = i * sb; BODY; } }

#define MN_INNER3(n, sc, sa, sb, BODY)                                                                         \
    if (sc == 1 && sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ic = i, ia = i, ib = i; BODY; } } \
    else if (sc == 1 && sa == 0 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ic = i, ia = 0, ib = i; BODY; } } \
    else if (sc == 1 && sa == 1 && sb == 0) { for (int64_t i = 0; i < n; i++) { const int64_t ic = i, ia = i, ib = 0; BODY; } } \
    else if (sc == 0 && sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ic = 0, ia = i, ib = i; BODY; } } \
    else { for (int64_t i = 0; i < n; i++) { const int64_t ic = i * sc, ia = i * sa, ib = i * sb; BODY; } }

#define MN_COMPARE(T, OP)                                                                                     \
    {                                                                                                         \
        const T *p = a, *q = b;                                                                               \
        MN_ROWS4(d, {                                                                                         \
            const T *pa = p + MN_ROW(as), *pb = q + MN_ROW(bs);                                               \
            uint8_t *yr = y + o;                                                                              \
            MN_INNER2(d[3], as[3], bs[3], yr[i] = (uint8_t)(pa[ia] OP pb[ib]))                                \
        })                                                                                                    \
    }

void mn_compare(int32_t op, int32_t is_int64, const void *a, const int64_t as[4], const void *b,
                const int64_t bs[4], uint8_t *y, const int64_t d[4]) {
    if (is_int64) {
        switch (op) {
        case 0: MN_COMPARE(int64_t, ==) break;
        case 1: MN_COMPARE(int64_t, <) break;
        default: MN_COMPARE(int64_t, >) break;
        }
    } else {
        switch (op) {
        case 0: MN_COMPARE(float, ==) break;
        case 1: MN_COMPARE(float, <) break;
        default: MN_COMPARE(float, >) break;
        }
    }
}
#undef MN_COMPARE

void mn_logic_u8(int32_t op, const uint8_t *a, const int64_t as[4], const uint8_t *b, const int64_t bs[4],
                 uint8_t *y, const int64_t d[4]) {
    MN_ROWS4(d, {
        const uint8_t *pa = a + MN_ROW(as), *pb = b + MN_ROW(bs);
        uint8_t *yr = y + o;
        if (op == 0) { MN_INNER2(d[3], as[3], bs[3], yr[i] = (uint8_t)((pa[ia] != 0) & (pb[ib] != 0))) }
        else { MN_INNER2(d[3], as[3], bs[3], yr[i] = (uint8_t)((pa[ia] != 0) | (pb[ib] != 0))) }
    })
}

#define MN_WHERE(T)                                                                                           \
    {                                                                                                         \
        const T *p = a, *q = b;                                                                               \
        T *out = y;                                                                                           \
        MN_ROWS4(d, {                                                                                         \
            const uint8_t *pc = c + MN_ROW(cs);                                                               \
            const T *pa = p + MN_ROW(as), *pb = q + MN_ROW(bs);                                               \
            T *yr = out + o;                                                                                  \
            MN_INNER3(d[3], cs[3], as[3], bs[3], yr[i] = pc[ic] ? pa[ia] : pb[ib])                            \
        })                                                                                                    \
    }

void mn_where(int32_t elem, const uint8_t *c, const int64_t cs[4], const void *a, const int64_t as[4],
              const void *b, const int64_t bs[4], void *y, const int64_t d[4]) {
    switch (elem) {
    case 1: MN_WHERE(uint8_t) break;
    case 4: MN_WHERE(uint32_t) break;  // float32 and int32 by their bits
    case 8: MN_WHERE(uint64_t) break;
    default: {
        char *out = y;
        const char *p = a, *q = b;
        MN_ROWS4(d, {
            for (int64_t i = 0; i < d[3]; i++) {
                const char *src = c[MN_ROW(cs) + i * cs[3]] ? p + (MN_ROW(as) + i * as[3]) * elem : q + (MN_ROW(bs) + i * bs[3]) * elem;
                memcpy(out + (o + i) * elem, src, (size_t)elem);
            }
        })
    }
    }
}
#undef MN_WHERE

void mn_cast(int32_t from, int32_t to, const void *x, void *y, int64_t n) {
    // dtype codes as in formats/minnow.fbs: 0 float32, 3 int32, 4 int64, 5 bool.
    for (int64_t i = 0; i < n; i++) {
        double v;
        switch (from) {
        case 0: v = ((const float *)x)[i]; break;
        case 3: v = ((const int32_t *)x)[i]; break;
        case 4: v = (double)((const int64_t *)x)[i]; break;
        default: v = ((const uint8_t *)x)[i] != 0; break;
        }
        switch (to) {
        case 0: ((float *)y)[i] = from == 4 ? (float)((const int64_t *)x)[i] : (float)v; break;
        case 3: ((int32_t *)y)[i] = isnan(v) ? 0 : (v >= 2147483647.0 ? INT32_MAX : (v <= -2147483648.0 ? INT32_MIN : (int32_t)v)); break;
        case 4:
            if (from == 4) { ((int64_t *)y)[i] = ((const int64_t *)x)[i]; break; }
            // float to int truncates toward zero; out-of-range and NaN saturate rather than trap.
            ((int64_t *)y)[i] = isnan(v) ? 0 : (v >= 9.2233720368547758e18 ? INT64_MAX : (v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v));
            break;
        default:
            ((uint8_t *)y)[i] = from == 4 ? ((const int64_t *)x)[i] != 0 : v != 0;
            break;
        }
    }
}

// One im2col body per element type, column by column: for each tap (c, kh, kw) the output
// pixels that read inside the image form one range of ow, computed once, so the inner loop is a
// plain strided copy (typed stores; a memcpy call per tap was half the time of a small CNN).
#define IM2COL_BODY(T, PAD)                                                                                   \
    for (int64_t b = 0; b < batch; b++) {                                                                     \
        const T *xs = (const T *)x + b * C * H * W;                                                           \
        T *ys = (T *)y + b * OH * OW * K;                                                                     \
        for (int64_t c = 0; c < C; c++)                                                                       \
        for (int64_t kh = 0; kh < KH; kh++)                                                                   \
        for (int64_t kw = 0; kw < KW; kw++) {                                                                 \
            const int64_t col = (c * KH + kh) * KW + kw, iw0 = kw * dw - pl;                                  \
            /* ow in [lo, hi) reads column ow * sw + iw0 inside [0, W). */                                    \
            int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;                                                 \
            int64_t hi = W - 1 - iw0 < 0 ? 0 : (W - 1 - iw0) / sw + 1;                                        \
            hi = hi < OW ? hi : OW;                                                                           \
            lo = lo < hi ? lo : hi;                                                                           \
            for (int64_t oh = 0; oh < OH; oh++) {                                                             \
                const int64_t ih = oh * sh - pt + kh * dh;                                                    \
                T *dst = ys + oh * OW * K + col;                                                              \
                if (ih < 0 || ih >= H) { for (int64_t ow = 0; ow < OW; ow++) dst[ow * K] = (PAD); continue; } \
                const T *src = xs + (c * H + ih) * W + iw0;                                                   \
                for (int64_t ow = 0; ow < lo; ow++) dst[ow * K] = (PAD);                                      \
                for (int64_t ow = lo; ow < hi; ow++) dst[ow * K] = src[ow * sw];                              \
                for (int64_t ow = hi; ow < OW; ow++) dst[ow * K] = (PAD);                                     \
            }                                                                                                 \
        }                                                                                                     \
    }

// Channels-last patches: a sample is [H, W, C] and a patch row is (kh, kw, c), so each tap is C
// contiguous elements, and with dilation 1 the KW taps of one kernel row are one run of KW*C.
//
// One output row (b, oh) at a time, pixel by pixel, so y is written strictly in address order.
// That lets a run move as whole 32-byte blocks: the bytes a block writes past the run's end
// belong to the next run or pixel, which is written after it. Blocks are used where the caller
// checked that NHWC_SLACK bytes past every read and write stay inside x and y (all rows but the
// last few of a batch); otherwise memcpy/memset. The image rows each kernel row reads are
// resolved once per output row, so the pixel loop only copies.

#define NHWC_SLACK 32  // bytes a block move may read or write past a run

// A fixed-size move: the compiler turns it into two 16-byte loads and stores.
typedef struct { uint64_t w[4]; } block32;
static inline void copy_block32(char *d, const char *s) { block32 v; memcpy(&v, s, sizeof v); memcpy(d, &v, sizeof v); }

typedef struct {
    int64_t W, KH, KW, OW, sw, pl, dw;
    int64_t interiorLo, interiorHi;  // output columns whose taps all lie inside the width (dilation 1)
    size_t tap, run;
    uint64_t pad;  // the pad byte in every byte of a word
} nhwc_geometry;

#define NHWC_ROW(NAME, COPY, FILL)                                                                                     \
    __attribute__((noinline)) static char *NAME(const nhwc_geometry *g, const char *const *src, char *dst) {           \
        const size_t tap = g->tap, run = g->run;                                                                       \
        const block32 pad32 = {{g->pad, g->pad, g->pad, g->pad}};                                                      \
        (void)pad32;                                                                                                   \
        for (int64_t ow = 0; ow < g->OW; ow++) {                                                                       \
            if (ow == g->interiorLo) {                                                                                 \
                /* Every tap of these pixels lies inside the width: one run per kernel row. */                         \
                for (; ow < g->interiorHi; ow++) {                                                                     \
                    const size_t off = (size_t)(ow * g->sw - g->pl) * tap;                                             \
                    for (int64_t kh = 0; kh < g->KH; kh++, dst += run) {                                               \
                        if (src[kh]) COPY(dst, src[kh] + off, run); else FILL(dst, run);                               \
                    }                                                                                                  \
                }                                                                                                      \
                if (ow == g->OW) break;                                                                                \
            }                                                                                                          \
            const int64_t iw0 = ow * g->sw - g->pl;                                                                    \
            if (g->dw == 1) {                                                                                          \
                /* A border pixel: taps [a, b) of each kernel row lie inside the width, padding either side. */        \
                const int64_t a = iw0 < 0 ? (-iw0 < g->KW ? -iw0 : g->KW) : 0;                                         \
                const int64_t b = g->W - iw0 < g->KW ? (g->W - iw0 > a ? g->W - iw0 : a) : g->KW;                      \
                const size_t left = (size_t)a * tap, mid = (size_t)(b - a) * tap, right = run - left - mid;           \
                for (int64_t kh = 0; kh < g->KH; kh++, dst += run) {                                                   \
                    if (!src[kh]) { FILL(dst, run); continue; }                                                        \
                    if (left) FILL(dst, left);                                                                         \
                    if (mid) COPY(dst + left, src[kh] + (size_t)(iw0 + a) * tap, mid);                                 \
                    if (right) FILL(dst + left + mid, right);                                                          \
                }                                                                                                      \
                continue;                                                                                              \
            }                                                                                                          \
            for (int64_t kh = 0; kh < g->KH; kh++)                                                                     \
            for (int64_t kw = 0; kw < g->KW; kw++, dst += tap) {                                                       \
                const int64_t iw = iw0 + kw * g->dw;                                                                   \
                if (src[kh] && iw >= 0 && iw < g->W) COPY(dst, src[kh] + (size_t)iw * tap, tap); else FILL(dst, tap);   \
            }                                                                                                          \
        }                                                                                                              \
        return dst;                                                                                                    \
    }
#define WORD_COPY(d, s, n)                                                                          \
    do {                                                                                             \
        copy_block32((d), (s));                                                                      \
        for (size_t i_ = 32; i_ < (n); i_ += 32) copy_block32((d) + i_, (s) + i_);                   \
    } while (0)
#define WORD_FILL(d, n)                                                                              \
    do {                                                                                             \
        memcpy((d), &pad32, 32);                                                                     \
        for (size_t i_ = 32; i_ < (n); i_ += 32) memcpy((d) + i_, &pad32, 32);                        \
    } while (0)
#define EXACT_COPY(d, s, n) memcpy((d), (s), (n))
#define EXACT_FILL(d, n) memset((d), (uint8_t)g->pad, (n))
NHWC_ROW(nhwc_row_words, WORD_COPY, WORD_FILL)
NHWC_ROW(nhwc_row_exact, EXACT_COPY, EXACT_FILL)
#undef NHWC_ROW
#undef WORD_COPY
#undef WORD_FILL
#undef EXACT_COPY
#undef EXACT_FILL

/// Channels-last im2col; the loader refuses kernels taller than MN_IM2COL_NHWC_MAX_KH (mn_im2col's header).
static void im2col_nhwc(const char *x, char *y, size_t elem, const int64_t p[14], int64_t batch, int8_t pad_value) {
    const int64_t C = p[0], H = p[1], W = p[2], KH = p[3], KW = p[4], OH = p[5], OW = p[6];
    const int64_t sh = p[7], sw = p[8], pt = p[9], pl = p[10], dh = p[11], dw = p[12];
    int64_t lo = 0, hi = 0;
    if (dw == 1) {
        while (lo < OW && lo * sw - pl < 0) lo++;
        hi = OW;
        while (hi > lo && (hi - 1) * sw - pl + KW > W) hi--;
    }
    // Float padding is +0.0: all bytes 0.
    const nhwc_geometry g = {W, KH, KW, OW, sw, pl, dw, lo, hi, (size_t)C * elem, (size_t)(KW * C) * elem,
                             0x0101010101010101ull * (elem == 1 ? (uint8_t)pad_value : 0)};
    const size_t sample = (size_t)(H * W) * g.tap, imageRow = (size_t)W * g.tap, outRow = (size_t)(OW * KH) * g.run;
    const char *xEnd = x + (size_t)batch * sample;
    char *dst = y, *yEnd = y + (size_t)(batch * OH) * outRow;
    const char *src[MN_IM2COL_NHWC_MAX_KH];
    for (int64_t b = 0; b < batch; b++)
    for (int64_t oh = 0; oh < OH; oh++) {
        const char *readEnd = x;
        for (int64_t kh = 0; kh < KH; kh++) {
            const int64_t ih = oh * sh - pt + kh * dh;
            src[kh] = ih >= 0 && ih < H ? x + (size_t)b * sample + (size_t)ih * imageRow : NULL;
            if (src[kh] && src[kh] + imageRow > readEnd) readEnd = src[kh] + imageRow;
        }
        const int words = readEnd + NHWC_SLACK <= xEnd && dst + outRow + NHWC_SLACK <= yEnd;
        dst = words ? nhwc_row_words(&g, src, dst) : nhwc_row_exact(&g, src, dst);
    }
}

void mn_im2col(const void *x, void *y, int32_t elem, const int64_t p[14], int64_t batch, int8_t pad_value) {
    if (p[13] == 1) { im2col_nhwc(x, y, (size_t)elem, p, batch, pad_value); return; }
    const int64_t C = p[0], H = p[1], W = p[2], KH = p[3], KW = p[4], OH = p[5], OW = p[6];
    const int64_t sh = p[7], sw = p[8], pt = p[9], pl = p[10], dh = p[11], dw = p[12];
    const int64_t K = C * KH * KW;
    if (elem == 1) {
        IM2COL_BODY(int8_t, pad_value)
    } else if (elem == 4) {
        IM2COL_BODY(uint32_t, 0u)  // float32 bits: padding is +0.0
    } else {
        for (int64_t b = 0; b < batch; b++) {
            const char *xs = (const char *)x + b * C * H * W * elem;
            char *ys = (char *)y + b * OH * OW * K * elem;
            for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                char *row = ys + (oh * OW + ow) * K * elem;
                for (int64_t c = 0; c < C; c++)
                for (int64_t kh = 0; kh < KH; kh++) {
                    const int64_t ih = oh * sh - pt + kh * dh;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const int64_t iw = ow * sw - pl + kw * dw;
                        char *dst = row + ((c * KH + kh) * KW + kw) * elem;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) memset(dst, 0, (size_t)elem);
                        else memcpy(dst, xs + ((c * H + ih) * W + iw) * elem, (size_t)elem);
                    }
                }
            }
        }
    }
}
#undef IM2COL_BODY

// Pooling over `images` channels-last images [H, W, C]: each output pixel folds its window's
// C-vectors. The window is clipped to the image once per pixel (padding never wins a max and is
// not summed), and channels go in blocks of PB held in a local array, so the fold over the window
// is whole vector registers with no aliasing checks. An NCHW tensor is batch * C one-channel
// images, so both layouts share this body. `n` is the number of taps inside the image.
#define POOL_NHWC_BODY(T, PB, INIT, FOLD, TAIL)                                                      \
    for (int64_t b = 0; b < images; b++)                                                             \
    for (int64_t oh = 0; oh < OH; oh++)                                                              \
    for (int64_t ow = 0; ow < OW; ow++) {                                                            \
        const int64_t h0 = oh * sh - pt, w0 = ow * sw - pl;                                          \
        const int64_t kh0 = h0 < 0 ? -h0 : 0, kh1 = H - h0 < KH ? H - h0 : KH;                       \
        const int64_t kw0 = w0 < 0 ? -w0 : 0, kw1 = W - w0 < KW ? W - w0 : KW;                       \
        const int64_t n = kh1 > kh0 && kw1 > kw0 ? (kh1 - kh0) * (kw1 - kw0) : 0;                   \
        T *out = y + ((b * OH + oh) * OW + ow) * C;                                                  \
        for (int64_t c0 = 0; c0 < C; c0 += PB) {                                                     \
            const int64_t cb = C - c0 < PB ? C - c0 : PB;                                            \
            T acc[PB];                                                                               \
            for (int c = 0; c < PB; c++) acc[c] = (INIT);                                            \
            for (int64_t kh = kh0; kh < kh1; kh++)                                                   \
            for (int64_t kw = kw0; kw < kw1; kw++) {                                                 \
                const T *v = x + ((b * H + h0 + kh) * W + w0 + kw) * C + c0;                         \
                if (cb == PB) { for (int c = 0; c < PB; c++) FOLD; }                                 \
                else { for (int c = 0; c < cb; c++) FOLD; }                                          \
            }                                                                                        \
            (void)n;                                                                                 \
            TAIL                                                                                     \
            memcpy(out + c0, acc, (size_t)cb * sizeof(T));                                           \
        }                                                                                            \
    }

void mn_pool_f32(const float *x, float *y, const int64_t p[14], int64_t batch) {
    const int64_t kind = p[0], H = p[2], W = p[3], KH = p[4], KW = p[5], OH = p[6], OW = p[7];
    const int64_t sh = p[8], sw = p[9], pt = p[10], pl = p[11], include_pad = p[12];
    const int64_t C = p[13] == 1 ? p[1] : 1, images = p[13] == 1 ? batch : batch * p[1];
    if (kind == 0) {
        POOL_NHWC_BODY(float, 8, -INFINITY, acc[c] = v[c] > acc[c] ? v[c] : acc[c], )
    } else {
        POOL_NHWC_BODY(float, 8, 0.f, acc[c] += v[c],
                       const float d = (float)(include_pad ? KH * KW : (n > 0 ? n : 1));
                       for (int c = 0; c < cb; c++) acc[c] /= d;)
    }
}

// Max pooling of int8 values: max commutes with the (monotone) quantization, so the result keeps
// the input's scale and zero point and equals quantize(max of the dequantized window) exactly.
void mn_pool_max_s8(const int8_t *x, int8_t *y, const int64_t p[14], int64_t batch) {
    const int64_t H = p[2], W = p[3], KH = p[4], KW = p[5], OH = p[6], OW = p[7];
    const int64_t sh = p[8], sw = p[9], pt = p[10], pl = p[11];
    const int64_t C = p[13] == 1 ? p[1] : 1, images = p[13] == 1 ? batch : batch * p[1];
#if defined(__clang__)
    if (C % 16 == 0) {
        // Channels in whole 16-byte vectors (clang's portable vector extension: one pmaxsb, or
        // its SSE2 equivalent, per tap and block).
        typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
        for (int64_t b = 0; b < images; b++)
        for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            const int64_t h0 = oh * sh - pt, w0 = ow * sw - pl;
            const int64_t kh0 = h0 < 0 ? -h0 : 0, kh1 = H - h0 < KH ? H - h0 : KH;
            const int64_t kw0 = w0 < 0 ? -w0 : 0, kw1 = W - w0 < KW ? W - w0 : KW;
            int8_t *out = y + ((b * OH + oh) * OW + ow) * C;
            for (int64_t c0 = 0; c0 < C; c0 += 16) {
                i8x16 acc = (i8x16)(INT8_MIN), v;
                for (int64_t kh = kh0; kh < kh1; kh++)
                    for (int64_t kw = kw0; kw < kw1; kw++) {
                        memcpy(&v, x + ((b * H + h0 + kh) * W + w0 + kw) * C + c0, 16);
                        acc = __builtin_elementwise_max(acc, v);
                    }
                memcpy(out + c0, &acc, 16);
            }
        }
        return;
    }
#endif
    POOL_NHWC_BODY(int8_t, 16, INT8_MIN, acc[c] = v[c] > acc[c] ? v[c] : acc[c], )
}
#undef POOL_NHWC_BODY
