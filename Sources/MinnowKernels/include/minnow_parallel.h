// A persistent worker pool and row-parallel wrappers around the kernel table. After a job, workers
// poll for the next one for 100 us, then park on a condition variable (an idle session uses no
// CPU); running a job allocates nothing.
// Work is split by rows, so every row is computed by exactly the same kernel code as single-
// threaded: results are bit-identical for any thread count.
#ifndef MINNOW_PARALLEL_H
#define MINNOW_PARALLEL_H
#include "minnow_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_pool mn_pool;

/// A pool of `threads` - 1 workers (the caller is the last thread); NULL when threads < 2 or
/// the threads cannot be started.
mn_pool *mn_pool_create(int32_t threads);
void mn_pool_destroy(mn_pool *pool);
int32_t mn_pool_threads(const mn_pool *pool);
/// Physical cores this process may run on (SMT siblings once; the CPUs its affinity allows), or
/// the logical CPU count where the topology cannot be read: the default thread count of a session.
int32_t mn_physical_cores(void);
/// CLOCK_MONOTONIC in nanoseconds (per-operator profiling: no allocation, a vDSO call).
uint64_t mn_monotonic_ns(void);

/// Runs fn(ctx, t) for t in 0..<tasks on the pool and the caller; returns when all are done.
void mn_pool_run(mn_pool *pool, void (*fn)(void *ctx, int32_t task), void *ctx, int32_t tasks);

// Row-parallel kernels: same arguments as the table's, plus the pool (NULL: single-threaded).
void mn_par_dense_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, const float *w, const float *bias,
                      float *y, int32_t M, int32_t K, int32_t N, mn_activation act);
void mn_par_dense_s8(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                     const int32_t *wsum, const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin,
                     int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N);
void mn_par_dense_s8_f32(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                         const int32_t *wsum, const float *scale, float *y, int32_t M, int32_t K, int32_t N,
                         mn_activation act);
/// `xq` holds K bytes of scratch per pool thread.
void mn_par_dense_dyn(mn_pool *pool, const mn_kernel_table *k, const float *x, const int8_t *w, const int32_t *wsum,
                      const float *wscale, const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                      mn_activation act);

/// Where the products of a batched matmul read and write, in elements. Product c of sample b:
/// A [M, K] at a + b * a_batch_stride + c * a_stride, rows `lda` apart; B at b + b * b_batch_stride
/// + c * b_stride, K rows of N (or, b_trans, N rows of K) `ldb` apart; Y [M, N] at y + b *
/// y_batch_stride + c * y_stride, rows `ldc` apart. Dense operands have lda = K, ldc = N and
/// y_stride = M * N; attention's head split and merge are other strides of the same tensors (1.8).
typedef struct {
    int64_t count, M, K, N;
    int64_t a_stride, b_stride, y_stride;
    int64_t a_batch_stride, b_batch_stride, y_batch_stride;
    int64_t lda, ldb, ldc;
    int32_t b_trans;
} mn_matmul_layout;

/// `batch` x `count` products laid out by `l`, on table k's GEMM; split across the pool by whole
/// products (a valid layout writes each output element once, so the parts never share one).
void mn_par_matmul_f32(mn_pool *pool, const mn_kernel_table *k, const float *a, const float *b, float *y, int64_t batch,
                       const mn_matmul_layout *l);
/// mn_lstm_f32 (gates 4) or mn_gru_f32 (gates 3) split by samples: each part runs the whole
/// recurrence for its samples (sequences are independent; a sample's result is the same bits in
/// any split). scratch: (batch * S + threads * (2 + H)) * gates * H floats.
void mn_par_recurrent_f32(mn_pool *pool, const mn_kernel_table *k, int32_t gates, const float *x, const float *W, const float *R, const float *bias,
                          float *y, float *yc, int64_t batch, int64_t S, int64_t I, int64_t H, int64_t D, int32_t linear_before_reset,
                          float *scratch);
