// Fixed-point requantization, bit-compatible with TFLite's reference
// (QuantizeMultiplier / MultiplyByQuantizedMultiplier in tensorflow/lite/kernels/internal).
#include "minnow_kernels.h"
#include <math.h>

void mn_quantize_multiplier(double m, int32_t *multiplier, int32_t *shift) {
    if (m == 0.0) { *multiplier = 0; *shift = 0; return; }
    int s = 0;
    const double q = frexp(m, &s);  // m = q * 2^s, q in [0.5, 1)
    int64_t q_fixed = (int64_t)llround(q * (double)(1LL << 31));
    if (q_fixed == (1LL << 31)) { q_fixed /= 2; ++s; }
    if (s < -31) { s = 0; q_fixed = 0; }
    if (s > 30) { s = 30; q_fixed = (1LL << 31) - 1; }  // saturate absurd multipliers
    *multiplier = (int32_t)q_fixed;
    *shift = s;
}

static inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t rounding_divide_by_pot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t mn_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    // Saturate the left shift instead of overflowing (only reachable with multipliers >= 1).
    int64_t shifted = (int64_t)x * (1LL << left);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul((int32_t)shifted, multiplier), right);
}
