"""Minnow against onnxruntime, an independent implementation of the same ONNX semantics."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import FIXTURES
from graphs import cases, rng


def ort_run(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def minnow_run(minnow, tmp_path, onnx_path, x, mode, calib=None):
    out = tmp_path / f"m.{mode}.minnow"
    args = ["convert", onnx_path, "-o", out, "--mode", mode]
    if calib is not None:
        args += ["--calibration", calib]
    minnow(*args)
    inp = tmp_path / "in.npz"
    np.savez(inp, **{"inputs/x": x})
    res = tmp_path / "out.npz"
    minnow("run", out, "--input", inp, "-o", res)
    with np.load(res) as z:
        return z[z.files[0]]


@pytest.mark.parametrize("name", ["digits_mlp", "ctr_mlp", "regression_mlp"])
def test_fixture_float_mode_matches_onnxruntime(minnow, tmp_path, name):
    d = os.path.join(FIXTURES, name)
    with np.load(os.path.join(d, "reference.npz")) as z:
        x = z["inputs/x"]
    want = ort_run(os.path.join(d, "model.onnx"), x)
    got = minnow_run(minnow, tmp_path, os.path.join(d, "model.onnx"), x, "float")
    assert got.shape == want.shape
    # Both sum in their own order (FMA, SIMD blocking): a few ulps of the output's magnitude
    # (regression_mlp predicts values up to ~300, where one float32 ulp is 3e-5).
    assert np.max(np.abs(got - want)) <= max(1e-4, 1e-6 * np.max(np.abs(want)))


CASES = cases()


@pytest.mark.parametrize("name,model,shape", CASES, ids=[c[0] for c in CASES])
def test_op_float_mode_matches_onnxruntime(minnow, tmp_path, name, model, shape):
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    x = rng(7).standard_normal((37, *shape)).astype(np.float32)
    want = ort_run(path, x)
    got = minnow_run(minnow, tmp_path, path, x, "float")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,model,shape", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_op_quantized_modes_stay_close(minnow, tmp_path, name, model, shape, mode):
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    calib = tmp_path / "calib.npz"
    np.savez(calib, **{"inputs/x": rng(3).standard_normal((200, *shape)).astype(np.float32)})
    x = rng(8).standard_normal((50, *shape)).astype(np.float32)
    want = ort_run(path, x).reshape(50, -1).astype(np.float64)
    got = minnow_run(minnow, tmp_path, path, x, mode, calib).reshape(50, -1).astype(np.float64)
    # int8 is approximate: the output signal must dominate the quantization noise (SNR >= 25 dB).
    noise = np.sum((got - want) ** 2)
    signal = np.sum(want ** 2)
    assert noise <= signal * 10 ** (-25 / 10), f"SNR {10 * np.log10(signal / max(noise, 1e-30)):.1f} dB"
