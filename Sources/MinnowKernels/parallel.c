// Worker pool and row-parallel kernel wrappers (see minnow_parallel.h).
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE  // sched_getaffinity, CPU_COUNT
#endif
#include "minnow_parallel.h"
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#endif

// Spin-then-park: right after a job a worker polls for the next one for up to MN_SPIN_NS
// before it parks on the condition variable, and the caller polls for the last worker the same
// way before it parks. Waking a parked thread costs tens of microseconds on a shared VM, as much
// as a mid-sized operator; a model that splits several operators per run finds the worker still
// polling. An idle session parks within MN_SPIN_NS of its last job, so it uses no CPU.
#define MN_SPIN_NS 100000

struct mn_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;   // parked workers wait here for a new job
    pthread_cond_t done;   // a parked caller waits here for the last worker
    int32_t threads;       // workers + the caller
    int32_t workers;
    pthread_t *ids;
    // The current job: fn, ctx, tasks, next and active are written before `generation` is
    // bumped (release); a worker that sees the new generation (acquire) sees them.
    uint64_t generation;
    int32_t active;        // workers still inside the current job (atomic)
    int32_t parked;        // workers waiting on `work` (under lock)
    int32_t caller_parked; // the caller waits on `done` (under lock)
    int32_t stop;
    void (*fn)(void *, int32_t);
    void *ctx;
    int32_t tasks;
    int32_t next;          // next task to take (atomic)
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/// Polls until `*value != unwanted` or MN_SPIN_NS pass; returns the last value read.
static uint64_t spin_while_equal_u64(const uint64_t *value, uint64_t unwanted) {
    const uint64_t start = now_ns();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            const uint64_t v = __atomic_load_n(value, __ATOMIC_ACQUIRE);
            if (v != unwanted) return v;
            cpu_relax();
        }
        if (now_ns() - start > MN_SPIN_NS) return unwanted;
    }
}

static int32_t spin_while_nonzero(const int32_t *value) {
    const uint64_t start = now_ns();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            const int32_t v = __atomic_load_n(value, __ATOMIC_ACQUIRE);
            if (v == 0) return 0;
            cpu_relax();
        }
        if (now_ns() - start > MN_SPIN_NS) return __atomic_load_n(value, __ATOMIC_ACQUIRE);
    }
}

static void take_tasks(mn_pool *p, void (*fn)(void *, int32_t), void *ctx, int32_t tasks) {
    for (;;) {
        const int32_t t = __atomic_fetch_add(&p->next, 1, __ATOMIC_ACQ_REL);
        if (t >= tasks) return;
        fn(ctx, t);
    }
}

static void *worker(void *arg) {
    mn_pool *p = (mn_pool *)arg;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = spin_while_equal_u64(&p->generation, seen);
        if (g == seen) {
            // Park. The generation is read again under the lock: the caller bumps it before it
            // takes the lock to look for parked workers, so no wake-up is lost.
            pthread_mutex_lock(&p->lock);
            p->parked++;
            while ((g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen && !p->stop) pthread_cond_wait(&p->work, &p->lock);
            p->parked--;
            const int32_t stop = p->stop;
            pthread_mutex_unlock(&p->lock);
            if (stop) break;
        }
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = g;
        take_tasks(p, p->fn, p->ctx, p->tasks);
        if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->lock);
            if (p->caller_parked) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

mn_pool *mn_pool_create(int32_t threads) {
    if (threads < 2) return NULL;
    mn_pool *p = (mn_pool *)calloc(1, sizeof(mn_pool));
    if (!p) return NULL;
    p->ids = (pthread_t *)calloc((size_t)threads - 1, sizeof(pthread_t));
    if (!p->ids) { free(p); return NULL; }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = threads;
    for (int32_t i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->ids[i], NULL, worker, p) != 0) break;
        p->workers++;
    }
    if (p->workers == 0) { mn_pool_destroy(p); return NULL; }
    p->threads = p->workers + 1;
    return p;
}

void mn_pool_destroy(mn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    // A polling worker sees `stop` only with a new generation.
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_ACQ_REL);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int32_t i = 0; i < p->workers; i++) pthread_join(p->ids[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p->ids);
    free(p);
}

int32_t mn_pool_threads(const mn_pool *p) { return p ? p->threads : 1; }

