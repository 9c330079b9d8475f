"""Variable sequence length, tried as a user would: a BERT exported from transformers with a
dynamic sequence axis, converted once with --max-seq 128, then run on inputs of other lengths
with `minnow run`; onnxruntime runs the same ONNX at the same lengths as the oracle."""
import os

import numpy as np
import onnxruntime as ort
import pytest

from conftest import FIXTURES

BERT = os.path.join(FIXTURES, "bert_user_seq128")


@pytest.fixture(scope="module")
def reference():
    with np.load(os.path.join(BERT, "reference.npz")) as z:
        return {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("inputs/")}


@pytest.fixture(scope="module")
def oracle():
    return ort.InferenceSession(os.path.join(BERT, "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def converted(tmp_path_factory, minnow):
    """The user's export in float and in default (static int8) mode, every length 1...128."""
    out = tmp_path_factory.mktemp("seq")
    paths = {}
    for mode in ("float", "static"):
        path = out / f"bert_{mode}.minnow"
        p = minnow("convert", os.path.join(BERT, "model.onnx"), "-o", path, "--max-seq", 128, "--mode", mode,
                   "--calibration", os.path.join(BERT, "calibration.npz"))
        assert "sequence lengths: 2...128" in p.stdout, p.stdout
        paths[mode] = path
    return paths


def inputs_at(reference, length, samples=12):
    """The first `length` tokens of each reference sample; the mask keeps a sample's padding."""
    ids = reference["input_ids"][:samples, :length].copy()
    mask = reference["attention_mask"][:samples, :length].copy()
    mask[:, 0] = 1  # every sample keeps its [CLS] token
    return {"input_ids": ids, "attention_mask": mask}


def run_minnow(minnow, model, feeds, tmp_path, **flags):
    np.savez(tmp_path / "in.npz", **{f"inputs/{k}": v for k, v in feeds.items()})
    args = ["run", model, "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz"]
    for k, v in flags.items():
        args += [f"--{k}", v]
    minnow(*args)
    with np.load(tmp_path / "out.npz") as z:
        return z["outputs/last_hidden_state"], z["outputs/pooler_output"]


@pytest.mark.parametrize("length", [2, 3, 17, 64, 127, 128])
def test_float_model_matches_onnxruntime_at_each_length(minnow, converted, reference, oracle, tmp_path, length):
    feeds = inputs_at(reference, length)
    hidden, pooled = run_minnow(minnow, converted["float"], feeds, tmp_path)
    want_hidden, want_pooled = oracle.run(None, feeds)
    assert hidden.shape == (12, length, 96)
    np.testing.assert_allclose(hidden, want_hidden, atol=2e-4, rtol=0)
    np.testing.assert_allclose(pooled, want_pooled, atol=2e-4, rtol=0)


@pytest.mark.parametrize("length", [4, 40, 128])
def test_default_int8_model_keeps_cosine_at_each_length(minnow, converted, reference, oracle, tmp_path, length):
    feeds = inputs_at(reference, length)
    _, pooled = run_minnow(minnow, converted["static"], feeds, tmp_path, batch=5)
    _, want = oracle.run(None, feeds)
    cos = np.sum(pooled * want, 1) / (np.linalg.norm(pooled, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() >= 0.99, cos


def test_lengths_the_model_does_not_take_are_refused_by_name(minnow, converted, reference, tmp_path):
    feeds = inputs_at(reference, 1)
    np.savez(tmp_path / "in.npz", **{f"inputs/{k}": v for k, v in feeds.items()})
    p = minnow("run", converted["float"], "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz", check=False)
    assert p.returncode != 0
    assert "match no sequence length the model accepts (2...128" in p.stderr, p.stderr
    # Mismatched lengths between the ids and the mask are refused too.
    feeds = {"input_ids": reference["input_ids"][:3, :10], "attention_mask": reference["attention_mask"][:3, :12]}
    np.savez(tmp_path / "in.npz", **{f"inputs/{k}": v for k, v in feeds.items()})
    p = minnow("run", converted["float"], "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz", check=False)
    assert p.returncode != 0 and "'input_ids' [3, 10], 'attention_mask' [3, 12]" in p.stderr, p.stderr


def test_a_chosen_set_of_lengths(minnow, reference, oracle, tmp_path):
    path = tmp_path / "buckets.minnow"
    p = minnow("convert", os.path.join(BERT, "model.onnx"), "-o", path, "--max-seq", 128, "--mode", "float",
               "--seq-lengths", "16,32")
    assert "sequence lengths: 16, 32, 128" in p.stdout, p.stdout
    feeds = inputs_at(reference, 32)
    hidden, _ = run_minnow(minnow, path, feeds, tmp_path)
    np.testing.assert_allclose(hidden, oracle.run(None, feeds)[0], atol=2e-4, rtol=0)
    np.savez(tmp_path / "in.npz", **{f"inputs/{k}": v for k, v in inputs_at(reference, 20).items()})
    p = minnow("run", path, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz", check=False)
    assert p.returncode != 0 and "(16, 32, 128" in p.stderr, p.stderr


def test_max_seq_on_a_fixed_length_export_is_refused(minnow, tmp_path):
    p = minnow("convert", os.path.join(FIXTURES, "tiny_bert", "model.onnx"), "-o", tmp_path / "t.minnow",
               "--max-seq", 64, "--mode", "float", check=False)
    assert p.returncode != 0
    assert "no input of this model has a dynamic dimension besides the batch" in p.stderr, p.stderr
