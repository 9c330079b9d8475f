// The int8 Dense ops, written once for every x86 table: what the exact dot products of an ISA's
// GEMM (s8_gemm_fn, x86_internal.h) become. Static int8 requantizes them (TFLite's fixed point,
// bit-identical to the scalar `requantize`), int8 -> fp32 scales them, dynamic mode quantizes each
// row on its own (row_range's rule and row_params, shared with the reference) and corrects for its zero
// point.
// The vector epilogues are AVX2, which every x86 table's host has; column tails and multipliers
// >= 1 take the shared scalar code. Unsafe pointer code: shapes were validated at session creation.
#include "minnow_kernels.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_internal.h"

AVX2 void mn_s8_requant_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_ROWS_MAX][S8_NR]) {
    const s8_requant_ctx *c = (const s8_requant_ctx *)p;
    int positive_shift = 0;
    for (int32_t j = 0; j < cols; j++) positive_shift |= c->shift[n0 + j] > 0;
    const __m256i vzp = _mm256_set1_epi32(c->out_zp), vmin = _mm256_set1_epi32(c->qmin), vmax = _mm256_set1_epi32(c->qmax);
    if (!positive_shift && (cols == 8 || cols == S8_NR)) {
        // Whole halves: each row narrowed at once (one store of 8 or 16 bytes).
        const int H = cols / 8;
        const requant_cols q = load_requant_cols(c, n0, H);
        for (int r = 0; r < rows; r++)
            requant_store_row(c, &q, H, _mm256_loadu_si256((const __m256i *)acc[r]), _mm256_loadu_si256((const __m256i *)(acc[r] + 8)),
                              c->y + (m + r) * c->N + n0);
        return;
    }
    for (int32_t h = 0; h < cols; h += 8) {
        if (positive_shift || cols - h < 8) {
            // Column tails and multipliers >= 1 (the saturating left shift): the shared scalar epilogue.
            for (int r = 0; r < rows; r++)
                for (int32_t j = h; j < cols && j < h + 8; j++)
                    c->y[(m + r) * c->N + n0 + j] =
                        requantize(c->bias[n0 + j] + acc[r][j], c->mult[n0 + j], c->shift[n0 + j], c->out_zp, c->qmin, c->qmax);
            continue;
        }
        const __m256i vmult = _mm256_loadu_si256((const __m256i *)(c->mult + n0 + h));
        const __m256i vshift = _mm256_loadu_si256((const __m256i *)(c->shift + n0 + h));
        const __m256i vbias = _mm256_loadu_si256((const __m256i *)(c->bias + n0 + h));
        for (int r = 0; r < rows; r++) {
            const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc[r] + h)), vbias);
            __m256i out = _mm256_add_epi32(requant8(v, vmult, vshift), vzp);
            out = _mm256_min_epi32(_mm256_max_epi32(out, vmin), vmax);
            // Narrow eight int32 (already in [-128, 127]) to bytes.
            const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(out), _mm256_extracti128_si256(out, 1));
            _mm_storel_epi64((__m128i *)(c->y + (m + r) * c->N + n0 + h), _mm_packs_epi16(w16, w16));
        }
    }
}

/// mn_s8_requant_epilogue at 16 lanes: a block's row in one masked vector, for multipliers below 1
/// (the others take the AVX2 function's scalar path). The same steps per lane, so the same bits.
AVX512 static void s8_requant_epilogue_avx512(void *p, int64_t m, int rows, int32_t n0, int32_t cols,
                                             int32_t acc[S8_ROWS_MAX][S8_NR]) {
    const s8_requant_ctx *c = (const s8_requant_ctx *)p;
    const __mmask16 lanes = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __m512i shift = _mm512_maskz_loadu_epi32(lanes, c->shift + n0);
    if (_mm512_mask_cmpgt_epi32_mask(lanes, shift, _mm512_setzero_si512())) { mn_s8_requant_epilogue(p, m, rows, n0, cols, acc); return; }
    const __m512i mult = _mm512_maskz_loadu_epi32(lanes, c->mult + n0), bias = _mm512_maskz_loadu_epi32(lanes, c->bias + n0);
    const __m512i zp = _mm512_set1_epi32(c->out_zp), lo = _mm512_set1_epi32(c->qmin), hi = _mm512_set1_epi32(c->qmax);
    for (int r = 0; r < rows; r++) {
        const __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(lanes, acc[r]), bias);
        const __m512i out = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(requant16(v, mult, shift), zp), lo), hi);
        _mm_mask_storeu_epi8(c->y + (m + r) * c->N + n0, lanes, _mm512_cvtsepi32_epi8(out));
    }
}

