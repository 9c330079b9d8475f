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

// Per-row asymmetric int8 quantization for dynamic mode, in two steps every table shares: the
// row's range (row_range), then its scale and zero point (row_params); each table then quantizes
// the row through its quantize_s8.

/// The range's rule: NaN ignored, 0 always inside. SIMD tables may find lo and hi with vector
/// min/max, which give the same two values.
static inline void row_range(const float *x, int32_t K, float *lo_out, float *hi_out) {
    float lo = 0.f, hi = 0.f;  // the range always contains 0, so 0 is exact
    for (int32_t k = 0; k < K; k++) { lo = x[k] < lo ? x[k] : lo; hi = x[k] > hi ? x[k] : hi; }
    *lo_out = lo;
    *hi_out = hi;
}

/// Scale and zero point of a row whose range is [lo, hi] (lo <= 0 <= hi).
static inline float row_params(float lo, float hi, int32_t *zp_out) {
    float scale = (hi - lo) / 255.f;
    if (!(scale > 0.f) || !isfinite(scale)) scale = 1.f;
    int32_t zp = (int32_t)nearbyintf(-128.f - lo / scale);
    zp = zp < -128 ? -128 : (zp > 127 ? 127 : zp);
    *zp_out = zp;
    return scale;
}

/// The reference's row quantization: row_range, row_params, then mn_quantize_s8.
static inline float quantize_row(const float *x, int8_t *q, int32_t K, int32_t *zp_out) {
    float lo, hi;
    row_range(x, K, &lo, &hi);
    const float scale = row_params(lo, hi, zp_out);
    mn_quantize_s8(x, q, K, scale, *zp_out);
    return scale;
}

static inline float dynamic_epilogue(int32_t dot, int32_t zp, int32_t wsum, float s, float wscale, float bias,
                                     mn_activation act) {
    const int32_t acc = dot - zp * wsum;
    return apply_act((float)acc * (s * wscale) + bias, act);
}

#endif