void mn_pool_run(mn_pool *p, void (*fn)(void *, int32_t), void *ctx, int32_t tasks) {
    if (!p || tasks <= 1) {
        for (int32_t t = 0; t < tasks; t++) fn(ctx, t);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->tasks = tasks;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->active, p->workers, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&p->lock);
    if (p->parked) pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    take_tasks(p, fn, ctx, tasks);
    if (spin_while_nonzero(&p->active) == 0) return;
    pthread_mutex_lock(&p->lock);
    p->caller_parked = 1;
    while (__atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&p->done, &p->lock);
    p->caller_parked = 0;
    pthread_mutex_unlock(&p->lock);
}

// ---- row-parallel wrappers ----

/// Splitting pays only above this much work (multiply-adds); smaller ops stay on the caller.
/// Waking a sleeping worker costs tens of microseconds on a shared VM, so only operators that
/// take well over that on one core (~4M MACs, ~40 us at int8 VNNI rates) are split.
#define MN_PARALLEL_MIN_MACS (1 << 22)

/// Rows of part t of `parts`, in blocks of 8 (the VNNI kernel's row block).
static void row_range(int32_t M, int32_t parts, int32_t t, int32_t *m0, int32_t *m1) {
    const int32_t blocks = (M + 7) / 8;
    *m0 = (int32_t)((int64_t)blocks * t / parts) * 8;
    *m1 = (int32_t)((int64_t)blocks * (t + 1) / parts) * 8;
    if (*m0 > M) *m0 = M;
    if (*m1 > M) *m1 = M;
}

static int32_t parts_for(mn_pool *pool, int32_t M, int32_t K, int32_t N) {
    if (!pool || M < 2 || (int64_t)M * K * N < MN_PARALLEL_MIN_MACS) return 1;
    const int32_t blocks = (M + 7) / 8;
    const int32_t threads = mn_pool_threads(pool);
    return blocks < threads ? blocks : threads;
}

typedef struct {
    const mn_kernel_table *k;
    const void *x, *w, *bias, *wsum, *mult, *shift, *scale;
    void *y;
    int8_t *xq;
    int32_t out_zp, qmin, qmax, M, K, N, parts;
    mn_activation act;
} dense_job;

static void f32_task(void *ctx, int32_t t) {
    const dense_job *j = (const dense_job *)ctx;
    int32_t m0, m1;
    row_range(j->M, j->parts, t, &m0, &m1);
    if (m1 > m0)
        j->k->dense_f32((const float *)j->x + (int64_t)m0 * j->K, (const float *)j->w, (const float *)j->bias,
                        (float *)j->y + (int64_t)m0 * j->N, m1 - m0, j->K, j->N, j->act);
}

static void s8_task(void *ctx, int32_t t) {
    const dense_job *j = (const dense_job *)ctx;
    int32_t m0, m1;
    row_range(j->M, j->parts, t, &m0, &m1);
    if (m1 > m0)
        j->k->dense_s8((const int8_t *)j->x + (int64_t)m0 * j->K, (const int8_t *)j->w, (const int32_t *)j->bias,
                       (const int32_t *)j->wsum, (const int32_t *)j->mult, (const int32_t *)j->shift, j->out_zp, j->qmin,
                       j->qmax, (int8_t *)j->y + (int64_t)m0 * j->N, m1 - m0, j->K, j->N);
}

static void s8_f32_task(void *ctx, int32_t t) {
    const dense_job *j = (const dense_job *)ctx;
    int32_t m0, m1;
    row_range(j->M, j->parts, t, &m0, &m1);
    if (m1 > m0)
        j->k->dense_s8_f32((const int8_t *)j->x + (int64_t)m0 * j->K, (const int8_t *)j->w, (const int32_t *)j->bias,
                           (const int32_t *)j->wsum, (const float *)j->scale, (float *)j->y + (int64_t)m0 * j->N,
                           m1 - m0, j->K, j->N, j->act);
}

static void dyn_task(void *ctx, int32_t t) {
    const dense_job *j = (const dense_job *)ctx;
    int32_t m0, m1;
    row_range(j->M, j->parts, t, &m0, &m1);
    if (m1 > m0)
        j->k->dense_dyn((const float *)j->x + (int64_t)m0 * j->K, (const int8_t *)j->w, (const int32_t *)j->wsum,
                        (const float *)j->scale, (const float *)j->bias, (float *)j->y + (int64_t)m0 * j->N,
                        j->xq + (int64_t)t * j->K, m1 - m0, j->K, j->N, j->act);
}

