// The x86 kernel tables and the CPU detection behind them. A table is a list of entries, each
// pointing at the code that measured fastest on hosts with that ISA (docs/benchmarks.md, "Kernel
// tables"); where an ISA-specific loop did not earn its place the entry points at the table
// below it. The op semantics never live here: the shared drivers (dense_s8_x86.c, softmax and
// vector math in float_x86.c) and the reference define them.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

/// Applies a fused activation to a row-major [M, N] block in place (after the float GEMM).
static void activate_rows(float *y, int64_t count, mn_activation act) {
    if (act.kind == 0) return;
    for (int64_t i = 0; i < count; i++) y[i] = apply_act(y[i], act);
}

/// Float Dense through the register-blocked GEMM at every M, so a row's result does not depend on
/// the batch size or the thread split.
static void dense_f32_avx2(const float *x, const float *w, const float *bias, float *y, int32_t M, int32_t K, int32_t N,
                           mn_activation act) {
    mn_gemm_f32_avx2(x, K, w, K, 1, bias, y, N, M, N, K, 0);
    activate_rows(y, (int64_t)M * N, act);
}

// ---- The int8 Dense entries of a table: the shared drivers (dense_s8_x86.c) over its GEMM ----

#define DENSE_S8_ENTRIES(SUFFIX, GEMM, QUANTIZE, AVX512_EPILOGUE)                                                       \
    static void dense_s8_##SUFFIX(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,           \
                                  const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax,\
                                  int8_t *y, int32_t M, int32_t K, int32_t N) {                                         \
        mn_x86_dense_s8(GEMM, mn_s8_requant_epilogue_for(AVX512_EPILOGUE), x, w, bias, wsum, mult, shift, out_zp, qmin, \
                        qmax, y, M, K, N);                                                                              \
    }                                                                                                                   \
    static void dense_s8_f32_##SUFFIX(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,       \
                                      const float *scale, float *y, int32_t M, int32_t K, int32_t N, mn_activation act) {\
        mn_x86_dense_s8_f32(GEMM, x, w, bias, wsum, scale, y, M, K, N, act);                                            \
    }                                                                                                                   \
    static void dense_dyn_##SUFFIX(const float *x, const int8_t *w, const int32_t *wsum, const float *wscale,           \
                                   const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,            \
                                   mn_activation act) {                                                                 \
        mn_x86_dense_dyn(GEMM, mn_s8_dyn_epilogue(AVX512_EPILOGUE), QUANTIZE, x, w, wsum, wscale, bias, y, xq, M, K, N, act);\
    }
DENSE_S8_ENTRIES(avx2, mn_gemm_s8_avx2, mn_quantize_s8_avx2, 0)
DENSE_S8_ENTRIES(vnni, mn_gemm_s8_vnni, mn_quantize_s8_avx512, 1)
DENSE_S8_ENTRIES(amx, mn_gemm_s8_amx, mn_quantize_s8_avx512, 1)

// ---- AVX2 ----

static const mn_kernel_table avx2_table = {
    .name = "avx2",
    .dense_f32 = dense_f32_avx2,
    .dense_s8 = dense_s8_avx2,
    .dense_s8_f32 = dense_s8_f32_avx2,
    .dense_dyn = dense_dyn_avx2,
    .packed_s8_size = mn_packed_s8_size_avx2,
    .pack_s8 = mn_pack_s8_avx2,
    .quantize_s8 = mn_quantize_s8_avx2,
    .softmax_f32 = mn_softmax_f32_avx2,
    .softmax_masked_f32 = mn_softmax_masked_f32_avx2,
    .unary_f32 = mn_unary_f32_avx2,
    .gemm_f32 = mn_gemm_f32_avx2,
    .lstm_cell_f32 = mn_lstm_cell_f32_avx2,
    .layer_norm_f32 = mn_layer_norm_f32_avx2,
    .conv_s8 = mn_conv_s8_avx2,
    .conv_s8_packed_size = mn_conv_s8_packed_size_avx2,
    .conv_s8_pack = mn_conv_s8_pack_avx2,
    .attention_f32 = mn_attention_f32_avx2,
};

// ---- AVX-512 VNNI: its own int8 GEMM and convolution, float GEMM and 16-lane vector math ----

static void dense_f32_avx512(const float *x, const float *w, const float *bias, float *y, int32_t M, int32_t K, int32_t N,
                             mn_activation act) {
    mn_gemm_f32_avx512(x, K, w, K, 1, bias, y, N, M, N, K, 0);
    activate_rows(y, (int64_t)M * N, act);
}

// The AVX-512 entries the VNNI and AMX tables share (everything but the int8 Dense GEMM).
#define AVX512_COMMON_ENTRIES                                                                                           \
    .dense_f32 = dense_f32_avx512, .quantize_s8 = mn_quantize_s8_avx512, .softmax_f32 = mn_softmax_f32_avx512,         \
    .softmax_masked_f32 = mn_softmax_masked_f32_avx512,                                                                \
    .unary_f32 = mn_unary_f32_avx512, .gemm_f32 = mn_gemm_f32_avx512, .lstm_cell_f32 = mn_lstm_cell_f32_avx512,         \
    .layer_norm_f32 = mn_layer_norm_f32_avx2,                                                                          \
    .conv_s8 = mn_conv_s8_vnni, .conv_s8_packed_size = mn_conv_s8_packed_size_vnni, .conv_s8_pack = mn_conv_s8_pack_vnni, \
    .attention_f32 = mn_attention_f32_avx512, .attention_bf16 = mn_attention_bf16_avx512

static const mn_kernel_table avx512vnni_table = {
    .name = "avx512vnni",
    .dense_s8 = dense_s8_vnni,
    .dense_s8_f32 = dense_s8_f32_vnni,
    .dense_dyn = dense_dyn_vnni,
    .packed_s8_size = mn_packed_s8_size_vnni,
    .pack_s8 = mn_pack_s8_vnni,
    AVX512_COMMON_ENTRIES,
};

// ---- AMX (default where the CPU has AMX-INT8; MINNOW_AMX=0 opts out): the VNNI table with an AMX
// int8 GEMM under its Dense ops ----

static const mn_kernel_table amx_table = {
    .name = "amx",
    .dense_s8 = dense_s8_amx,
    .dense_s8_f32 = dense_s8_f32_amx,
    .dense_dyn = dense_dyn_amx,
    .packed_s8_size = mn_packed_s8_size_amx,
    .pack_s8 = mn_pack_s8_amx,
    AVX512_COMMON_ENTRIES,
};

const mn_kernel_table *mn_amx_kernels(void) { return mn_avx512vnni_kernels() && mn_amx_usable() ? &amx_table : 0; }

const mn_kernel_table *mn_avx2_kernels(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_table : 0;
}

const mn_kernel_table *mn_avx512vnni_kernels(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
               ? &avx512vnni_table
               : 0;
}

int32_t mn_cpu_has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? 1 : 0;
}

#else  // not x86-64: only the reference exists

int32_t mn_cpu_has_avx512bf16(void) { return 0; }

const mn_kernel_table *mn_avx2_kernels(void) { return 0; }
const mn_kernel_table *mn_avx512vnni_kernels(void) { return 0; }
const mn_kernel_table *mn_amx_kernels(void) { return 0; }

#endif