s8_epilogue_fn mn_s8_requant_epilogue_for(int avx512) { return avx512 ? s8_requant_epilogue_avx512 : mn_s8_requant_epilogue; }

void mn_x86_dense_s8(s8_gemm_fn gemm, s8_epilogue_fn epilogue, const int8_t *x, const int8_t *w, const int32_t *bias,
                     const int32_t *wsum, const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t qmin,
                     int32_t qmax, int8_t *y, int32_t M, int32_t K, int32_t N) {
    s8_requant_ctx c = {bias, mult, shift, out_zp, qmin, qmax, N, y};
    gemm(x, w, wsum, M, K, N, epilogue, &c);
}

typedef struct {
    const int32_t *bias;
    const float *scale;
    float *y;
    int32_t N;
    mn_activation act;
} s8_float_ctx;

AVX2 static void s8_float_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_ROWS_MAX][S8_NR]) {
    const s8_float_ctx *c = (const s8_float_ctx *)p;
    const int vector_act = c->act.kind == 0 || c->act.kind == 1;
    for (int32_t h = 0; h < cols; h += 8) {
        if (!vector_act || cols - h < 8) {
            for (int r = 0; r < rows; r++)
                for (int32_t j = h; j < cols && j < h + 8; j++)
                    c->y[(m + r) * c->N + n0 + j] = apply_act((float)(c->bias[n0 + j] + acc[r][j]) * c->scale[n0 + j], c->act);
            continue;
        }
        // The same int32 sum, one rounding int -> float, one multiply, then max(., 0) for relu
        // (max turns -0 into +0, as v > 0 ? v : 0 does).
        const __m256i vbias = _mm256_loadu_si256((const __m256i *)(c->bias + n0 + h));
        const __m256 vscale = _mm256_loadu_ps(c->scale + n0 + h);
        for (int r = 0; r < rows; r++) {
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc[r] + h)), vbias)), vscale);
            if (c->act.kind == 1) f = _mm256_max_ps(f, _mm256_setzero_ps());
            _mm256_storeu_ps(c->y + (m + r) * c->N + n0 + h, f);
        }
    }
}

void mn_x86_dense_s8_f32(s8_gemm_fn gemm, const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *wsum,
                         const float *scale, float *y, int32_t M, int32_t K, int32_t N, mn_activation act) {
    s8_float_ctx c = {bias, scale, y, N, act};
    gemm(x, w, wsum, M, K, N, s8_float_epilogue, &c);
}

// Dynamic mode: rows are quantized a chunk at a time (each with its own scale and zero point) so
// the GEMM sees whole row blocks and streams the weights once per block, not once per row. Up to
// 64 rows, in multiples of 32 where K allows (the AMX GEMM's 32-row block of two 16-row tiles;
// VNNI's 8-row blocks divide it), in 64 KiB of stack.
enum { DYN_CHUNK_ROWS = 64, DYN_CHUNK_BYTES = 64 * 1024 };

typedef struct {
    const int32_t *wsum;
    const float *wscale, *bias;
    float *y;
    const float *s;      // per row of the chunk
    const int32_t *zp;   // per row of the chunk
    int32_t N;
    mn_activation act;
} s8_dyn_ctx;

