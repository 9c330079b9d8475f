"""Fits the rational erf behind the vector GELU (FN(gelu_erf) in Sources/MinnowKernels/vector_math_x86.inc).

erf(u) ~= u P(u^2) / Q(u^2) on 0 <= u <= 3.925, P and Q of degree 5, Q(0) = 1: a linearised least-squares
fit, then Lawson reweighting towards the minimax error. Prints the float32 coefficients (highest degree first,
as the kernel's Horner steps use them), the fit's error in float64, and GELU's error when the kernel's float32
arithmetic is emulated (FMA as a float64 product and sum rounded once), as a fraction of the bound that
SIMDKernelTests states (3e-7 max(1, |x|)). Needs numpy only.

    python3 tools/reference/fit_gelu_erf.py
"""

import math

import numpy as np

CLAMP = 3.925  # erf rounds to 1 in float32 beyond this
DEGREE = 5


def fit(degree: int = DEGREE, clamp: float = CLAMP, iterations: int = 60):
    u = clamp * (1 - np.cos(np.linspace(0, np.pi / 2, 20000)))[1:]  # denser near the clamp
    f = np.array([math.erf(v) for v in u])
    t = u * u
    powers = np.arange(degree + 1)
    # f Q = u P  ->  u P(t) - f (Q(t) - 1) = f: linear in the coefficients.
    a = np.hstack([u[:, None] * t[:, None] ** powers, -(f[:, None] * t[:, None] ** powers[1:])])
    weight, q_values, best = np.ones_like(u), np.ones_like(u), None
    for _ in range(iterations):
        w = (weight / np.abs(q_values))[:, None]
        sol, *_ = np.linalg.lstsq(a * w, f * w[:, 0], rcond=None)
        p, q = sol[: degree + 1], np.concatenate([[1.0], sol[degree + 1:]])
        q_values = np.polyval(q[::-1], t)
        err = u * np.polyval(p[::-1], t) / q_values - f
        if best is None or np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p.copy(), q.copy())
        weight = weight * np.sqrt(np.abs(err)) + 1e-300
        weight /= weight.max()
    return best


def gelu_float32(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    f32 = np.float32

    def fma(a, b, c):
        return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(f32)

    u = (x * f32(0.70710678118654752)).astype(f32)
    au = np.minimum(np.abs(u), f32(CLAMP))
    t = (au * au).astype(f32)
    pp, qq = np.full_like(t, p[-1]), np.full_like(t, q[-1])
    for k in range(len(p) - 2, -1, -1):
        pp = fma(pp, t, np.full_like(t, p[k]))
    for k in range(len(q) - 2, -1, -1):
        qq = fma(qq, t, np.full_like(t, q[k]))
    e = np.copysign(np.minimum(f32(1), ((au * pp).astype(f32) / qq).astype(f32)), u)
    return ((f32(0.5) * x).astype(f32) * (f32(1) + e).astype(f32)).astype(f32)


def main() -> None:
    error, p, q = fit()
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    print(f"fit: max |erf error| {error:.3g} in float64 on [0, {CLAMP}]")
    print("P (highest first):", ", ".join(f"{v:.9e}f" for v in p32[::-1]))
    print("Q (highest first):", ", ".join(f"{v:.9e}f" for v in q32[::-1]))
    x = np.linspace(-12, 12, 1_200_001).astype(np.float32)
    exact = np.array([0.5 * float(v) * (1 + math.erf(float(v) / math.sqrt(2))) for v in x])
    ratio = np.abs(gelu_float32(x, p32, q32).astype(np.float64) - exact) / (3e-7 * np.maximum(1, np.abs(x)))
    print(f"GELU in float32: worst error {ratio.max():.2f} of the tested bound, at x = {x[ratio.argmax()]:.4f}")


if __name__ == "__main__":
    main()
