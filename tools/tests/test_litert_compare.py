"""The LiteRT side of tools/compare, driven as compare.py drives it: each fixture's PyTorch module
rebuilt from the trainer's class and the fixture's weights must compute what the ONNX file
computes; the LiteRT files built from it must run, resize or reconvert to batch 64, and agree with
PyTorch. Needs torch (the rebuild) and tools/requirements-compare.txt (LiteRT); each test says
which is missing and skips without it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES

COMPARE = os.path.join(os.path.dirname(FIXTURES), "tools", "compare")
sys.path.insert(0, COMPARE)
from metrics import snr_db  # noqa: E402


def need(module, why):
    try:
        __import__(module)
    except Exception as e:  # ImportError, or a torch build the package refuses
        pytest.skip(f"{why}: {module} does not import ({e}); pip install -r tools/requirements-compare.txt")


def arrays(fixture, which):
    import onnxruntime as ort
    d = os.path.join(FIXTURES, fixture)
    types = {i.name: i.type for i in ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"]).get_inputs()}
    with np.load(os.path.join(d, which)) as z:
        return {k.split("/", 1)[1]: z[k].astype(np.float32 if types[k.split("/", 1)[1]] == "tensor(float)" else z[k].dtype)
                for k in z.files if k.startswith("inputs/")}


# One fixture per way weights are mapped back: Gemm names (ctr_mlp, with its standardization
# buffers), LSTM nodes with gate reordering (bilstm_nextitem), MatMul + named bias and a folded
# position table (tiny_bert), a BatchNorm folded into its convolution (cnn_digits).
@pytest.mark.parametrize("fixture", ["ctr_mlp", "bilstm_nextitem", "tiny_bert", "cnn_digits"])
def test_rebuilt_module_computes_what_the_onnx_file_computes(fixture):
    need("torch", "rebuilding the PyTorch module")
    if fixture == "tiny_bert":
        need("transformers", "tiny_bert's BertModel")
    import torch_from_fixture
    d = os.path.join(FIXTURES, fixture)
    module, names = torch_from_fixture.torch_module(fixture, d)
    torch_from_fixture.verify(module, d, arrays(fixture, "reference.npz"))  # raises on a mismatch


def test_a_wrong_weight_is_refused():
    need("torch", "rebuilding the PyTorch module")
    import torch
    import torch_from_fixture
    d = os.path.join(FIXTURES, "ctr_mlp")
    module, _ = torch_from_fixture.torch_module("ctr_mlp", d)
    with torch.no_grad():
        module.net[2].weight.mul_(1.01)
    with pytest.raises(torch_from_fixture.MappingError, match="differs from the ONNX file"):
        torch_from_fixture.verify(module, d, arrays("ctr_mlp", "reference.npz"))


def test_litert_variants_run_and_agree_with_pytorch(tmp_path):
    need("litert_torch", "converting to LiteRT")
    need("ai_edge_quantizer", "quantizing for LiteRT")
    import litert_variants
    import torch_from_fixture
    d = os.path.join(FIXTURES, "ctr_mlp")
    module, names = torch_from_fixture.torch_module("ctr_mlp", d)
    ref = arrays("ctr_mlp", "reference.npz")
    built = litert_variants.build("ctr_mlp", module, names, ref, arrays("ctr_mlp", "calibration.npz"), str(tmp_path))
    with np.load(os.path.join(d, "reference.npz")) as z:
        want = z["outputs/ctr"]

    def snr(path, batch):
        return snr_db([(want, litert_variants.run_rows(path, ref, names, batch)[0])])

    assert all(b.error is None for b in built.values()), {k: b.error for k, b in built.items()}
    for variant, floor in [("litert-fp32", 100.0), ("litert-int8-dynamic", 30.0)]:
        for batch in (1, 64):
            assert snr(built[variant].paths[batch], batch) > floor, (variant, batch)
    # The full-integer file has int8 inputs: the runner quantizes them outside the call.
    static = litert_variants.Runner(built["litert-int8-static"].paths[1], 1, 1, names)
    assert static.inputs[0][1]["dtype"] == np.int8
    assert np.isfinite(snr(built["litert-int8-static"].paths[64], 64))
    # This MLP's batch-1 file resizes to 64 with the same outputs, so compare.py reuses it.
    assert built["litert-fp32"].how[64] == "resized from batch 1"

    feed = tmp_path / "feed.npz"
    np.savez(feed, **{k: v[:1] for k, v in ref.items()})
    p = subprocess.run([sys.executable, os.path.join(COMPARE, "fresh_process.py"), "--engine", "litert", "--model",
                        built["litert-fp32"].paths[1], "--feed", str(feed), "--inputs", ",".join(names), "--runs", "20"],
                       capture_output=True, text=True, check=True)
    fresh = json.loads(p.stdout.strip().splitlines()[-1])
    assert fresh["load_ms"] > 0 and fresh["peak_rss_bytes"] >= fresh["base_rss_bytes"]
