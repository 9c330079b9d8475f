// Minnow's inner loops. Everything here is plain C on raw pointers, called from Swift with
// shapes already validated at session creation: kernels never check, never allocate, never fail.
//
// This is the portable reference. SIMD versions (AVX2, AVX-512 VNNI) go beside it in their own
// files and are chosen once through `mn_kernels()` (see dispatch.c); integer paths must produce
// the same bytes as the reference on every CPU. An op's meaning lives in the reference and in the
// drivers the SIMD tables share (x86_internal.h); an ISA adds only inner loops.
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

/// C[m, n] = (accumulate ? C[m, n] : bias ? bias[n] : 0) + sum_k A[m, k] * B(k, n), with A at
/// a[m * lda + k] and B(k, n) at b[k * ldb + n] (b_trans 0: B stored [K, N], an activation) or at
/// b[n * ldb + k] (b_trans 1: stored [N, K], a weight). bias may be NULL.
typedef void (*mn_gemm_f32_fn)(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans,
                               const float *bias, float *c, int64_t ldc, int64_t M, int64_t N, int64_t K,
                               int32_t accumulate);

/// See mn_kernel_table.conv_s8.
typedef void (*mn_conv_s8_fn)(const int8_t *x, const int8_t *packed, const int32_t *bias, const int32_t *mult,
                              const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                              const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch);

/// Scaled dot-product attention for one product (one sample's head), see mn_kernel_table.attention_f32.
typedef void (*mn_attention_f32_fn)(const float *q, int64_t ldq, const float *k, int64_t ldk, int32_t k_rows,
                                    const float *v, int64_t ldv, const float *mask, int64_t mask_row_stride, float *o,
                                    int64_t ldo, int64_t M, int64_t N, int64_t d, int64_t dv, int32_t scale_op, float scale,
                                    int32_t nan_to_zero);
/// The stack scratch of attention_f32, in floats: it needs (d + 16) * round_up(N, 16) (K^T, when
/// k_rows, and two blocks of up to eight score rows), or 16 * round_up(N, 16).
#define MN_ATTENTION_SCRATCH_FLOATS 12288
/// The stack scratch attention_bf16 needs, in floats: K and V in bf16 pairs, two blocks of eight
/// score rows, and a block's probability and query rows in bf16. It must not exceed
/// MN_ATTENTION_SCRATCH_FLOATS.
static inline int64_t mn_attention_bf16_scratch_floats(int64_t N, int64_t d, int64_t dv) {
    const int64_t np = (N + 15) / 16 * 16, dh = (d + 1) / 2, nh = (N + 1) / 2;
    return dh * np + nh * ((dv + 15) / 16 * 16) + 16 * np + 8 * ((nh + 15) / 16 * 16) + 8 * ((dh + 15) / 16 * 16);
}

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
    /// Same contract as mn_softmax_masked_f32, and the same bits as this table's softmax_f32 on
    /// the scaled, masked row; every table sets it.
    void (*softmax_masked_f32)(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows, int64_t cols,
                               int32_t scale_op, float scale);
    /// Same contract as mn_unary_f32; SIMD versions use polynomial exp/tanh/sigmoid/erf: within
    /// 3e-7 absolute (sigmoid, tanh, erf), 3e-7 relative (exp), 3e-7 * max(1, |x|) (GELU), with
    /// NaN, infinities and signed zeros as libm, and an element's result independent of n.
    void (*unary_f32)(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);
    /// Float matrix products (attention, recurrent projections); every table sets it.
    mn_gemm_f32_fn gemm_f32;
    /// Same contract as mn_lstm_cell_f32; SIMD versions within 3e-7 absolute per gate function.
    void (*lstm_cell_f32)(float *g, const float *c_prev, float *h, int64_t H);
    /// Same contract as mn_layer_norm_f32, and the same bits (every table sets it).
    void (*layer_norm_f32)(const float *x, const float *x2, const float *gamma, const float *beta, float *y, int64_t rows,
                           int64_t dim, float eps);
    /// Optional (NULL in the reference): a channels-last int8 convolution as one implicit GEMM,
    /// the same bytes as mn_im2col (layout 1, dilations 1) followed by dense_s8 on its patches.
    /// x [batch, H, W, C], y [batch, OH * OW, N], params as mn_im2col's; `scratch` holds
    /// mn_conv_s8_scratch(params) bytes (one sample, padded with `pad_value` and widened).
    /// Weights [N, KH * KW * C] are packed once by conv_s8_pack into conv_s8_packed_size bytes.
    mn_conv_s8_fn conv_s8;
    size_t (*conv_s8_packed_size)(const int64_t params[14], int32_t N);
    void (*conv_s8_pack)(const int8_t *w, int8_t *packed, const int64_t params[14], int32_t N);
    /// Optional (NULL in the reference table: the runtime then runs the three ops):
    /// O [M, dv] = softmax((Q K^T OP scale) + mask) V for one sample's head, with Q [M, d] rows
    /// ldq apart, K stored [N, d] rows ldk apart (k_rows 1) or [d, N] (k_rows 0), mask rows
    /// mask_row_stride apart, V [N, dv] rows ldv apart, O rows ldo apart; OP as
    /// mn_softmax_masked_f32's; NaN probabilities become 0 when nan_to_zero. The same bits as
    /// this table's gemm_f32, softmax_masked_f32 and gemm_f32 in turn. O may be Q's very elements
    /// (ldo = ldq, dv = d), or K's when k_rows (ldo = ldk, dv = d, N = M): each is read before it
    /// is written; otherwise O overlaps no operand. Scratch limit: MN_ATTENTION_SCRATCH_FLOATS.
    mn_attention_f32_fn attention_f32;
    /// Optional, opt-in (Model's `attention: .bf16`): attention_f32's contract with Q, K, the
    /// probabilities and V rounded to bfloat16 for the two products (fp32 sums; scale, mask and
    /// softmax in fp32), so not its bits. Needs AVX512-BF16: use it only where
    /// mn_cpu_has_avx512bf16(). Scratch limit: mn_attention_bf16_scratch_floats.
    mn_attention_f32_fn attention_bf16;
} mn_kernel_table;

