// LSTM and GRU (ONNX semantics, default activations, zero initial state), fp32, batch-first
// storage. For each sample and direction the input projections of all time steps are computed up
// front; the recurrence then adds R h per step. `scratch` holds (S + 2) * G * H floats.
#include "minnow_kernels.h"
#include <math.h>
#include <string.h>

static inline float sigm(float v) { return v >= 0.f ? 1.f / (1.f + expf(-v)) : expf(v) / (1.f + expf(v)); }

// gx[t, :] = W x_t + bias (bias may be NULL), W is [G*H, I].
static void project(const float *x, const float *w, const float *bias, float *gx, int64_t S, int64_t I, int64_t GH) {
    for (int64_t t = 0; t < S; t++) {
        const float *xt = x + t * I;
        float *g = gx + t * GH;
        for (int64_t r = 0; r < GH; r++) {
            const float *wr = w + r * I;
            float acc = bias ? bias[r] : 0.f;
            for (int64_t k = 0; k < I; k++) acc += wr[k] * xt[k];
            g[r] = acc;
        }
    }
}

// out[r] = R[r, :] . h for r < GH.
static void recur(const float *R, const float *h, float *out, int64_t GH, int64_t H) {
    for (int64_t r = 0; r < GH; r++) {
        const float *rr = R + r * H;
        float acc = 0.f;
        for (int64_t k = 0; k < H; k++) acc += rr[k] * h[k];
        out[r] = acc;
    }
}

// bias: [D, 4H], Wb + Rb summed at load.
void mn_lstm_f32(const float *x, const float *W, const float *R, const float *bias, float *y, int64_t batch, int64_t S,
                 int64_t I, int64_t H, int64_t D, float *scratch) {
    const int64_t GH = 4 * H;
    float *gx = scratch, *gr = scratch + S * GH;
    for (int64_t b = 0; b < batch; b++) {
        const float *xb = x + b * S * I;
        float *yb = y + b * S * D * H;
        for (int64_t d = 0; d < D; d++) {
            const float *Wd = W + d * GH * I, *Rd = R + d * GH * H, *Bd = bias ? bias + d * GH : NULL;
            project(xb, Wd, Bd, gx, S, I, GH);
            // h is read back from the previous step's output row; the cell state is written over the
            // input-gate slots of the row just consumed (never read again).
            float *c = NULL;
            const float *hprev = NULL;
            for (int64_t s = 0; s < S; s++) {
                const int64_t t = d == 0 ? s : S - 1 - s;  // the backward direction runs from the end
                float *g = gx + t * GH;
                if (hprev) { recur(Rd, hprev, gr, GH, H); for (int64_t r = 0; r < GH; r++) g[r] += gr[r]; }
                // ONNX gate order: input, output, forget, cell.
                float *h = yb + (t * D + d) * H;
                float *cnew = g;  // reuse the consumed input gate slots for this step's cell state
                for (int64_t k = 0; k < H; k++) {
                    const float ig = sigm(g[k]), og = sigm(g[H + k]), fg = sigm(g[2 * H + k]), cg = tanhf(g[3 * H + k]);
                    const float cv = (c ? fg * c[k] : 0.f) + ig * cg;
                    cnew[k] = cv;
                    h[k] = og * tanhf(cv);
                }
                c = cnew;
                hprev = h;
            }
        }
    }
}

void mn_gru_f32(const float *x, const float *W, const float *R, const float *bias, float *y, int64_t batch, int64_t S,
                int64_t I, int64_t H, int64_t D, int32_t linear_before_reset, float *scratch) {
    const int64_t GH = 3 * H;
    float *gx = scratch, *gr = scratch + S * GH;
    for (int64_t b = 0; b < batch; b++) {
        const float *xb = x + b * S * I;
        float *yb = y + b * S * D * H;
        for (int64_t d = 0; d < D; d++) {
            const float *Wd = W + d * GH * I, *Rd = R + d * GH * H;
            // bias: [D, 6H] = Wb (z, r, h) then Rb (z, r, h).
            const float *Wb = bias ? bias + d * 2 * GH : NULL, *Rb = bias ? bias + d * 2 * GH + GH : NULL;
            project(xb, Wd, Wb, gx, S, I, GH);
            const float *hprev = NULL;
            for (int64_t s = 0; s < S; s++) {
                const int64_t t = d == 0 ? s : S - 1 - s;
                const float *g = gx + t * GH;
                float *h = yb + (t * D + d) * H;
                // Recurrent projections of z and r (and of h when linear_before_reset).
                for (int64_t r = 0; r < GH; r++) {
                    float acc = Rb ? Rb[r] : 0.f;
                    if (hprev) { const float *rr = Rd + r * H; for (int64_t k = 0; k < H; k++) acc += rr[k] * hprev[k]; }
                    gr[r] = acc;
                }
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
                    for (int64_t k = 0; k < H; k++) {
                        float acc = Rb ? Rb[2 * H + k] : 0.f;
                        const float *rr = Rd + (2 * H + k) * H;
                        for (int64_t j = 0; j < H; j++) acc += rr[j] * gr[GH + H + j];
                        const float hh = tanhf(g[2 * H + k] + acc), z = gr[GH + k];
                        h[k] = (1.f - z) * hh + z * (hprev ? hprev[k] : 0.f);
                    }
                }
                hprev = h;
            }
        }
    }
}