AVX2 static void s8_dyn_epilogue(void *p, int64_t m, int rows, int32_t n0, int32_t cols, int32_t acc[S8_ROWS_MAX][S8_NR]) {
    const s8_dyn_ctx *c = (const s8_dyn_ctx *)p;
    // Whole 8-column halves take the vector steps (activations none and relu); the columns past
    // them, and other activations, dynamic_epilogue. The halves' column constants are loaded once
    // per block, not once per row: per-row reloads and branches took more time than the math.
    const int H = c->act.kind == 0 || c->act.kind == 1 ? cols / 8 : 0, relu = c->act.kind == 1;
    __m256i wsum[2];
    __m256 wscale[2], bias[2];
    for (int h = 0; h < H; h++) {
        const int32_t n = n0 + 8 * h;
        wsum[h] = _mm256_loadu_si256((const __m256i *)(c->wsum + n));
        wscale[h] = _mm256_loadu_ps(c->wscale + n);
        bias[h] = c->bias ? _mm256_loadu_ps(c->bias + n) : _mm256_setzero_ps();
    }
    for (int r = 0; r < rows; r++) {
        const float s = c->s[m + r];
        const int32_t zp = c->zp[m + r];
        float *yr = c->y + (m + r) * c->N + n0;
        const __m256i vzp = _mm256_set1_epi32(zp);
        const __m256 vs = _mm256_set1_ps(s);
        for (int h = 0; h < H; h++) {
            // dynamic_epilogue's steps in its order: acc - zp wsum (int32), one rounding to float,
            // times (s * wscale) rounded first, plus bias (no FMA; + 0 without one, as there),
            // then max(., 0) for relu.
            const __m256i v = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(acc[r] + 8 * h)), _mm256_mullo_epi32(vzp, wsum[h]));
            __m256 f = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(vs, wscale[h])), bias[h]);
            if (relu) f = _mm256_max_ps(f, _mm256_setzero_ps());
            _mm256_storeu_ps(yr + 8 * h, f);
        }
        for (int32_t j = 8 * H; j < cols; j++) {
            const int32_t n = n0 + j;
            yr[j] = dynamic_epilogue(acc[r][j], zp, c->wsum[n], s, c->wscale[n], c->bias ? c->bias[n] : 0.f, c->act);
        }
    }
}

/// s8_dyn_epilogue at 16 lanes for the AVX-512 tables: a block's row in one masked vector (no
/// scalar tail). The same steps in the same order on each lane, so the same bits as the AVX2 one.
/// Activations other than none and relu take the AVX2 function's scalar path.
AVX512 static void s8_dyn_epilogue_avx512(void *p, int64_t m, int rows, int32_t n0, int32_t cols,
                                          int32_t acc[S8_ROWS_MAX][S8_NR]) {
    const s8_dyn_ctx *c = (const s8_dyn_ctx *)p;
    if (c->act.kind != 0 && c->act.kind != 1) { s8_dyn_epilogue(p, m, rows, n0, cols, acc); return; }
    const __mmask16 lanes = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __m512i wsum = _mm512_maskz_loadu_epi32(lanes, c->wsum + n0);
    const __m512 wscale = _mm512_maskz_loadu_ps(lanes, c->wscale + n0);
    const __m512 bias = c->bias ? _mm512_maskz_loadu_ps(lanes, c->bias + n0) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        const __m512i v = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(lanes, acc[r]),
                                           _mm512_mullo_epi32(_mm512_set1_epi32(c->zp[m + r]), wsum));
        const __m512 sw = _mm512_mul_ps(_mm512_set1_ps(c->s[m + r]), wscale);
        __m512 f = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), sw), bias);
        if (c->act.kind == 1) f = _mm512_max_ps(f, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(c->y + (m + r) * c->N + n0, lanes, f);
    }
}

s8_epilogue_fn mn_s8_dyn_epilogue(int avx512) { return avx512 ? s8_dyn_epilogue_avx512 : s8_dyn_epilogue; }

