// Kernel selection: the one place that looks at the CPU. Chosen once, then a table of pointers.
#include "minnow_kernels.h"
#include <stdlib.h>
#include <string.h>

static const mn_kernel_table *choose(void) {
    const char *forced = getenv("MINNOW_KERNELS");
    const mn_kernel_table *vnni = mn_avx512vnni_kernels();
    const mn_kernel_table *avx2 = mn_avx2_kernels();
    if (forced && strcmp(forced, "reference") == 0) return mn_reference_kernels();
    if (forced && strcmp(forced, "avx2") == 0 && avx2) return avx2;
    if (vnni) return vnni;
    if (avx2) return avx2;
    return mn_reference_kernels();
}

const mn_kernel_table *mn_kernels(void) {
    // Every thread computes the same answer; atomics keep the first-use race well-defined.
    static const mn_kernel_table *chosen;
    const mn_kernel_table *t = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!t) {
        t = choose();
        __atomic_store_n(&chosen, t, __ATOMIC_RELEASE);
    }
    return t;
}
