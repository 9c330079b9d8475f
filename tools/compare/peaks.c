// This host's arithmetic peaks on one core, measured: the denominators of the GEMM efficiency
// figures in docs/benchmarks.md (issue 20 asks for the peak and how it was found). Each loop
// issues twelve independent multiply-adds into twelve accumulators (more chains than any x86
// core's ports times latency), so it runs at the instruction's throughput; the clock is whatever
// the core turbos to under that load, which is the clock the kernels run at too.
//
//   cc -O2 -o /tmp/peaks tools/compare/peaks.c && /tmp/peaks
//
// Lines for instructions this CPU lacks say so instead of faulting. The exact int8 rate on AVX2
// is vpmaddwd's (int16 products, Minnow's AVX2 GEMM): vpmaddubsw would count twice the MACs per
// instruction but saturates its int16 pair sums, so it is shown for reference only.
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITERS 20000000L
#define R12(I, W) I " %%" W "14, %%" W "15, %%" W "0\n" I " %%" W "14, %%" W "15, %%" W "1\n" I " %%" W "14, %%" W "15, %%" W "2\n" \
    I " %%" W "14, %%" W "15, %%" W "3\n" I " %%" W "14, %%" W "15, %%" W "4\n" I " %%" W "14, %%" W "15, %%" W "5\n"                \
    I " %%" W "14, %%" W "15, %%" W "6\n" I " %%" W "14, %%" W "15, %%" W "7\n" I " %%" W "14, %%" W "15, %%" W "8\n"                \
    I " %%" W "14, %%" W "15, %%" W "9\n" I " %%" W "14, %%" W "15, %%" W "10\n" I " %%" W "14, %%" W "15, %%" W "11\n"
#define CLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15"

// Best of five runs of ITERS x 12 instructions: instructions per nanosecond.
#define RATE(out, ASM)                                                         \
    do {                                                                       \
        double best = 1e9;                                                     \
        for (int run = 0; run < 5; run++) {                                    \
            const double t = now();                                            \
            for (long i = 0; i < ITERS; i++) __asm__ volatile(ASM ::: CLOBBER); \
            const double dt = now() - t;                                       \
            if (dt < best) best = dt;                                          \
        }                                                                      \
        out = ITERS * 12 / best / 1e9;                                         \
    } while (0)

static void line(const char *what, double per_ns, int macs, const char *note) {
    printf("| %s | %.2f | %d | %.1f | %s |\n", what, per_ns, macs, per_ns * macs, note);
}

__attribute__((target("avx2,fma"))) static void avx2_rates(void) {
    double r;
    RATE(r, R12("vpmaddwd", "ymm"));
    line("`vpmaddwd ymm` (AVX2 int8, exact)", r, 16, "int8 peak of the avx2 table");
    RATE(r, R12("vpmaddubsw", "ymm"));
    line("`vpmaddubsw ymm` (saturating)", r, 32, "reference only: its int16 pair sums saturate");
    RATE(r, R12("vfmadd231ps", "ymm"));
    line("`vfmadd231ps ymm` (fp32)", r, 8, "float peak at 8 lanes");
}

__attribute__((target("avx512f,avx512vnni"))) static void vnni_rates(void) {
    double r;
    RATE(r, R12("vpdpbusd", "zmm"));
    line("`vpdpbusd zmm` (AVX-512 VNNI int8)", r, 64, "int8 peak of the avx512vnni table");
    RATE(r, R12("vfmadd231ps", "zmm"));
    line("`vfmadd231ps zmm` (fp32)", r, 16, "float peak at 16 lanes");
}

__attribute__((target("avx512f,avx512bf16"))) static void bf16_rates(void) {
    double r;
    RATE(r, R12("vdpbf16ps", "zmm"));
    line("`vdpbf16ps zmm` (bf16)", r, 32, "opt-in bf16 attention products");
}

int main(void) {
    printf("| instruction | per ns | MACs each | G MAC/s, one core | use |\n|---|---|---|---|---|\n");
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) avx2_rates();
    else printf("| AVX2 | - | - | - | not on this CPU |\n");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) vnni_rates();
    else printf("| AVX-512 VNNI | - | - | - | not on this CPU |\n");
    if (__builtin_cpu_supports("avx512bf16")) bf16_rates();
    else printf("| AVX512-BF16 | - | - | - | not on this CPU |\n");
    return 0;
}
