// Kernel selection: the one place that looks at the CPU. Chosen once, then a table of pointers.
#include "minnow_kernels.h"
#include <stdlib.h>
#include <string.h>

// Every table this build knows, lowest first; the default is the last one the host supports.
static const char *const names[] = {"reference", "avx2", "avx512vnni", "amx"};
enum { TABLES = sizeof names / sizeof names[0] };

int32_t mn_kernel_table_count(void) { return TABLES; }

const char *mn_kernel_table_name(int32_t i) { return i >= 0 && i < TABLES ? names[i] : NULL; }

const mn_kernel_table *mn_kernel_table_at(int32_t i) {
    switch (i) {
    case 0: return mn_reference_kernels();
    case 1: return mn_avx2_kernels();
    case 2: return mn_avx512vnni_kernels();
    case 3: return mn_amx_kernels();
    default: return NULL;
    }
}

static const mn_kernel_table *choose(void) {
    const char *forced = getenv("MINNOW_KERNELS");
    if (forced && *forced) {
        // A forced table this host cannot run falls back to the default below; `minnow kernels`
        // lists what the host supports, and Model.kernelName says what was chosen.
        for (int32_t i = 0; i < TABLES; i++)
            if (strcmp(forced, names[i]) == 0 && mn_kernel_table_at(i)) return mn_kernel_table_at(i);
    }
    for (int32_t i = TABLES - 1; i > 0; i--)
        if (mn_kernel_table_at(i)) return mn_kernel_table_at(i);
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