void mn_par_dense_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, const float *w, const float *bias,
                      float *y, int32_t M, int32_t K, int32_t N, mn_activation act) {
    dense_job j = {.k = k, .x = x, .w = w, .bias = bias, .y = y, .M = M, .K = K, .N = N, .act = act};
    j.parts = parts_for(pool, M, K, N);
    mn_pool_run(pool, f32_task, &j, j.parts);
}

void mn_par_dense_s8(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                     const int32_t *wsum, const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin,
                     int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N) {
    dense_job j = {.k = k, .x = x, .w = w, .bias = bias, .wsum = wsum, .mult = mult, .shift = shift, .y = y,
                   .out_zp = out_zp, .qmin = qmin, .qmax = qmax, .M = M, .K = K, .N = N};
    j.parts = parts_for(pool, M, K, N);
    mn_pool_run(pool, s8_task, &j, j.parts);
}

void mn_par_dense_s8_f32(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                         const int32_t *wsum, const float *scale, float *y, int32_t M, int32_t K, int32_t N,
                         mn_activation act) {
    dense_job j = {.k = k, .x = x, .w = w, .bias = bias, .wsum = wsum, .scale = scale, .y = y, .M = M, .K = K, .N = N,
                   .act = act};
    j.parts = parts_for(pool, M, K, N);
    mn_pool_run(pool, s8_f32_task, &j, j.parts);
}

void mn_par_dense_dyn(mn_pool *pool, const mn_kernel_table *k, const float *x, const int8_t *w, const int32_t *wsum,
                      const float *wscale, const float *bias, float *y, int8_t *xq, int32_t M, int32_t K, int32_t N,
                      mn_activation act) {
    dense_job j = {.k = k, .x = x, .w = w, .wsum = wsum, .scale = wscale, .bias = bias, .y = y, .xq = xq, .M = M,
                   .K = K, .N = N, .act = act};
    j.parts = parts_for(pool, M, K, N);
    mn_pool_run(pool, dyn_task, &j, j.parts);
}

// ---- batched float products (attention) ----

typedef struct {
    const mn_kernel_table *k;
    const float *a, *b;
    float *y;
    const mn_matmul_layout *l;
    int64_t units;
    int32_t parts;
} matmul_job;

static void matmul_task(void *ctx, int32_t t) {
    const matmul_job *j = (const matmul_job *)ctx;
    const mn_matmul_layout *l = j->l;
    const int64_t u0 = j->units * t / j->parts, u1 = j->units * (t + 1) / j->parts;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t b = u / l->count, c = u % l->count;
        j->k->gemm_f32(j->a + b * l->a_batch_stride + c * l->a_stride, l->lda, j->b + b * l->b_batch_stride + c * l->b_stride,
                       l->ldb, l->b_trans, NULL, j->y + b * l->y_batch_stride + c * l->y_stride, l->ldc, l->M, l->N, l->K, 0);
    }
}

void mn_par_matmul_f32(mn_pool *pool, const mn_kernel_table *k, const float *a, const float *b, float *y, int64_t batch,
                       const mn_matmul_layout *l) {
    // Split by whole products (sample x head): each is computed by the same code as unsplit.
    const int64_t units = batch * l->count;
    int32_t parts = 1;
    if (pool && units >= 2 && units * l->M * l->K * l->N >= MN_PARALLEL_MIN_MACS / 4) {
        const int32_t threads = mn_pool_threads(pool);
        parts = units < threads ? (int32_t)units : threads;
    }
    matmul_job j = {k, a, b, y, l, units, parts};
    if (parts == 1) { matmul_task(&j, 0); return; }
    mn_pool_run(pool, matmul_task, &j, parts);
}

// ---- fused attention, split by products like the matmuls ----

typedef struct {
    const mn_kernel_table *k;
    const mn_attention_args *a;
    int64_t units;
    int32_t parts;
} attention_job;

