// The AMX (TMUL) int8 GEMM for large Dense layers: the default table on a CPU with AMX-INT8 whose
// kernel grants the tile data permission (MINNOW_AMX=0 opts out). Checked on Intel Sapphire
// Rapids: KernelConformanceTests, SIMDKernelTests (tile shapes included) and the oracle suites
// give the reference's bits (docs/benchmarks.md, "Intel Sapphire Rapids with AMX").
//
// Tiles: C0..C3 (tmm0-3) are 16x16 int32 accumulators of a 32-row x 32-column block; A0, A1
// (tmm4, 5) hold 16 rows x 64 bytes of x; B0, B1 (tmm6, 7) 16 k-groups x 16 columns x 4 bytes,
// which is exactly 16 consecutive 64-byte rows of a VNNI panel (mn_pack_s8_vnni's layout), here
// padded to whole tiles of 16 groups with zero weights. TDPBSSD multiplies signed by signed, so
// the sums are the exact signed dot products the shared epilogues want (no 128 * wsum term).
// Blocks with fewer than 16 rows or K below 64 go to the VNNI loop on the same packed weights.
// Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#include "x86_internal.h"
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))

enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

/// AMX-TILE and AMX-INT8 in CPUID leaf 7, no MINNOW_AMX=0, and Linux's permission to use tile
/// data (requested once for the whole process: every thread may then use the tiles).
int mn_amx_usable(void) {
    static int state = -1;  // -1 unknown; benign race: every thread computes the same answer
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    unsigned a, b, c, d;
    const char *opt = getenv("MINNOW_AMX");
    s = !(opt && opt[0] == '0') && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1) &&
        syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    return s;
}

static inline int32_t amx_groups(int32_t K) { return ((K + 3) / 4 + 15) & ~15; }

size_t mn_packed_s8_size_amx(int32_t K, int32_t N) { return (size_t)s8_blocks(N) * (size_t)amx_groups(K) * 64; }

/// mn_pack_s8_vnni's layout with each panel padded to whole 16-group tiles (zero weights).
void mn_pack_s8_amx(const int8_t *w, int8_t *packed, int32_t K, int32_t N) { mn_pack_s8_vnni_groups(w, packed, K, N, amx_groups(K)); }

typedef struct __attribute__((packed, aligned(64))) {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

/// Rows [m, m + rows) of x, bytes [k0, k0 + 64) (zero past K and past the rows), into 16 x 64.
static void copy_a_tile(const int8_t *x, int32_t K, int64_t m, int rows, int64_t k0, int8_t *tile) {
    memset(tile, 0, 16 * 64);
    const int64_t n = K - k0 < 64 ? K - k0 : 64;
    for (int r = 0; r < rows; r++) memcpy(tile + r * 64, x + (m + r) * K + k0, (size_t)n);
}

/// Hands a stored 16x16 tile's `rows` rows to the epilogue 8 at a time.
static void tile_epilogue(s8_epilogue_fn epilogue, void *ctx, int32_t c[16][16], int64_t m, int rows, int32_t n0, int32_t cols) {
    for (int r0 = 0; r0 < rows; r0 += S8_ROWS_MAX)
        epilogue(ctx, m + r0, rows - r0 < S8_ROWS_MAX ? rows - r0 : S8_ROWS_MAX, n0, cols, (int32_t(*)[S8_NR])c[r0]);
}

AMX void mn_gemm_s8_amx(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                        s8_epilogue_fn epilogue, void *ctx) {
    const int32_t groups = amx_groups(K), blocks = s8_blocks(N);
    const int64_t panel = (int64_t)groups * 64;
    if (M < 16 || K < 64) { mn_gemm_s8_vnni_panels(x, packed, panel, wsum, M, K, N, epilogue, ctx); return; }
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    int8_t a[2][16 * 64] __attribute__((aligned(64)));
    int32_t c[4][16][16] __attribute__((aligned(64)));
    for (int64_t m = 0; m < M; m += 32) {
        const int rows0 = M - m < 16 ? (int)(M - m) : 16;
        const int rows1 = M - m - 16 <= 0 ? 0 : (M - m - 16 < 16 ? (int)(M - m - 16) : 16);
        for (int32_t nb = 0; nb < blocks; nb += 2) {
            const int P = blocks - nb >= 2 ? 2 : 1;
            const int8_t *b0 = packed + nb * panel, *b1 = b0 + panel;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int32_t g0 = 0; g0 < groups; g0 += 16) {
                const int64_t k0 = 4 * (int64_t)g0;
                if (rows0 == 16 && k0 + 64 <= K) {
                    _tile_loadd(4, x + m * K + k0, K);
                } else {
                    copy_a_tile(x, K, m, rows0, k0, a[0]);
                    _tile_loadd(4, a[0], 64);
                }
                if (rows1 == 16 && k0 + 64 <= K) {
                    _tile_loadd(5, x + (m + 16) * K + k0, K);
                } else if (rows1 > 0) {
                    copy_a_tile(x, K, m + 16, rows1, k0, a[1]);
                    _tile_loadd(5, a[1], 64);
                }
                _tile_loadd(6, b0 + (int64_t)g0 * 64, 64);
                _tile_dpbssd(0, 4, 6);
                if (rows1 > 0) _tile_dpbssd(2, 5, 6);
                if (P == 2) {
                    _tile_loadd(7, b1 + (int64_t)g0 * 64, 64);
                    _tile_dpbssd(1, 4, 7);
                    if (rows1 > 0) _tile_dpbssd(3, 5, 7);
                }
            }
            const int32_t n0 = nb * 16, cols0 = N - n0 < 16 ? N - n0 : 16, cols1 = N - n0 - 16 < 16 ? N - n0 - 16 : 16;
            _tile_stored(0, c[0], 64);
            tile_epilogue(epilogue, ctx, c[0], m, rows0, n0, cols0);
            if (rows1 > 0) { _tile_stored(2, c[2], 64); tile_epilogue(epilogue, ctx, c[2], m + 16, rows1, n0, cols0); }
            if (P == 2) {
                _tile_stored(1, c[1], 64);
                tile_epilogue(epilogue, ctx, c[1], m, rows0, n0 + 16, cols1);
                if (rows1 > 0) { _tile_stored(3, c[3], 64); tile_epilogue(epilogue, ctx, c[3], m + 16, rows1, n0 + 16, cols1); }
            }
        }
    }
    _tile_release();
}

#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"
int mn_amx_usable(void) { return 0; }
size_t mn_packed_s8_size_amx(int32_t K, int32_t N) { (void)K; (void)N; return 0; }
void mn_pack_s8_amx(const int8_t *w, int8_t *packed, int32_t K, int32_t N) { (void)w; (void)packed; (void)K; (void)N; }
void mn_gemm_s8_amx(const int8_t *x, const int8_t *packed, const int32_t *wsum, int32_t M, int32_t K, int32_t N,
                    s8_epilogue_fn epilogue, void *ctx) {
    (void)x; (void)packed; (void)wsum; (void)M; (void)K; (void)N; (void)epilogue; (void)ctx;
}
#endif