/// 1 where this CPU runs AVX512-BF16 (`vdpbf16ps`), which attention_bf16 needs.
int32_t mn_cpu_has_avx512bf16(void);

/// The portable reference kernels (correct on any CPU).
const mn_kernel_table *mn_reference_kernels(void);
/// x86-64 tables, or NULL when this CPU (or build) lacks the instructions.
const mn_kernel_table *mn_avx2_kernels(void);
const mn_kernel_table *mn_avx512vnni_kernels(void);
/// The VNNI table with an AMX int8 GEMM under Dense ops, where the CPU has AMX-INT8 and Linux
/// grants tile data, unless MINNOW_AMX=0 opts out.
const mn_kernel_table *mn_amx_kernels(void);
/// The best kernels for this CPU, detected once. MINNOW_KERNELS=reference|avx2|avx512vnni|amx
/// forces a table (the default where the CPU lacks it: check Model.kernelName or `minnow kernels`).
const mn_kernel_table *mn_kernels(void);
/// Every table this build knows, lowest first: its name, and the table where this host can run
/// it (NULL where it cannot). Tests and `minnow kernels` walk these.
int32_t mn_kernel_table_count(void);
const char *mn_kernel_table_name(int32_t i);
const mn_kernel_table *mn_kernel_table_at(int32_t i);

// ---- Element-wise and row ops (fp32 unless stated) ----

/// Binary op over a 4-D iteration space with per-operand strides (0 broadcasts).
/// op: 0 add, 1 sub, 2 mul, 3 div, 4 pow, 5 max, 6 min.
void mn_binary_f32(int32_t op, const float *a, const int64_t a_strides[4], const float *b,
                   const int64_t b_strides[4], float *y, const int64_t dims[4]);

