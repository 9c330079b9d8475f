// Each kernel-table entry on the shapes Minnow's models give it, timed on every table this CPU
// runs, side by side in one process (interleaved, best of 9 rounds): the evidence that an
// ISA-specific entry earns its place over the table below it (docs/benchmarks.md, "Kernel tables").
//
//   cc -O3 -ffp-contract=off -ISources/MinnowKernels/include -o /tmp/kernel_entries \
//      tools/compare/kernel_entries.c Sources/MinnowKernels/*.c -lm -lpthread && /tmp/kernel_entries
//
// Prints a markdown table: entry, shape, microseconds per call on each table, and each table's
// speed over the one below it. Inputs are fixed pseudo-random data; results are not checked here
// (KernelConformanceTests and SIMDKernelTests do that).
#include "minnow_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t seed = 88172645463325252ull;
static uint32_t rnd(void) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return (uint32_t)seed; }
static void *fill(size_t bytes) {
    uint8_t *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)(rnd() % 64);  // small values: floats stay finite
    return p;
}

typedef struct {
    const char *entry, *shape;
    int kind;  // see run()
    int M, K, N;
    int64_t p[14];
} bench_case;

// Per-table state of one case: packed weights and buffers.
typedef struct {
    int8_t *x8, *w8, *y8, *xq;
    float *xf, *wf, *yf, *sf, *bf;
    int32_t *bias, *wsum, *mult, *shift;
    void *scratch;
} bufs;

static void setup(const mn_kernel_table *t, const bench_case *c, bufs *b) {
    const size_t M = c->M, K = c->K, N = c->N;
    // Every buffer large enough for any case (conv images and outputs exceed M x K / M x N).
    const size_t big = ((M * K + M * N + 8 * K) * 4 + ((size_t)1 << 22) + 63) & ~(size_t)63;
    b->x8 = fill(big); b->y8 = fill(big); b->xq = fill(big);
    b->xf = fill(big); b->yf = fill(big); b->wf = fill(big);
    for (size_t i = 0; i < big / 4; i++) b->xf[i] = (float)((int)(rnd() % 2001) - 1000) / 300.f;
    for (size_t i = 0; i < big / 4; i++) b->wf[i] = (float)((int)(rnd() % 2001) - 1000) / 3000.f;
    b->sf = fill(4 * N + 64); b->bf = fill(4 * N + 64);
    for (size_t i = 0; i < N; i++) { b->sf[i] = 1e-3f; b->bf[i] = 0.1f; }
    b->bias = calloc(N + 16, 4); b->wsum = calloc(N + 16, 4); b->mult = calloc(N + 16, 4); b->shift = calloc(N + 16, 4);
    for (size_t n = 0; n < N; n++) mn_quantize_multiplier(2e-4, &b->mult[n], &b->shift[n]);
    int8_t *w = fill(N * K + 64);
    for (size_t i = 0; i < N * K; i++) { w[i] = (int8_t)((int)(rnd() % 255) - 127); b->wsum[i / K] += w[i]; }
    if (c->kind == 8 && t->conv_s8_pack) {
        b->w8 = aligned_alloc(64, (t->conv_s8_packed_size(c->p, c->N) + 63) & ~(size_t)63);
        t->conv_s8_pack(w, b->w8, c->p, c->N);
        b->scratch = aligned_alloc(64, (mn_conv_s8_scratch(c->p) + 63) & ~(size_t)63);
    } else if (t->pack_s8) {
        b->w8 = aligned_alloc(64, (t->packed_s8_size(c->K, c->N) + 63) & ~(size_t)63);
        t->pack_s8(w, b->w8, c->K, c->N);
    } else {
        b->w8 = w;
    }
}

static void run(const mn_kernel_table *t, const bench_case *c, bufs *b) {
    const mn_activation none = {0, 0, 0, 0}, relu = {1, 0, 0, 0};
    switch (c->kind) {
    case 0: t->dense_s8(b->x8, b->w8, b->bias, b->wsum, b->mult, b->shift, 0, -128, 127, b->y8, c->M, c->K, c->N); break;
    case 1: t->dense_s8_f32(b->x8, b->w8, b->bias, b->wsum, b->sf, b->yf, c->M, c->K, c->N, relu); break;
    case 2: t->dense_dyn(b->xf, b->w8, b->wsum, b->sf, b->bf, b->yf, b->xq, c->M, c->K, c->N, none); break;
    case 3: t->quantize_s8(b->xf, b->x8, (int64_t)c->M * c->K, 0.02f, 3); break;
    case 4: t->softmax_f32(b->xf, b->yf, c->M, c->K, 0); break;
    case 5: t->unary_f32(c->N, b->xf, b->yf, (int64_t)c->M * c->K, 0, 0); break;  // N: the op
    case 6: t->gemm_f32(b->xf, c->K, b->wf, c->p[0] ? c->K : c->N, (int32_t)c->p[0], NULL, b->yf, c->N, c->M, c->N, c->K, 0); break;
    case 7: memcpy(b->yf, b->xf, 4 * 4 * (size_t)c->K); t->lstm_cell_f32(b->yf, b->xf + 4 * c->K, b->yf + 4 * c->K, c->K); break;
    case 8: t->conv_s8(b->x8, b->w8, b->bias, b->mult, b->shift, 0, -128, 127, b->y8, c->p, c->N, c->M, -3, b->scratch); break;
    case 9: t->softmax_masked_f32(b->xf, b->wf, 0, b->yf, c->M, c->K, 2, 0.125f); break;  // one mask row for all rows
    case 10: {  // the same as three ops, as a graph runs them unfused: Mul, Add (portable), the table's softmax
        const int64_t d[4] = {1, 1, c->M, c->K}, xs[4] = {0, 0, c->K, 1}, ss[4] = {0, 0, 0, 0}, ms[4] = {0, 0, 0, 1};
        const float s = 0.125f;
        mn_binary_f32(2, b->xf, xs, &s, ss, b->yf, d);
        mn_binary_f32(0, b->yf, xs, b->wf, ms, b->yf, d);
        t->softmax_f32(b->yf, (float *)b->y8, c->M, c->K, 0);
        break;
    }
    }
}