/// row_range eight lanes at a time: minps/maxps keep their second operand (the running value)
/// when x is NaN, and lanes start at +0 as the scalar does, so lo and hi are the same two values.
/// Four accumulators each, so the loop runs at load speed instead of min/max latency; none of
/// them ever holds a NaN, so folding them (and their lanes) in any order gives the same bounds.
AVX2 static void row_range_avx2(const float *x, int32_t K, float *lo_out, float *hi_out) {
    __m256 lo[4], hi[4];
    for (int a = 0; a < 4; a++) lo[a] = hi[a] = _mm256_setzero_ps();
    int32_t k = 0;
    for (; k + 32 <= K; k += 32)
        for (int a = 0; a < 4; a++) {
            const __m256 v = _mm256_loadu_ps(x + k + 8 * a);
            lo[a] = _mm256_min_ps(v, lo[a]);
            hi[a] = _mm256_max_ps(v, hi[a]);
        }
    for (; k + 8 <= K; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        lo[0] = _mm256_min_ps(v, lo[0]);
        hi[0] = _mm256_max_ps(v, hi[0]);
    }
    const __m256 vlo = _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3]));
    const __m256 vhi = _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3]));
    __m128 l = _mm_min_ps(_mm256_castps256_ps128(vlo), _mm256_extractf128_ps(vlo, 1));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vhi), _mm256_extractf128_ps(vhi, 1));
    l = _mm_min_ps(l, _mm_movehl_ps(l, l));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    l = _mm_min_ss(l, _mm_shuffle_ps(l, l, 0x55));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 0x55));
    float rlo, rhi;
    row_range(x + k, K - k, &rlo, &rhi);
    const float vl = _mm_cvtss_f32(l), vh = _mm_cvtss_f32(h);
    *lo_out = vl < rlo ? vl : rlo;
    *hi_out = vh > rhi ? vh : rhi;
}

void mn_x86_dense_dyn(s8_gemm_fn gemm, s8_epilogue_fn epilogue, void (*quantize)(const float *, int8_t *, int64_t, float, int32_t),
                      const float *x, const int8_t *w, const int32_t *wsum, const float *wscale, const float *bias,
                      float *y, int8_t *xq, int32_t M, int32_t K, int32_t N, mn_activation act) {
    int8_t chunk_buf[DYN_CHUNK_BYTES] __attribute__((aligned(64)));
    float s[DYN_CHUNK_ROWS];
    int32_t zp[DYN_CHUNK_ROWS];
    int32_t chunk = K <= DYN_CHUNK_BYTES / DYN_CHUNK_ROWS ? DYN_CHUNK_ROWS : DYN_CHUNK_BYTES / K;
    if (chunk > 32) chunk &= ~31;
    int8_t *q = chunk_buf;
    if (chunk < 1) { chunk = 1; q = xq; }  // rows longer than the stack chunk: the caller's K bytes
    for (int32_t m0 = 0; m0 < M; m0 += chunk) {
        const int32_t rows = M - m0 < chunk ? M - m0 : chunk;
        // Ranges, then parameters, then quantization, each over the whole chunk: the rows are
        // independent, so one row's divides (row_params, 1/scale) overlap the others' work instead
        // of stalling every short row (K = 32 rows spend most of their time there).
        float lo[DYN_CHUNK_ROWS], hi[DYN_CHUNK_ROWS];
        for (int32_t r = 0; r < rows; r++) row_range_avx2(x + (int64_t)(m0 + r) * K, K, &lo[r], &hi[r]);
        for (int32_t r = 0; r < rows; r++) s[r] = row_params(lo[r], hi[r], &zp[r]);
        for (int32_t r = 0; r < rows; r++) quantize(x + (int64_t)(m0 + r) * K, q + (int64_t)r * K, K, s[r], zp[r]);
        s8_dyn_ctx c = {wsum, wscale, bias, y + (int64_t)m0 * N, s, zp, N, act};
        gemm(q, w, wsum, rows, K, N, epilogue, &c);
    }
}
#endif