/// Unary op: 0 relu, 1 leaky relu (p0 = alpha), 2 sigmoid, 3 tanh, 4 clip [p0, p1], 5 exp, 6 sqrt,
/// 7 erf, 8 neg, 9 reciprocal, 10 gelu (erf form), 11 gelu (tanh approximation).
void mn_unary_f32(int32_t op, const float *x, float *y, int64_t n, float p0, float p1);

/// Softmax (or log-softmax when `log` != 0) over contiguous rows of length `cols`.
void mn_softmax_f32(const float *x, float *y, int64_t rows, int64_t cols, int32_t log);
/// Attention rows: y[r] = softmax(t), t[c] = (x[r][c] OP scale) + mask[r * mask_row_stride + c],
/// OP mn_binary_f32's multiply (2) or divide (3), or none (any other value), each step rounded as
/// mn_binary_f32 rounds it. Rows of x and y are `cols` apart; y may be x; y must not overlap mask.
void mn_softmax_masked_f32(const float *x, const float *mask, int64_t mask_row_stride, float *y, int64_t rows, int64_t cols,
                           int32_t scale_op, float scale);

/// q = clamp(round_half_even(x / scale) + zp, -128, 127).
void mn_quantize_s8(const float *x, int8_t *q, int64_t n, float scale, int32_t zp);
/// x = (q - zp) * scale.
void mn_dequantize_s8(const int8_t *q, float *x, int64_t n, float scale, int32_t zp);

/// y = !x on bools (one byte each).
void mn_not_u8(const uint8_t *x, uint8_t *y, int64_t n);

// ---- Tensor ops (tensor_ops.c) ----

/// Copies `batch` samples element by element: y (contiguous) [b, i...] = x[b * x_batch_stride +
/// offset + sum(i[k] * strides[k])], for rank <= 6 per-sample dims; elem is the element size.
void mn_strided_copy(const void *x, void *y, int32_t elem, int32_t rank, const int64_t dims[6],
                     const int64_t strides[6], int64_t offset, int64_t batch, int64_t x_batch_stride);

/// Picks `count` rows of `inner` floats from each of `batch` samples of `rows` rows: y[b, i] =
/// x[b, picks[i]]. Positions are constants checked at load (0 <= picks[i] < rows): none here.
void mn_take_f32(const float *x, int64_t rows, int64_t inner, const int64_t *picks, int64_t count, int64_t batch,
                 float *y);

/// Embedding lookups: y[i, :] = table[ids[i], :] (ids int32 or int64 by id_bytes; negative ids
/// count from the end). Returns -1, or the position of the first id outside the table (the
/// rows before it are written, the rest are not).
int64_t mn_gather_f32(const float *table, int64_t rows, int64_t dim, const void *ids, int32_t id_bytes, int64_t n,
                      float *y);
/// The same on an int8 table quantized per row; only the rows looked up are dequantized.
int64_t mn_gather_s8_rows(const int8_t *table, const float *scales, const int32_t *zero_points, int64_t rows,
                          int64_t dim, const void *ids, int32_t id_bytes, int64_t n, float *y);

/// Reduces x [outer, extent, inner] over extent: kind 0 sum, 1 mean, 2 max, 3 min, 4 l2.
void mn_reduce_f32(int32_t kind, const float *x, float *y, int64_t outer, int64_t extent, int64_t inner);

/// The portable GEMM (mn_gemm_f32_fn's contract); a model's own table has its SIMD one.
void mn_gemm_f32_ref(const float *a, int64_t lda, const float *b, int64_t ldb, int32_t b_trans, const float *bias,
                     float *c, int64_t ldc, int64_t M, int64_t N, int64_t K, int32_t accumulate);

/// Normalizes each row of `dim` values: (v - mean) / sqrt(var + eps) * gamma + beta (beta may be
/// NULL), v = x, or x + x2 when x2 is given (a residual Add fused in: the same bits as the Add's
/// output normalized). y may be x or x2 (row by row in place), or apart from both.
void mn_layer_norm_f32(const float *x, const float *x2, const float *gamma, const float *beta, float *y, int64_t rows,
                       int64_t dim, float eps);

