// Portable reference dense (fully connected) kernels. Every SIMD path is tested against these.
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

static void dense_f32_ref(const float *x, const float *w, const float *bias, float *y,
                          int32_t M, int32_t K, int32_t N, mn_activation act) {
    for (int32_t m = 0; m < M; m++) {
        const float *xr = x + (int64_t)m * K;
        for (int32_t n = 0; n < N; n++) {
            const float *wr = w + (int64_t)n * K;
            float acc = 0.f;
            for (int32_t k = 0; k < K; k++) acc += xr[k] * wr[k];
            if (bias) acc += bias[n];
            y[(int64_t)m * N + n] = apply_act(acc, act);
        }
    }
}

static inline int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t K) {
    int32_t acc = 0;
    for (int32_t k = 0; k < K; k++) acc += (int32_t)a[k] * (int32_t)b[k];
    return acc;
}

static void dense_s8_ref(const int8_t *x, const int8_t *w, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift, int32_t out_zp,
                         int32_t qmin, int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N) {
    for (int32_t m = 0; m < M; m++) {
        const int8_t *xr = x + (int64_t)m * K;
        for (int32_t n = 0; n < N; n++) {
            const int32_t acc = bias[n] + dot_s8(xr, w + (int64_t)n * K, K);
            int32_t v = out_zp + mn_multiply_by_quantized_multiplier(acc, mult[n], shift[n]);
            v = v < qmin ? qmin : (v > qmax ? qmax : v);
            y[(int64_t)m * N + n] = (int8_t)v;
        }
    }
}

static void dense_s8_f32_ref(const int8_t *x, const int8_t *w, const int32_t *bias,
                             const float *scale, float *y, int32_t M, int32_t K, int32_t N,
                             mn_activation act) {
    for (int32_t m = 0; m < M; m++) {
        const int8_t *xr = x + (int64_t)m * K;
        for (int32_t n = 0; n < N; n++) {
            const int32_t acc = bias[n] + dot_s8(xr, w + (int64_t)n * K, K);
            y[(int64_t)m * N + n] = apply_act((float)acc * scale[n], act);
        }
    }
}

/// Per-row asymmetric int8 quantization for dynamic mode; returns the scale, writes the zero point.
static float quantize_row(const float *x, int8_t *q, int32_t K, int32_t *zp_out) {
    float lo = 0.f, hi = 0.f;  // the range always contains 0, so 0 is exact
    for (int32_t k = 0; k < K; k++) { lo = x[k] < lo ? x[k] : lo; hi = x[k] > hi ? x[k] : hi; }
    float scale = (hi - lo) / 255.f;
    if (!(scale > 0.f) || !isfinite(scale)) scale = 1.f;
    int32_t zp = (int32_t)nearbyintf(-128.f - lo / scale);
    zp = zp < -128 ? -128 : (zp > 127 ? 127 : zp);
    for (int32_t k = 0; k < K; k++) {
        int32_t v = (int32_t)nearbyintf(x[k] / scale) + zp;
        q[k] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
    *zp_out = zp;
    return scale;
}

static void dense_dyn_ref(const float *x, const int8_t *w, const int32_t *wsum, const float *wscale,
                          const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                          mn_activation act) {
    for (int32_t m = 0; m < M; m++) {
        int32_t zp = 0;
        const float s = quantize_row(x + (int64_t)m * K, xq, K, &zp);
        for (int32_t n = 0; n < N; n++) {
            const int32_t acc = dot_s8(xq, w + (int64_t)n * K, K) - zp * wsum[n];
            float v = (float)acc * (s * wscale[n]);
            if (bias) v += bias[n];
            y[(int64_t)m * N + n] = apply_act(v, act);
        }
    }
}

static const mn_kernel_table reference_table = {
    .name = "reference",
    .dense_f32 = dense_f32_ref,
    .dense_s8 = dense_s8_ref,
    .dense_s8_f32 = dense_s8_f32_ref,
    .dense_dyn = dense_dyn_ref,
};

const mn_kernel_table *mn_reference_kernels(void) { return &reference_table; }
