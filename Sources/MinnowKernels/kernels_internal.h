// Scalar pieces shared by every kernel table, so SIMD paths round exactly like the reference.
#ifndef MINNOW_KERNELS_INTERNAL_H
#define MINNOW_KERNELS_INTERNAL_H
#include "minnow_kernels.h"
#include <math.h>

static inline float apply_act(float v, mn_activation act) {
    switch (act.kind) {
    case 1: return v > 0.f ? v : 0.f;
    case 2: return v < act.lo ? act.lo : (v > act.hi ? act.hi : v);
    case 3: return v >= 0.f ? v : v * act.alpha;
    default: return v;
    }
}

static inline int8_t requantize(int32_t acc, int32_t mult, int32_t shift, int32_t zp, int32_t qmin, int32_t qmax) {
    int32_t v = zp + mn_multiply_by_quantized_multiplier(acc, mult, shift);
    v = v < qmin ? qmin : (v > qmax ? qmax : v);
    return (int8_t)v;
}

/// Per-row asymmetric int8 quantization for dynamic mode; returns the scale, writes the zero point.
static inline float quantize_row(const float *x, int8_t *q, int32_t K, int32_t *zp_out) {
    float lo = 0.f, hi = 0.f;  // the range always contains 0, so 0 is exact
    for (int32_t k = 0; k < K; k++) { lo = x[k] < lo ? x[k] : lo; hi = x[k] > hi ? x[k] : hi; }
    float scale = (hi - lo) / 255.f;
    if (!(scale > 0.f) || !isfinite(scale)) scale = 1.f;
    int32_t zp = (int32_t)nearbyintf(-128.f - lo / scale);
    zp = zp < -128 ? -128 : (zp > 127 ? 127 : zp);
    for (int32_t k = 0; k < K; k++) {
        const float v = nearbyintf(x[k] / scale) + (float)zp;
        q[k] = (int8_t)(v >= 127.f ? 127 : (v >= -128.f ? (int32_t)v : -128));
    }
    *zp_out = zp;
    return scale;
}

static inline float dynamic_epilogue(int32_t dot, int32_t zp, int32_t wsum, float s, float wscale, float bias,
                                     mn_activation act) {
    const int32_t acc = dot - zp * wsum;
    return apply_act((float)acc * (s * wscale) + bias, act);
}

#if defined(__x86_64__)
// float_x86.c: AVX2 + FMA float kernels shared by the AVX2 and AVX-512 tables.
void mn_gemm_f32_avx2(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans, const float *bias,
                      float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate);
void mn_unary_f32_avx2(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);
void mn_softmax_f32_avx2(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);
void mn_lstm_cell_f32_avx2(float *g, const float *c_prev, float *h, int64_t H);
#endif
#endif