static void attention_task(void *ctx, int32_t t) {
    const attention_job *j = (const attention_job *)ctx;
    const mn_attention_args *a = j->a;
    const mn_matmul_layout *qk = &a->qk, *pv = &a->pv;
    const int64_t u0 = j->units * t / j->parts, u1 = j->units * (t + 1) / j->parts;
    const mn_attention_f32_fn attend = a->bf16 ? j->k->attention_bf16 : j->k->attention_f32;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t b = u / qk->count, c = u % qk->count;
        attend(a->q + b * qk->a_batch_stride + c * qk->a_stride, qk->lda, a->k + b * qk->b_batch_stride + c * qk->b_stride,
               qk->ldb, qk->b_trans, a->v + b * pv->b_batch_stride + c * pv->b_stride, pv->ldb,
               a->mask + b * a->mask_strides[0] + c * a->mask_strides[1], a->mask_strides[2],
               a->o + b * pv->y_batch_stride + c * pv->y_stride, pv->ldc, qk->M, qk->N, qk->K, pv->N, a->scale_op, a->scale,
               a->nan_to_zero);
    }
}

void mn_par_attention_f32(mn_pool *pool, const mn_kernel_table *k, const mn_attention_args *args, int64_t batch) {
    const mn_matmul_layout *qk = &args->qk;
    attention_job j = {k, args, batch * qk->count, 1};
    if (pool && j.units >= 2 && j.units * qk->M * qk->N * (qk->K + args->pv.N) >= MN_PARALLEL_MIN_MACS / 4) {
        const int32_t threads = mn_pool_threads(pool);
        j.parts = j.units < threads ? (int32_t)j.units : threads;
    }
    if (j.parts == 1) { attention_task(&j, 0); return; }
    mn_pool_run(pool, attention_task, &j, j.parts);
}

// ---- recurrent ops, split by samples ----

typedef struct {
    const mn_kernel_table *k;
    int32_t gates, lbr, parts;
    const float *x, *W, *R, *bias;
    float *y, *yc, *scratch;
    int64_t batch, S, I, H, D;
} recurrent_job;

static void recurrent_task(void *ctx, int32_t t) {
    const recurrent_job *j = (const recurrent_job *)ctx;
    const int64_t b0 = j->batch * t / j->parts, b1 = j->batch * (t + 1) / j->parts;
    if (b1 <= b0) return;
    // Part t's scratch: its samples' gate rows, then its own 2 + H rows (see the header).
    float *s = j->scratch + (b0 * j->S + t * (2 + j->H)) * j->gates * j->H;
    const float *x = j->x + b0 * j->S * j->I;
    float *y = j->y + b0 * j->S * j->D * j->H;
    float *yc = j->yc ? j->yc + b0 * j->D * j->H : NULL;
    if (j->gates == 4) mn_lstm_f32(j->k, x, j->W, j->R, j->bias, y, yc, b1 - b0, j->S, j->I, j->H, j->D, s);
    else mn_gru_f32(j->k, x, j->W, j->R, j->bias, y, b1 - b0, j->S, j->I, j->H, j->D, j->lbr, s);
}

void mn_par_recurrent_f32(mn_pool *pool, const mn_kernel_table *k, int32_t gates, const float *x, const float *W, const float *R, const float *bias,
                          float *y, float *yc, int64_t batch, int64_t S, int64_t I, int64_t H, int64_t D, int32_t linear_before_reset,
                          float *scratch) {
    recurrent_job j = {k, gates, linear_before_reset, 1, x, W, R, bias, y, yc, scratch, batch, S, I, H, D};
    const int64_t macs = batch * S * D * gates * H * (I + H);
    if (pool && batch >= 2 && macs >= MN_PARALLEL_MIN_MACS / 4) {
        const int32_t threads = mn_pool_threads(pool);
        j.parts = batch < threads ? (int32_t)batch : threads;
    }
    if (j.parts == 1) { recurrent_task(&j, 0); return; }
    mn_pool_run(pool, recurrent_task, &j, j.parts);
}

// ---- row-split element-wise and row ops ----

/// Element-wise work is cheap per element: split only above this many elements (tens of
/// microseconds of exp or normalization), so waking a worker pays for itself.
#define MN_PARALLEL_MIN_ELEMENTS (1 << 15)

typedef struct {
    const mn_kernel_table *k;
    int32_t op, flags;  // flags: softmax (1 log, 2 NaN to zero)
    const float *x, *x2, *gamma, *beta;
    float *y;
    float p0, p1, eps;
    int64_t rows, cols;
    int32_t parts;
} rows_job;

static int32_t parts_for_elements(mn_pool *pool, int64_t rows, int64_t cols) {
    if (!pool || rows < 2 || rows * cols < MN_PARALLEL_MIN_ELEMENTS) return 1;
    const int32_t threads = mn_pool_threads(pool);
    return rows < threads ? (int32_t)rows : threads;
}

