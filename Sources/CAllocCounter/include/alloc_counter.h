// Test-only heap allocation counter. Linking this target into a test binary interposes malloc
// and friends for the whole process (in ASan/TSan builds it uses the sanitizer's allocation
// hooks instead); counts are per thread, so other threads do not disturb a measurement.
#ifndef MINNOW_ALLOC_COUNTER_H
#define MINNOW_ALLOC_COUNTER_H
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc, valloc) made
/// by the calling thread since the last reset.
int64_t minnow_alloc_count(void);
void minnow_alloc_reset(void);
/// 1 when the interposer is active in this process (so a zero count means something).
int minnow_alloc_counter_active(void);
#endif
