// Interposes the allocation functions and forwards them to glibc's internal entry points,
// counting calls per thread. glibc 2.34+ dropped __malloc_hook, so interposition is the way.
#include "alloc_counter.h"
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread int64_t thread_count __attribute__((tls_model("initial-exec")));
static volatile int active;

int64_t minnow_alloc_count(void) { return thread_count; }
void minnow_alloc_reset(void) { thread_count = 0; }
int minnow_alloc_counter_active(void) {
    void *volatile p = malloc(1);  // proves that malloc is ours (volatile: not elided)
    free(p);
    return active;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MINNOW_SANITIZED 1
#endif
#endif

#ifdef MINNOW_SANITIZED
int minnow_alloc_counter_sanitized(void) { return 1; }
// Sanitizer runtimes own malloc: interposing it here would hide every heap access from them,
// so sanitized builds have no counter and the allocation tests skip (they run in normal builds).
#else
int minnow_alloc_counter_sanitized(void) { return 0; }
void *malloc(size_t n) { active = 1; thread_count++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { thread_count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { thread_count++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { thread_count++; return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { thread_count++; return __libc_memalign(a, n); }
void *valloc(size_t n) { thread_count++; return __libc_memalign(4096, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    thread_count++;
    if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(a, n);
    if (p == NULL && n != 0) return ENOMEM;
    *out = p;
    return 0;
}
#endif
