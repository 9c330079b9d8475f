// Minnow's inner loops. Everything here is plain C on raw pointers, called from Swift with
// shapes already validated at session creation: kernels never check, never allocate, never fail.
//
// This is the portable reference. SIMD versions (AVX2, AVX-512 VNNI) go beside it in their own
// files and are chosen once through `mn_kernels()` (see dispatch.c); integer paths must produce
// the same bytes as the reference on every CPU.
#ifndef MINNOW_KERNELS_H
#define MINNOW_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Fused activation; `kind` matches `Activation` in formats/minnow.fbs.
typedef struct {
    int32_t kind;  // 0 none, 1 relu, 2 clip [lo, hi], 3 leaky relu (alpha)
    float lo, hi, alpha;
} mn_activation;

/// Requantization of one output channel: real multiplier s_in*s_w/s_out as a Q31 fixed-point
/// multiplier and a power-of-two shift (TFLite's QuantizeMultiplier scheme).
void mn_quantize_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift);
int32_t mn_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/// y[m,n] = act(b[n] + sum_k x[m,k] * w[n,k]); w is [N, K] row-major, bias may be NULL.
typedef void (*mn_dense_f32_fn)(const float *x, const float *w, const float *bias, float *y,
                                int32_t M, int32_t K, int32_t N, mn_activation act);

/// Static int8: acc = bias[n] + sum_k x*w, where bias already holds b_q - zx * sum_k w[n,k]
/// (folded at load). y = clamp(zy + requant(acc, mult[n], shift[n]), qmin, qmax).
/// wsum[n] = sum_k w[n,k]: u8 x s8 paths (VNNI) shift x by 128 and subtract 128 * wsum[n].
typedef void (*mn_dense_s8_fn)(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                               const int32_t *mult, const int32_t *shift, int32_t out_zp,
                               int32_t qmin, int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N);

/// int8 in, fp32 out (the final layer of a static model): y = act(acc * scale[n]).
typedef void (*mn_dense_s8_f32_fn)(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                                   const float *scale, float *y, int32_t M, int32_t K, int32_t N,
                                   mn_activation act);

/// Dynamic: each fp32 row of x is quantized to int8 (asymmetric, its own min/max) into
/// `xq` (K bytes of scratch), then y = act(bias[n] + s_row * wscale[n] * (sum q*w - zp*wsum[n])).
typedef void (*mn_dense_dyn_fn)(const float *x, const int8_t *w, const int32_t *wsum,
                                const float *wscale, const float *bias, float *y, int8_t *xq,
                                int32_t M, int32_t K, int32_t N, mn_activation act);

/// The kernel table: one per ISA, chosen once by `mn_kernels()`.
/// When `pack_s8` is set, int8 weights [N, K] are repacked once at load into
/// `packed_s8_size(K, N)` bytes (64-byte aligned) and the int8 kernels receive the packed form.
typedef struct {
    const char *name;
    mn_dense_f32_fn dense_f32;
    mn_dense_s8_fn dense_s8;
    mn_dense_s8_f32_fn dense_s8_f32;
    mn_dense_dyn_fn dense_dyn;
    size_t (*packed_s8_size)(int32_t K, int32_t N);
    void (*pack_s8)(const int8_t *w, int8_t *packed, int32_t K, int32_t N);
    /// Same contract as mn_quantize_s8 (every table sets it).
    void (*quantize_s8)(const float *x, int8_t *q, int64_t n, float scale, int32_t zp);
    /// Same contract as mn_softmax_f32; SIMD versions use a polynomial exp (relative error ~2e-7).
    void (*softmax_f32)(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);
} mn_kernel_table;

/// The portable reference kernels (correct on any CPU).
const mn_kernel_table *mn_reference_kernels(void);
/// x86-64 tables, or NULL when this CPU (or build) lacks the instructions.
const mn_kernel_table *mn_avx2_kernels(void);
const mn_kernel_table *mn_avx512vnni_kernels(void);
/// The best kernels for this CPU, detected once. MINNOW_KERNELS=reference|avx2|avx512vnni
/// forces a table (falling back to the reference when the CPU lacks it).
const mn_kernel_table *mn_kernels(void);

// ---- Element-wise and row ops (fp32 unless stated) ----

/// Binary op over a 4-D iteration space with per-operand strides (0 broadcasts).
/// op: 0 add, 1 sub, 2 mul, 3 div.
void mn_binary_f32(int32_t op, const float *a, const int64_t a_strides[4], const float *b,
                   const int64_t b_strides[4], float *y, const int64_t dims[4]);

/// Unary op: 0 relu, 1 leaky relu (p0 = alpha), 2 sigmoid, 3 tanh, 4 clip [p0, p1].
void mn_unary_f32(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);

/// Softmax (or log-softmax when `log` != 0) over contiguous rows of length `cols`.
void mn_softmax_f32(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);

/// q = clamp(round_half_even(x / scale) + zp, -128, 127).
void mn_quantize_s8(const float *x, int8_t *q, int64_t n, float scale, int32_t zp);
/// x = (q - zp) * scale.
void mn_dequantize_s8(const int8_t *q, float *x, int64_t n, float scale, int32_t zp);

#ifdef __cplusplus
}
#endif
#endif

// The worker pool and row-parallel wrappers are part of the same module.
#include "minnow_parallel.h"
