// Kernel selection: the one place that looks at the CPU. Chosen once, then a table of pointers.
// SIMD tables (AVX2, AVX-512 VNNI) plug in here behind __builtin_cpu_supports checks.
#include "minnow_kernels.h"

const mn_kernel_table *mn_kernels(void) {
    return mn_reference_kernels();
}
