// fp32 element-wise, row and (de)quantization kernels (portable).
#include "minnow_kernels.h"
#include <math.h>

// The innermost row, specialized for the strides that occur (1: contiguous, 0: a broadcast
// value) so the compiler vectorizes them; BODY reads ap[ia] and bp[ib].
#define BINARY_ROW(BODY)                                                                                     \
    if (sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ia = i, ib = i; BODY; } }      \
    else if (sa == 1 && sb == 0) { for (int64_t i = 0; i < n; i++) { const int64_t ia = i, ib = 0; BODY; } } \
    else if (sa == 0 && sb == 1) { for (int64_t i = 0; i < n; i++) { const int64_t ia = 0, ib = i; BODY; } } \
    else { for (int64_t i = 0; i < n; i++) { const int64_t ia = i * sa, ib = i * sb; BODY; } }

void mn_binary_f32(int32_t op, const float *a, const int64_t as[4], const float *b,
                   const int64_t bs[4], float *y, const int64_t d[4]) {
    int64_t o = 0;
    for (int64_t i0 = 0; i0 < d[0]; i0++)
    for (int64_t i1 = 0; i1 < d[1]; i1++)
    for (int64_t i2 = 0; i2 < d[2]; i2++) {
        const float *ap = a + i0 * as[0] + i1 * as[1] + i2 * as[2];
        const float *bp = b + i0 * bs[0] + i1 * bs[1] + i2 * bs[2];
        const int64_t sa = as[3], sb = bs[3], n = d[3];
        float *yr = y + o;
        switch (op) {
        case 0: BINARY_ROW(yr[i] = ap[ia] + bp[ib]) break;
        case 1: BINARY_ROW(yr[i] = ap[ia] - bp[ib]) break;
        case 2: BINARY_ROW(yr[i] = ap[ia] * bp[ib]) break;
        case 3: BINARY_ROW(yr[i] = ap[ia] / bp[ib]) break;
        case 4: for (int64_t i = 0; i < n; i++) y[o + i] = powf(ap[i * sa], bp[i * sb]); break;
        // fmaxf/fminf would drop a NaN; ONNX Max/Min propagate it, as these comparisons do.
        case 5: for (int64_t i = 0; i < n; i++) { const float u = ap[i * sa], v = bp[i * sb]; y[o + i] = (u >= v || u != u) ? u : v; } break;
        default: for (int64_t i = 0; i < n; i++) { const float u = ap[i * sa], v = bp[i * sb]; y[o + i] = (u <= v || u != u) ? u : v; } break;
        }
        o += n;
    }
}

void mn_unary_f32(int32_t op, const float *x, float *y, int64_t n, float p0, float p1) {
    switch (op) {
    case 0: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f; break;
    case 1: for (int64_t i = 0; i < n; i++) y[i] = x[i] >= 0.f ? x[i] : x[i] * p0; break;
    case 2:
        for (int64_t i = 0; i < n; i++) {
            // Stable in both tails: never exponentiate a large positive number.
            const float v = x[i];
            if (v >= 0.f) { y[i] = 1.f / (1.f + expf(-v)); }
            else { const float e = expf(v); y[i] = e / (1.f + e); }
        }
        break;
    case 3: for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]); break;
    case 5: for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]); break;
    case 6: for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]); break;
    case 7: for (int64_t i = 0; i < n; i++) y[i] = erff(x[i]); break;
    case 8: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case 9: for (int64_t i = 0; i < n; i++) y[i] = 1.f / x[i]; break;
    case 10:  // GELU, erf form: x * Phi(x)
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.f + erff(x[i] * 0.70710678118654752f));
        break;
    case 11:  // GELU, tanh approximation
        for (int64_t i = 0; i < n; i++) {
            const float v = x[i];
            y[i] = 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
    case 4:
        for (int64_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v < p0 ? p0 : (v > p1 ? p1 : v); }
        break;
    }
}

void mn_softmax_f32(const float *x, float *y, int64_t rows, int64_t cols, int32_t log) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = -INFINITY;
        for (int64_t c = 0; c < cols; c++) mx = xr[c] > mx ? xr[c] : mx;
        float sum = 0.f;
        if (log) {
            for (int64_t c = 0; c < cols; c++) sum += expf(xr[c] - mx);
            const float lse = logf(sum);
            for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] - mx - lse;
        } else {
            // One exp per element: keep them in y, then normalize (x and y may not alias).
            for (int64_t c = 0; c < cols; c++) { yr[c] = expf(xr[c] - mx); sum += yr[c]; }
            const float inv = 1.f / sum;
            for (int64_t c = 0; c < cols; c++) yr[c] *= inv;
        }
    }
}

void mn_softmax_masked_f32(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows, int64_t cols,
                           int32_t scale_op, float scale) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *m = mask + r * mask_row_stride;
        float *yr = y + r * cols;
        switch (scale_op) {
        case 2: for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] * scale + m[c]; break;
        case 3: for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] / scale + m[c]; break;
        default: for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] + m[c]; break;
        }
        mn_softmax_f32(yr, yr, 1, cols, 0);
    }
}

void mn_quantize_s8(const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    for (int64_t i = 0; i < n; i++) {
        // nearbyintf rounds half to even, as ONNX QuantizeLinear and SIMD cvtps do.
        const float r = nearbyintf(x[i] / scale);
        const float v = r + (float)zp;
        // NaN fails both comparisons and lands on -128 rather than in undefined behaviour.
        q[i] = (int8_t)(v >= 127.f ? 127 : (v >= -128.f ? (int32_t)v : -128));
    }
}

void mn_dequantize_s8(const int8_t *q, float *x, int64_t n, float scale, int32_t zp) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)((int32_t)q[i] - zp) * scale;
}

void mn_not_u8(const uint8_t *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] == 0;
}