static void unary_task(void *ctx, int32_t t) {
    const rows_job *j = (const rows_job *)ctx;
    const int64_t r0 = j->rows * t / j->parts, r1 = j->rows * (t + 1) / j->parts;
    j->k->unary_f32(j->op, j->x + r0 * j->cols, j->y + r0 * j->cols, (r1 - r0) * j->cols, j->p0, j->p1);
}

void mn_par_unary_f32(mn_pool *pool, const mn_kernel_table *k, int32_t op, const float *x, float *y, int64_t n, float p0,
                      float p1) {
    // Rows of 64 elements: every element's result is independent of where a chunk starts.
    rows_job j = {.k = k, .op = op, .x = x, .y = y, .p0 = p0, .p1 = p1, .rows = n / 64, .cols = 64};
    j.parts = parts_for_elements(pool, j.rows, 64);
    if (j.parts == 1) { k->unary_f32(op, x, y, n, p0, p1); return; }
    mn_pool_run(pool, unary_task, &j, j.parts);
    if (n % 64) k->unary_f32(op, x + j.rows * 64, y + j.rows * 64, n % 64, p0, p1);
}

// Softmax of rows [r0, r1), then (flag 2) NaN -> 0 over them while they are still in cache, in
// blocks of 64 rows.
static void softmax_rows(const mn_kernel_table *k, const float *x, float *y, int64_t r0, int64_t r1, int64_t cols, int32_t flags) {
    for (int64_t r = r0; r < r1; r += 64) {
        const int64_t n = r1 - r < 64 ? r1 - r : 64;
        k->softmax_f32(x + r * cols, y + r * cols, n, cols, flags & 1);
        if (flags & 2) {
            float *v = y + r * cols;
            for (int64_t i = 0; i < n * cols; i++) v[i] = v[i] != v[i] ? 0.f : v[i];
        }
    }
}

static void softmax_task(void *ctx, int32_t t) {
    const rows_job *j = (const rows_job *)ctx;
    softmax_rows(j->k, j->x, j->y, j->rows * t / j->parts, j->rows * (t + 1) / j->parts, j->cols, j->flags);
}

void mn_par_softmax_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, float *y, int64_t rows, int64_t cols,
                        int32_t flags) {
    rows_job j = {.k = k, .flags = flags, .x = x, .y = y, .rows = rows, .cols = cols};
    j.parts = parts_for_elements(pool, rows, cols);
    if (j.parts == 1) { softmax_rows(k, x, y, 0, rows, cols, flags); return; }
    mn_pool_run(pool, softmax_task, &j, j.parts);
}

// Scaled, masked softmax of rows [r0, r1), in runs of rows that share (i0, i1): within a run the
// mask moves by its third stride, so the table's kernel takes the run whole (log-softmax: the
// reference row, then the table's log-softmax in place). Then NaN -> 0 as softmax_rows does.
static void softmax_masked_rows(const mn_kernel_table *k, const mn_softmax_masked_args *a, int64_t r0, int64_t r1) {
    const int64_t cols = a->cols, d1 = a->dims[1], d2 = a->dims[2];
    const int64_t *ms = a->mask_strides;
    int64_t i2 = r0 % d2, i1 = (r0 / d2) % d1, i0 = r0 / (d2 * d1);
    for (int64_t row = r0; row < r1;) {
        const int64_t run = d2 - i2 < r1 - row ? d2 - i2 : r1 - row;
        const float *x = a->x + row * cols;
        const float *m = a->mask + i0 * ms[0] + i1 * ms[1] + i2 * ms[2];
        float *y = a->y + row * cols;
        if (a->flags & 1) {
            for (int64_t r = 0; r < run; r++) {
                const float *xr = x + r * cols, *mr = m + r * ms[2];
                float *yr = y + r * cols;
                for (int64_t c = 0; c < cols; c++)
                    yr[c] = (a->scale_op == 2 ? xr[c] * a->scale : (a->scale_op == 3 ? xr[c] / a->scale : xr[c])) + mr[c];
                k->softmax_f32(yr, yr, 1, cols, 1);
            }
        } else {
            k->softmax_masked_f32(x, m, ms[2], y, run, cols, a->scale_op, a->scale);
        }
        if (a->flags & 2) {
            for (int64_t i = 0; i < run * cols; i++) y[i] = y[i] != y[i] ? 0.f : y[i];
        }
        row += run;
        i2 += run;
        if (i2 == d2) {
            i2 = 0;
            if (++i1 == d1) { i1 = 0; i0++; }
        }
    }
}