/// Broadcast comparisons (op 0 equal, 1 less, 2 greater) of float32 or int64 operands into bools.
void mn_compare(int32_t op, int32_t is_int64, const void *a, const int64_t a_strides[4], const void *b,
                const int64_t b_strides[4], uint8_t *y, const int64_t dims[4]);
/// Broadcast and (op 0) / or (op 1) of bools.
void mn_logic_u8(int32_t op, const uint8_t *a, const int64_t a_strides[4], const uint8_t *b,
                 const int64_t b_strides[4], uint8_t *y, const int64_t dims[4]);
/// y = c ? a : b, broadcast, for elements of `elem` bytes.
void mn_where(int32_t elem, const uint8_t *c, const int64_t c_strides[4], const void *a, const int64_t a_strides[4],
              const void *b, const int64_t b_strides[4], void *y, const int64_t dims[4]);
/// Element conversion between dtypes (codes as in the schema: 0 float32, 3 int32, 4 int64, 5 bool).
void mn_cast(int32_t from, int32_t to, const void *x, void *y, int64_t n);

/// Convolution patches: each sample x [C, H, W] becomes y [OH*OW, C*KH*KW] (params as the
/// schema's im2col; params[13] = 1: channels last, x [H, W, C] -> rows ordered (kh, kw, c), for
/// kernels of at most MN_IM2COL_NHWC_MAX_KH rows). Out-of-image taps read 0, or `pad_value` for
/// one-byte (int8) elements.
#define MN_IM2COL_NHWC_MAX_KH 16
void mn_im2col(const void *x, void *y, int32_t elem, const int64_t params[14], int64_t batch, int8_t pad_value);
/// Bytes of scratch one call of a table's conv_s8 needs (per thread), for these im2col params.
size_t mn_conv_s8_scratch(const int64_t params[14]);
/// Max (kind 0) or average (kind 1) pooling of [C, H, W] per sample (params as the schema's pool;
/// params[13] = 1: channels last, [H, W, C] -> [OH, OW, C]).
void mn_pool_f32(const float *x, float *y, const int64_t params[14], int64_t batch);
/// Max pooling of int8 values (kind must be 0); y keeps x's quantization.
void mn_pool_max_s8(const int8_t *x, int8_t *y, const int64_t params[14], int64_t batch);

/// One LSTM cell update: g holds the gate pre-activations [i, o, f, c~] (H each, ONNX order); on
/// return g[0, H) holds the new cell state c = sigmoid(f) c_prev + sigmoid(i) tanh(c~) (c_prev NULL:
/// a zero state) and h = sigmoid(o) tanh(c).
void mn_lstm_cell_f32(float *g, const float *c_prev, float *h, int64_t H);
/// ONNX LSTM / GRU (on table kt's GEMM and LSTM cell) with default activations and zero initial state, batch-first: x [batch, S, I],
/// W [D, G*H, I], R [D, G*H, H] (gates i, o, f, c for LSTM; z, r, h for GRU), y [batch, S, D, H];
/// direction 1 runs backward. bias: LSTM [D, 4H] (Wb + Rb summed at load), GRU [D, 6H] (Wb, Rb);
/// NULL for none.
/// yc (LSTM, NULL for none): the final cell state Y_c, [batch, D, H] (ONNX's [D, batch, H] stored batch-first).
/// scratch: (batch * S + 2 + H) * G * H floats.
void mn_lstm_f32(const mn_kernel_table *kt, const float *x, const float *W, const float *R, const float *bias, float *y, float *yc,
                 int64_t batch, int64_t S, int64_t I, int64_t H, int64_t D, float *scratch);
void mn_gru_f32(const mn_kernel_table *kt, const float *x, const float *W, const float *R, const float *bias, float *y, int64_t batch, int64_t S,
                int64_t I, int64_t H, int64_t D, int32_t linear_before_reset, float *scratch);

#ifdef __cplusplus
}
#endif
#endif

// The worker pool and row-parallel wrappers are part of the same module.
#include "minnow_parallel.h"
