// LSTM and GRU (ONNX semantics, default activations, zero initial state), fp32, batch-first
// storage. The input projections of all time steps are computed up front with the float GEMM; the
// recurrence then adds R h per step. `scratch` holds (batch * S + 2 + H) * G * H floats.
#include "minnow_kernels.h"
#include <math.h>
#include <string.h>

// out [cols, rows] = in [rows, cols]^T: recurrent weights transposed once per call, so every
// step's product reads them in place (the GEMM's [K, N] layout) instead of repacking them.
static void transpose(const float *in, float *out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

static inline float sigm(float v) { return v >= 0.f ? 1.f / (1.f + expf(-v)) : expf(v) / (1.f + expf(v)); }

void mn_lstm_cell_f32(float *g, const float *c_prev, float *h, int64_t H) {
    for (int64_t k = 0; k < H; k++) {
        const float i = sigm(g[k]), o = sigm(g[H + k]), f = sigm(g[2 * H + k]), cand = tanhf(g[3 * H + k]);
        const float c = (c_prev ? f * c_prev[k] : 0.f) + i * cand;
        g[k] = c;
        h[k] = o * tanhf(c);
    }
}

// bias: [D, 4H], Wb + Rb summed at load. Every sample advances in lockstep, so each step's
// recurrent product is one GEMM over the batch (h of all samples times R^T) instead of a
// matrix-vector product per sample.
void mn_lstm_f32(const mn_kernel_table *kt, const float *x, const float *W, const float *R, const float *bias, float *y, float *yc,
                 int64_t batch, int64_t S, int64_t I, int64_t H, int64_t D, float *scratch) {
    const int64_t GH = 4 * H, yrow = D * H;
    float *gx = scratch;  // [batch * S, GH]: gate pre-activations, row b * S + t
    float *Rt = scratch + (batch * S + 2) * GH;  // [H, GH]: this direction's R transposed
    for (int64_t d = 0; d < D; d++) {
        const float *Wd = W + d * GH * I, *Bd = bias ? bias + d * GH : NULL;
        transpose(R + d * GH * H, Rt, GH, H);
        // Input projections of every sample and step at once: gx = x W^T + b.
        kt->gemm_f32(x, I, Wd, I, 1, Bd, gx, GH, batch * S, GH, I, 0);
        for (int64_t s = 0; s < S; s++) {
            const int64_t t = d == 0 ? s : S - 1 - s;  // the backward direction runs from the end
            const int64_t tp = d == 0 ? t - 1 : t + 1;  // the step before, in this direction
            if (s > 0) {
                // gates[b] += h_prev[b] R^T: h_prev is row tp of each sample's output (stride S * D * H).
                kt->gemm_f32(y + tp * yrow + d * H, S * yrow, Rt, GH, 0, NULL, gx + t * GH, S * GH, batch, GH, H, 1);
            }
            for (int64_t b = 0; b < batch; b++) {
                // ONNX gate order: input, output, forget, cell.
                float *g = gx + (b * S + t) * GH;
                float *h = y + (b * S + t) * yrow + d * H;
                // The previous cell state sits in the consumed input-gate slots of the row before.
                kt->lstm_cell_f32(g, s > 0 ? gx + (b * S + tp) * GH : NULL, h, H);
            }
        }
        // Y_c: this direction's last cell state (step S-1 forward, step 0 backward), before the
        // next direction's projections overwrite the gate rows that hold it.
        if (yc) {
            const int64_t last = d == 0 ? S - 1 : 0;
            for (int64_t b = 0; b < batch; b++) memcpy(yc + (b * D + d) * H, gx + (b * S + last) * GH, (size_t)H * sizeof(float));
        }
    }
}

void mn_gru_f32(const mn_kernel_table *kt, const float *x, const float *W, const float *R, const float *bias, float *y, int64_t batch, int64_t S,
                int64_t I, int64_t H, int64_t D, int32_t linear_before_reset, float *scratch) {
    const int64_t GH = 3 * H;
    float *gx = scratch, *gr = scratch + S * GH;
    float *Rt = scratch + (batch * S + 2) * GH;  // [H, GH]: R of the direction being run, transposed
    for (int64_t b = 0; b < batch; b++) {
        const float *xb = x + b * S * I;
        float *yb = y + b * S * D * H;
        for (int64_t d = 0; d < D; d++) {
            const float *Wd = W + d * GH * I;
            transpose(R + d * GH * H, Rt, GH, H);
            // bias: [D, 6H] = Wb (z, r, h) then Rb (z, r, h).
            const float *Wb = bias ? bias + d * 2 * GH : NULL, *Rb = bias ? bias + d * 2 * GH + GH : NULL;
            kt->gemm_f32(xb, I, Wd, I, 1, Wb, gx, GH, S, GH, I, 0);
            const float *hprev = NULL;
            for (int64_t s = 0; s < S; s++) {
                const int64_t t = d == 0 ? s : S - 1 - s;
                const float *g = gx + t * GH;
                float *h = yb + (t * D + d) * H;
                // Recurrent projections of z and r (and of h when linear_before_reset).
                if (hprev) kt->gemm_f32(hprev, H, Rt, GH, 0, Rb, gr, GH, 1, GH, H, 0);
                else for (int64_t r = 0; r < GH; r++) gr[r] = Rb ? Rb[r] : 0.f;
                for (int64_t k = 0; k < H; k++) {
                    const float z = sigm(g[k] + gr[k]), rg = sigm(g[H + k] + gr[H + k]);
                    float hh;
                    if (linear_before_reset) {
                        hh = tanhf(g[2 * H + k] + rg * gr[2 * H + k]);
                    } else {
                        // (r * h) R_h^T + Rb_h: needs r of every unit first, so done below.
                        hh = 0.f;
                    }
                    gr[GH + k] = z;  // z kept past the 3H recurrent values (scratch has room: G*H extra)
                    if (linear_before_reset) h[k] = (1.f - z) * hh + z * (hprev ? hprev[k] : 0.f);
                    else gr[GH + H + k] = rg * (hprev ? hprev[k] : 0.f);
                }
                if (!linear_before_reset) {
                    // (r * h) R_h^T + Rb_h into the last H floats of the scratch row.
                    float *acc = gr + GH + 2 * H;
                    kt->gemm_f32(gr + GH + H, H, Rt + 2 * H, GH, 0, Rb ? Rb + 2 * H : NULL, acc, H, 1, H, H, 0);
                    for (int64_t k = 0; k < H; k++) {
                        const float hh = tanhf(g[2 * H + k] + acc[k]), z = gr[GH + k];
                        h[k] = (1.f - z) * hh + z * (hprev ? hprev[k] : 0.f);
                    }
                }
                hprev = h;
            }
        }
    }
}