typedef struct {
    const mn_kernel_table *k;
    const mn_softmax_masked_args *a;
    int64_t rows;
    int32_t parts;
} softmax_masked_job;

static void softmax_masked_task(void *ctx, int32_t t) {
    const softmax_masked_job *j = (const softmax_masked_job *)ctx;
    softmax_masked_rows(j->k, j->a, j->rows * t / j->parts, j->rows * (t + 1) / j->parts);
}

void mn_par_softmax_masked_f32(mn_pool *pool, const mn_kernel_table *k, const mn_softmax_masked_args *args) {
    softmax_masked_job j = {.k = k, .a = args, .rows = args->dims[0] * args->dims[1] * args->dims[2]};
    j.parts = parts_for_elements(pool, j.rows, args->cols);
    if (j.parts == 1) { softmax_masked_rows(k, args, 0, j.rows); return; }
    mn_pool_run(pool, softmax_masked_task, &j, j.parts);
}

// im2col and pooling by samples: a sample's output reads only that sample, and each part's
// channels-last block moves stay inside its own rows (the kernel checks against its own ends).
typedef struct {
    const char *x;
    char *y;
    const int64_t *p;
    int64_t batch, x_sample, y_sample;  // bytes per sample
    int32_t elem, parts, im2col, int8;
    int8_t pad;
} window_job;

static void window_task(void *ctx, int32_t t) {
    const window_job *j = (const window_job *)ctx;
    const int64_t b0 = j->batch * t / j->parts, b1 = j->batch * (t + 1) / j->parts;
    if (b1 <= b0) return;
    const void *x = j->x + b0 * j->x_sample;
    void *y = j->y + b0 * j->y_sample;
    if (j->im2col) mn_im2col(x, y, j->elem, j->p, b1 - b0, j->pad);
    else if (j->int8) mn_pool_max_s8((const int8_t *)x, (int8_t *)y, j->p, b1 - b0);
    else mn_pool_f32((const float *)x, (float *)y, j->p, b1 - b0);
}

static void run_window(mn_pool *pool, window_job *j, int64_t y_elements) {
    j->parts = pool && j->batch >= 2 && y_elements >= MN_PARALLEL_MIN_ELEMENTS
        ? (int32_t)(j->batch < mn_pool_threads(pool) ? j->batch : mn_pool_threads(pool)) : 1;
    if (j->parts == 1) { window_task(j, 0); return; }
    mn_pool_run(pool, window_task, j, j->parts);
}

void mn_par_im2col(mn_pool *pool, const void *x, void *y, int32_t elem, const int64_t p[14], int64_t batch, int8_t pad_value) {
    const int64_t per_x = p[0] * p[1] * p[2], per_y = p[5] * p[6] * p[0] * p[3] * p[4];
    window_job j = {x, y, p, batch, per_x * elem, per_y * elem, elem, 1, 1, 0, pad_value};
    run_window(pool, &j, batch * per_y);
}

void mn_par_pool(mn_pool *pool, const void *x, void *y, int32_t int8, const int64_t p[14], int64_t batch) {
    const int64_t elem = int8 ? 1 : 4, per_x = p[1] * p[2] * p[3], per_y = p[1] * p[6] * p[7];
    window_job j = {x, y, p, batch, per_x * elem, per_y * elem, (int32_t)elem, 1, 0, int8, 0};
    run_window(pool, &j, batch * per_y);
}

// Implicit-GEMM convolutions by samples: each part widens its own samples into its own scratch.
typedef struct {
    const mn_kernel_table *k;
    const int8_t *x, *w;
    const int32_t *bias, *mult, *shift;
    int8_t *y;
    const int64_t *p;
    char *scratch;
    size_t scratch_bytes;
    int64_t batch, x_sample, y_sample;
    int32_t out_zp, qmin, qmax, N, parts;
    int8_t pad;
} conv_job;

static void conv_task(void *ctx, int32_t t) {
    const conv_job *j = (const conv_job *)ctx;
    const int64_t b0 = j->batch * t / j->parts, b1 = j->batch * (t + 1) / j->parts;
    if (b1 > b0)
        j->k->conv_s8(j->x + b0 * j->x_sample, j->w, j->bias, j->mult, j->shift, j->out_zp, j->qmin, j->qmax,
                      j->y + b0 * j->y_sample, j->p, j->N, b1 - b0, j->pad, j->scratch + (size_t)t * j->scratch_bytes);
}

