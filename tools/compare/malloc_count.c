/* An LD_PRELOAD heap-allocation counter for tools/compare (the engines' allocations per run).
 * Every malloc-family call is counted and forwarded to glibc's own implementation (__libc_*,
 * which avoids dlsym's own allocations during start-up). Read the count with mc_count() through
 * ctypes: the difference across N runs, divided by N, is the allocations per run.
 * Built by compare.py: cc -shared -fPIC -O2 -o malloc_count.so malloc_count.c */
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static long long count;

long long mc_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

static inline void bump(void) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) { bump(); return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { bump(); return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { bump(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    bump();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