/// A table's conv_s8 split by samples; `scratch` holds mn_conv_s8_scratch(params) bytes per thread.
void mn_par_conv_s8(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                    const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                    const int64_t params[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch);
/// mn_im2col and the pools (kind from params[0]; `int8` picks mn_pool_max_s8) split by samples
/// above ~32K output elements.
void mn_par_im2col(mn_pool *pool, const void *x, void *y, int32_t elem, const int64_t params[14], int64_t batch,
                   int8_t pad_value);
void mn_par_pool(mn_pool *pool, const void *x, void *y, int32_t int8, const int64_t params[14], int64_t batch);
/// The table's unary, softmax and layer norm, split by rows above ~32K elements.
void mn_par_unary_f32(mn_pool *pool, const mn_kernel_table *k, int32_t op, const float *x, float *y, int64_t n, float p0,
                      float p1);
/// flags: 1 log-softmax, 2 NaN results become 0 (the schema's nan_to_zero).
void mn_par_softmax_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, float *y, int64_t rows, int64_t cols,
                        int32_t flags);
/// Attention scores to probabilities in one pass over each block of rows (the scaled, masked
/// scores never leave cache): row r of y = softmax((x[r] OP scale) + mask[off(r)]), where rows
/// are indexed (i0, i1, i2) over dims and off = i0 ms[0] + i1 ms[1] + i2 ms[2]. OP is
/// mn_binary_f32's multiply (2) or divide (3), or none (-1). Each element is rounded as the three
/// separate ops round it (x OP scale, then + mask, then the table's softmax): the same bits.
/// x and y are the same buffer or disjoint; mask is disjoint from y.
typedef struct {
    const float *x, *mask;
    float *y;
    int64_t dims[3], mask_strides[3];
    int64_t cols;
    int32_t scale_op, flags;  // flags as mn_par_softmax_f32's
    float scale;
} mn_softmax_masked_args;
void mn_par_softmax_masked_f32(mn_pool *pool, const mn_kernel_table *k, const mn_softmax_masked_args *args);
/// Attention's two products and the masked softmax between them as one op on the table's
/// attention_f32 (which must be set), `batch` x qk.count products split across the pool. Product c
/// of sample b: Q, K as `qk` lays out the scores' product (A, B), V and O as `pv` lays out the
/// output's (B, Y); the mask row of query i at mask + b ms[0] + c ms[1] + i ms[2]. The same bytes
/// as mn_par_matmul_f32(qk), mn_par_softmax_masked_f32, mn_par_matmul_f32(pv), without the scores.
typedef struct {
    const float *q, *k, *v, *mask;
    float *o;
    mn_matmul_layout qk, pv;
    int64_t mask_strides[3];
    int32_t scale_op, nan_to_zero;
    float scale;
    /// 1: the table's attention_bf16 (the caller checked it is there and the CPU runs it).
    int32_t bf16;
} mn_attention_args;
void mn_par_attention_f32(mn_pool *pool, const mn_kernel_table *k, const mn_attention_args *args, int64_t batch);
void mn_par_layer_norm_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, const float *x2, const float *gamma,
                           const float *beta, float *y, int64_t rows, int64_t dim, float eps);
/// mn_binary_f32 split along its outermost axis longer than 1, mn_strided_copy by samples, and
/// the table's quantize_s8 by 64-value chunks, each above ~32K elements (same bytes as unsplit).
void mn_par_binary_f32(mn_pool *pool, int32_t op, const float *a, const int64_t a_strides[4], const float *b,
                       const int64_t b_strides[4], float *y, const int64_t dims[4]);
void mn_par_strided_copy(mn_pool *pool, const void *x, void *y, int32_t elem, int32_t rank, const int64_t dims[6],
                         const int64_t strides[6], int64_t offset, int64_t batch, int64_t x_batch_stride);
void mn_par_quantize_s8(mn_pool *pool, const mn_kernel_table *k, const float *x, int8_t *q, int64_t n, float scale, int32_t zp);

#ifdef __cplusplus
}
#endif
#endif