void mn_par_conv_s8(mn_pool *pool, const mn_kernel_table *k, const int8_t *x, const int8_t *w, const int32_t *bias,
                    const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin, int32_t qmax, int8_t *y,
                    const int64_t p[14], int32_t N, int64_t batch, int8_t pad_value, void *scratch) {
    const int64_t pixels = p[5] * p[6], K = p[0] * p[3] * p[4];
    conv_job j = {k, x, w, bias, mult, shift, y, p, (char *)scratch, mn_conv_s8_scratch(p), batch, p[0] * p[1] * p[2],
                  pixels * N, out_zp, qmin, qmax, N, 1, pad_value};
    // Work counted as multiply-adds plus ~16 per output for the requantization, which is most of
    // a layer with few input channels (a first layer's K of 9); an eighth of the dense threshold,
    // since the samples split without any shared rows.
    if (pool && batch >= 2 && batch * pixels * N * (K + 16) >= MN_PARALLEL_MIN_MACS / 8)
        j.parts = (int32_t)(batch < mn_pool_threads(pool) ? batch : mn_pool_threads(pool));
    if (j.parts == 1) { conv_task(&j, 0); return; }
    mn_pool_run(pool, conv_task, &j, j.parts);
}

static void layer_norm_task(void *ctx, int32_t t) {
    const rows_job *j = (const rows_job *)ctx;
    const int64_t r0 = j->rows * t / j->parts, r1 = j->rows * (t + 1) / j->parts;
    j->k->layer_norm_f32(j->x + r0 * j->cols, j->x2 ? j->x2 + r0 * j->cols : NULL, j->gamma, j->beta, j->y + r0 * j->cols,
                         r1 - r0, j->cols, j->eps);
}

void mn_par_layer_norm_f32(mn_pool *pool, const mn_kernel_table *k, const float *x, const float *x2, const float *gamma,
                           const float *beta, float *y, int64_t rows, int64_t dim, float eps) {
    rows_job j = {.k = k, .x = x, .x2 = x2, .gamma = gamma, .beta = beta, .y = y, .eps = eps, .rows = rows, .cols = dim};
    j.parts = parts_for_elements(pool, rows, dim);
    if (j.parts == 1) { k->layer_norm_f32(x, x2, gamma, beta, y, rows, dim, eps); return; }
    mn_pool_run(pool, layer_norm_task, &j, j.parts);
}

// ---- element-wise arithmetic, layout copies and quantization, split by outer index ----

/// Parts for an op over `elements` values whose outer extent is `outer`.
static int32_t parts_for_outer(mn_pool *pool, int64_t outer, int64_t elements) {
    if (!pool || outer < 2 || elements < MN_PARALLEL_MIN_ELEMENTS) return 1;
    const int32_t threads = mn_pool_threads(pool);
    return outer < threads ? (int32_t)outer : threads;
}

typedef struct {
    int32_t op, parts, axis;
    const float *a, *b;
    float *y;
    const int64_t *as, *bs, *d;
    int64_t y_stride;  // output elements per index of the split axis
} binary_job;

static void binary_task(void *ctx, int32_t t) {
    const binary_job *j = (const binary_job *)ctx;
    const int64_t n = j->d[j->axis], i0 = n * t / j->parts, i1 = n * (t + 1) / j->parts;
    int64_t d[4] = {j->d[0], j->d[1], j->d[2], j->d[3]};
    d[j->axis] = i1 - i0;
    mn_binary_f32(j->op, j->a + i0 * j->as[j->axis], j->as, j->b + i0 * j->bs[j->axis], j->bs, j->y + i0 * j->y_stride, d);
}

void mn_par_binary_f32(mn_pool *pool, int32_t op, const float *a, const int64_t as[4], const float *b, const int64_t bs[4],
                       float *y, const int64_t d[4]) {
    // Split the outermost axis longer than 1: the output is dense, so a range of that axis is
    // one contiguous block of y, and every element is computed as unsplit.
    int32_t axis = 0;
    while (axis < 3 && d[axis] == 1) axis++;
    int64_t y_stride = 1;
    for (int32_t i = axis + 1; i < 4; i++) y_stride *= d[i];
    binary_job j = {op, parts_for_outer(pool, d[axis], d[axis] * y_stride), axis, a, b, y, as, bs, d, y_stride};
    if (j.parts == 1) { mn_binary_f32(op, a, as, b, bs, y, d); return; }
    mn_pool_run(pool, binary_task, &j, j.parts);
}