int main(void) {
    // Shapes from the fixtures (ctr/dlrm MLPs, bst attention, bilstm, cnn) and all-MiniLM-L6-v2 at 128 tokens.
#define CONV(C, H, KH, N, B) {C, H, H, KH, KH, H, H, 1, 1, 1, 1, 1, 1, 1}
    const bench_case cases[] = {
        {"dense_s8", "M=1 K=30 N=64 (ctr, batch 1)", 0, 1, 30, 64, {0}},
        {"dense_s8", "M=64 K=256 N=128 (dlrm top MLP)", 0, 64, 256, 128, {0}},
        {"dense_s8", "M=128 K=384 N=1536 (MiniLM FFN up)", 0, 128, 384, 1536, {0}},
        {"dense_s8_f32", "M=64 K=64 N=10 (logits)", 1, 64, 64, 10, {0}},
        {"dense_dyn", "M=1 K=384 N=384", 2, 1, 384, 384, {0}},
        {"dense_dyn", "M=128 K=384 N=384 (MiniLM q/k/v/o)", 2, 128, 384, 384, {0}},
        {"dense_dyn", "M=128 K=1536 N=384 (MiniLM FFN down)", 2, 128, 1536, 384, {0}},
        {"quantize_s8", "n=49152", 3, 128, 384, 1, {0}},
        {"softmax_f32", "rows=1536 cols=128 (MiniLM scores)", 4, 1536, 128, 1, {0}},
        {"softmax_f32", "rows=204 cols=51 (bst scores)", 4, 204, 51, 1, {0}},
        {"softmax_masked_f32", "rows=1536 cols=128 (MiniLM: scale, mask, softmax fused)", 9, 1536, 128, 1, {0}},
        {"mul + add + softmax_f32", "rows=1536 cols=128 (the same as three ops)", 10, 1536, 128, 1, {0}},
        {"softmax_masked_f32", "rows=204 cols=51 (bst: scale, mask, softmax fused)", 9, 204, 51, 1, {0}},
        {"mul + add + softmax_f32", "rows=204 cols=51 (the same as three ops)", 10, 204, 51, 1, {0}},
        {"unary_f32", "GELU n=196608 (MiniLM FFN)", 5, 128, 1536, 10, {0}},
        {"unary_f32", "sigmoid n=4096", 5, 1, 4096, 2, {0}},
        {"gemm_f32", "M=128 N=128 K=32 (scores, B [K, N])", 6, 128, 32, 128, {0}},
        {"gemm_f32", "M=128 N=32 K=128 (context)", 6, 128, 128, 32, {0}},
        {"gemm_f32", "M=51 N=51 K=32 (bst scores)", 6, 51, 32, 51, {0}},
        {"gemm_f32", "M=1280 N=192 K=32 (bilstm input projection, weights [N, K])", 6, 1280, 32, 192, {1}},
        {"lstm_cell_f32", "H=48 (bilstm)", 7, 1, 48, 1, {0}},
        {"lstm_cell_f32", "H=256", 7, 1, 256, 1, {0}},
        {"conv_s8", "8x8x1 3x3 N=8 batch 64 (cnn conv1)", 8, 64, 9, 8, CONV(1, 8, 3, 8, 64)},
        {"conv_s8", "8x8x8 3x3 N=16 batch 64 (cnn conv2)", 8, 64, 72, 16, CONV(8, 8, 3, 16, 64)},
        {"conv_s8", "16x16x16 3x3 N=32 batch 8", 8, 8, 144, 32, CONV(16, 16, 3, 32, 8)},
    };
    const int ncases = sizeof cases / sizeof cases[0];
    const mn_kernel_table *tables[8];
    const char *names[8];
    int nt = 0;
    for (int32_t i = 1; i < mn_kernel_table_count(); i++)  // the SIMD tables (the reference is not a contender)
        if (mn_kernel_table_at(i)) { tables[nt] = mn_kernel_table_at(i); names[nt++] = mn_kernel_table_name(i); }
    printf("| entry | shape |");
    for (int t = 0; t < nt; t++) printf(" %s us |", names[t]);
    for (int t = 1; t < nt; t++) printf(" %s / %s speed |", names[t], names[t - 1]);
    printf("\n|---|---|");
    for (int t = 0; t < 2 * nt - 1; t++) printf("---|");
    printf("\n");
    for (int c = 0; c < ncases; c++) {
        bufs b[8];
        double best[8];
        for (int t = 0; t < nt; t++) { setup(tables[t], &cases[c], &b[t]); best[t] = 1e30; }
        const bench_case *bc = &cases[c];
        for (int round = 0; round < 9; round++)
            for (int t = 0; t < nt; t++) {
                if (bc->kind == 8 && !tables[t]->conv_s8) continue;
                run(tables[t], bc, &b[t]);  // warm
                int reps = 0;
                double t0 = now(), d;
                do { run(tables[t], bc, &b[t]); reps++; } while ((d = now() - t0) < 0.02);
                if (d / reps < best[t]) best[t] = d / reps;
            }
        printf("| %s | %s |", bc->entry, bc->shape);
        for (int t = 0; t < nt; t++) printf(" %.2f |", best[t] * 1e6);
        for (int t = 1; t < nt; t++) printf(" %.2fx |", best[t - 1] / best[t]);
        printf("\n");
    }
    return 0;
}
