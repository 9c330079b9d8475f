// Portable reference dense (fully connected) kernels. Every SIMD path is tested against these.
#include "minnow_kernels.h"
#include "kernels_internal.h"

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

static void dense_s8_ref(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                         const int32_t *mult, const int32_t *shift, int32_t out_zp,
                         int32_t qmin, int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N) {
    (void)wsum;
    for (int32_t m = 0; m < M; m++) {
        const int8_t *xr = x + (int64_t)m * K;
        for (int32_t n = 0; n < N; n++) {
            y[(int64_t)m * N + n] = requantize(bias[n] + dot_s8(xr, w + (int64_t)n * K, K), mult[n], shift[n], out_zp, qmin, qmax);
        }
    }
}

static void dense_s8_f32_ref(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                             const float *scale, float *y, int32_t M, int32_t K, int32_t N,
                             mn_activation act) {
    (void)wsum;
    for (int32_t m = 0; m < M; m++) {
        const int8_t *xr = x + (int64_t)m * K;
        for (int32_t n = 0; n < N; n++) {
            const int32_t acc = bias[n] + dot_s8(xr, w + (int64_t)n * K, K);
            y[(int64_t)m * N + n] = apply_act((float)acc * scale[n], act);
        }
    }
}

static void dense_dyn_ref(const float *x, const int8_t *w, const int32_t *wsum, const float *wscale,
                          const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                          mn_activation act) {
    for (int32_t m = 0; m < M; m++) {
        int32_t zp = 0;
        const float s = quantize_row(x + (int64_t)m * K, xq, K, &zp);
        for (int32_t n = 0; n < N; n++) {
            y[(int64_t)m * N + n] = dynamic_epilogue(dot_s8(xq, w + (int64_t)n * K, K), zp, wsum[n], s, wscale[n],
                                                     bias ? bias[n] : 0.f, act);
        }
    }
}

static const mn_kernel_table reference_table = {
    .name = "reference",
    .dense_f32 = dense_f32_ref,
    .dense_s8 = dense_s8_ref,
    .dense_s8_f32 = dense_s8_f32_ref,
    .dense_dyn = dense_dyn_ref,
    .quantize_s8 = mn_quantize_s8,
    .softmax_f32 = mn_softmax_f32,
    .softmax_masked_f32 = mn_softmax_masked_f32,
    .unary_f32 = mn_unary_f32,
    .gemm_f32 = mn_gemm_f32_ref,
    .lstm_cell_f32 = mn_lstm_cell_f32,
    .layer_norm_f32 = mn_layer_norm_f32,
};

const mn_kernel_table *mn_reference_kernels(void) { return &reference_table; }