typedef struct {
    const char *x;
    char *y;
    int32_t elem, rank, parts;
    const int64_t *dims, *strides;
    int64_t offset, batch, x_batch_stride, y_sample;
} strided_job;

static void strided_task(void *ctx, int32_t t) {
    const strided_job *j = (const strided_job *)ctx;
    const int64_t b0 = j->batch * t / j->parts, b1 = j->batch * (t + 1) / j->parts;
    if (b1 > b0)
        mn_strided_copy(j->x + b0 * j->x_batch_stride * j->elem, j->y + b0 * j->y_sample * j->elem, j->elem, j->rank, j->dims,
                        j->strides, j->offset, b1 - b0, j->x_batch_stride);
}

void mn_par_strided_copy(mn_pool *pool, const void *x, void *y, int32_t elem, int32_t rank, const int64_t dims[6],
                         const int64_t strides[6], int64_t offset, int64_t batch, int64_t x_batch_stride) {
    int64_t per = 1;
    for (int32_t i = 0; i < rank; i++) per *= dims[i];
    strided_job j = {(const char *)x, (char *)y, elem, rank, parts_for_outer(pool, batch, batch * per), dims, strides, offset,
                     batch, x_batch_stride, per};
    if (j.parts == 1) { mn_strided_copy(x, y, elem, rank, dims, strides, offset, batch, x_batch_stride); return; }
    mn_pool_run(pool, strided_task, &j, j.parts);
}

typedef struct {
    const mn_kernel_table *k;
    const float *x;
    int8_t *q;
    int64_t n;
    float scale;
    int32_t zp, parts;
} quantize_job;

static void quantize_task(void *ctx, int32_t t) {
    const quantize_job *j = (const quantize_job *)ctx;
    // Chunks of 64 values: each value is quantized by itself, so the split changes no byte.
    const int64_t blocks = (j->n + 63) / 64, c0 = blocks * t / j->parts * 64, c1 = blocks * (t + 1) / j->parts * 64;
    const int64_t end = c1 < j->n ? c1 : j->n;
    if (end > c0) j->k->quantize_s8(j->x + c0, j->q + c0, end - c0, j->scale, j->zp);
}

void mn_par_quantize_s8(mn_pool *pool, const mn_kernel_table *k, const float *x, int8_t *q, int64_t n, float scale, int32_t zp) {
    quantize_job j = {k, x, q, n, scale, zp, parts_for_outer(pool, (n + 63) / 64, n)};
    if (j.parts == 1) { k->quantize_s8(x, q, n, scale, zp); return; }
    mn_pool_run(pool, quantize_task, &j, j.parts);
}

// ---- the default thread count ----

uint64_t mn_monotonic_ns(void) { return now_ns(); }

int32_t mn_physical_cores(void) {
    int32_t logical = 1;
#if defined(__linux__)
    cpu_set_t allowed;
    int affinity = sched_getaffinity(0, sizeof allowed, &allowed) == 0;
    logical = affinity ? CPU_COUNT(&allowed) : (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (logical < 1) logical = 1;
    // Distinct (package, core) pairs among the CPUs this process may run on: SMT siblings count
    // once, as ONNX Runtime's default intra-op pool counts them.
    enum { MAX_CPUS = 1024 };
    int64_t seen[MAX_CPUS];
    int32_t cores = 0, read_any = 0;
    for (int cpu = 0; cpu < MAX_CPUS && cpu < CPU_SETSIZE; cpu++) {
        if (affinity && !CPU_ISSET(cpu, &allowed)) continue;
        char path[96];
        long core = -1, package = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%ld", &core) != 1) core = -1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        if ((f = fopen(path, "r"))) { if (fscanf(f, "%ld", &package) != 1) package = 0; fclose(f); }
        if (core < 0) continue;
        read_any = 1;
        const int64_t key = (int64_t)package << 32 | (int64_t)core;
        int32_t known = 0;
        for (int32_t i = 0; i < cores && !known; i++) known = seen[i] == key;
        if (!known && cores < MAX_CPUS) seen[cores++] = key;
    }
    if (read_any && cores >= 1 && cores <= logical) return cores;
#endif
    return logical;
}
