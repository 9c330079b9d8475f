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
    import json
    info = json.loads(minnow("inspect", path, "--json").stdout)
    assert info["sequence_lengths"] == [16, 32, 128] and info["format_version"] == "1.8"
    assert "sequence lengths: 16, 32, 128" in minnow("inspect", path).stdout
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


def test_python_binding_picks_the_length_from_the_arrays(converted, reference, oracle):
    import importlib
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(FIXTURES), "tools", "python"))
    binding = importlib.import_module("minnow")
    model = binding.Model(str(converted["float"]))
    assert model.sequence_lengths == list(range(2, 129))
    session = binding.Session(model, max_batch=8)
    for length in (9, 40, 9):
        feeds = inputs_at(reference, length, samples=8)
        ours = session.run(feeds)
        assert ours["last_hidden_state"].shape == (8, length, 96)
        np.testing.assert_allclose(ours["last_hidden_state"], oracle.run(None, feeds)[0], atol=2e-4, rtol=0)
    with pytest.raises(binding.MinnowError, match="match no sequence length"):
        session.run(inputs_at(reference, 1, samples=2))
    with pytest.raises(binding.MinnowError, match="not one the model accepts"):
        session.set_sequence_length(500)
    # The float-only copy entry point refuses an int64 input instead of reinterpreting its bytes.
    lib = binding._library()
    data = (binding.ctypes.c_float * 9)()
    assert lib.minnow_session_set_input(session._h, 0, data, 9) == -1
    assert "int64, not float32" in lib.minnow_last_error().decode()


def test_serve_answers_each_request_at_its_own_length(converted, reference, oracle, tmp_path):
    """KServe v2 and TF Serving requests of different lengths, sent at once to a server that
    batches them: each is answered at its own length (runs never mix lengths)."""
    import shutil
    import threading
    from serving import Server
    os.makedirs(tmp_path / "repo" / "bert" / "1")
    shutil.copy(converted["float"], tmp_path / "repo" / "bert" / "1" / "model.minnow")
    server = Server(str(tmp_path / "repo"), "--threads", "1", "--max-batch", "16", "--batch-timeout-us", "20000")
    try:
        results, lengths = {}, [5, 33, 5, 128, 12]

        def ask(k, length):
            feeds = inputs_at(reference, length, samples=2 + k)
            body = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": "INT64", "data": a.ravel().tolist()}
                               for n, a in feeds.items()]}
            results[k] = (feeds, server.request("POST", "/v2/models/bert/infer", body))

        threads = [threading.Thread(target=ask, args=(k, n)) for k, n in enumerate(lengths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k, length in enumerate(lengths):
            feeds, (status, body) = results[k]
            assert status == 200, body
            out = {o["name"]: o for o in body["outputs"]}
            assert out["last_hidden_state"]["shape"] == [2 + k, length, 96]
            hidden = np.array(out["last_hidden_state"]["data"], dtype=np.float32).reshape(2 + k, length, 96)
            np.testing.assert_allclose(hidden, oracle.run(None, feeds)[0], atol=2e-4, rtol=0)

        feeds = inputs_at(reference, 7, samples=3)
        status, body = server.request("POST", "/v1/models/bert:predict", {"inputs": {n: a.tolist() for n, a in feeds.items()}})
        assert status == 200, body
        np.testing.assert_allclose(np.array(body["outputs"]["pooler_output"], dtype=np.float32), oracle.run(None, feeds)[1],
                                   atol=2e-4, rtol=0)
        status, body = server.request("POST", "/v1/models/bert:predict",
                                      {"instances": [{n: a[i].tolist() for n, a in feeds.items()} for i in range(3)]})
        assert status == 200, body
        assert np.array(body["predictions"][0]["last_hidden_state"]).shape == (7, 96)

        bad = inputs_at(reference, 1, samples=1)
        status, body = server.request("POST", "/v2/models/bert/infer", {"inputs": [
            {"name": n, "shape": list(a.shape), "datatype": "INT64", "data": a.ravel().tolist()} for n, a in bad.items()]})
        assert status == 400 and "match no sequence length the model accepts (2...128" in str(body), body
    finally:
        server.stop()


def test_bench_at_a_chosen_length(minnow, converted):
    import json
    short = json.loads(minnow("bench", converted["static"], "--seq-len", 16, "--seconds", 0.2, "--json").stdout)
    assert short["allocations_per_run"] == 0, short
    full = json.loads(minnow("bench", converted["static"], "--seconds", 0.2, "--json").stdout)
    assert full["allocations_per_run"] == 0, full
    p = minnow("bench", converted["static"], "--seq-len", 1, "--seconds", 0.2, check=False)
    assert p.returncode != 0 and "sequence length 1 is not one the model accepts (2...128)" in p.stderr, p.stderr
