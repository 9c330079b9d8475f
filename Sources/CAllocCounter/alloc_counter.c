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
static int active;  // set by any thread, read by tests: accessed atomically

int64_t minnow_alloc_count(void) { return thread_count; }
void minnow_alloc_reset(void) { thread_count = 0; }
int minnow_alloc_counter_active(void) {
    void *volatile p = malloc(1);  // proves that malloc is ours (volatile: not elided)
    free(p);
    return __atomic_load_n(&active, __ATOMIC_RELAXED);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MINNOW_SANITIZED 1
#endif
#endif

#ifdef MINNOW_SANITIZED
// Sanitizer runtimes own malloc, and interposing it would hide every heap access from them.
// They offer allocation hooks instead: count there, so the allocation tests run in sanitizer
// builds too.
#include <sanitizer/allocator_interface.h>
static void on_malloc(const volatile void *p, size_t n) { (void)p; (void)n; __atomic_store_n(&active, 1, __ATOMIC_RELAXED); thread_count++; }
static void on_free(const volatile void *p) { (void)p; }
__attribute__((constructor)) static void install_hooks(void) {
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
void *malloc(size_t n) { __atomic_store_n(&active, 1, __ATOMIC_RELAXED); thread_count++; return __libc_malloc(n); }
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
