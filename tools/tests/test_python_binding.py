"""The C interface through the Python binding (tools/python/minnow): same answers as the CLI."""
import os
import sys

import numpy as np
import pytest

from conftest import FIXTURES, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
import minnow  # noqa: E402


@pytest.fixture(scope="module")
def compiled(minnow_cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("binding")
    out = d / "ctr.minnow"
    minnow_cli("convert", os.path.join(FIXTURES, "ctr_mlp", "model.onnx"), "-o", out,
               "--calibration", os.path.join(FIXTURES, "ctr_mlp", "calibration.npz"))
    return out


@pytest.fixture(scope="module")
def minnow_cli(request):
    return request.getfixturevalue("minnow")


def test_binding_matches_the_cli(minnow_cli, compiled, tmp_path):
    x = np.load(os.path.join(FIXTURES, "ctr_mlp", "reference.npz"))["inputs/x"]
    model = minnow.Model(str(compiled))
    assert model.inputs == [("x", (-1, 30))] and model.outputs == [("ctr", (-1, 1))]
    session = minnow.Session(model, max_batch=32)
    ours = np.concatenate([session.run({"x": x[i:i + 32]})["ctr"] for i in range(0, len(x), 32)])
    np.savez(tmp_path / "in.npz", x=x)
    minnow_cli("run", compiled, "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--batch", "32")
    np.testing.assert_array_equal(ours, np.load(tmp_path / "out.npz")["outputs/ctr"])


def test_every_kernel_table_this_cpu_has_gives_the_same_bytes(minnow_cli, compiled):
    """Model(kernels=...) loads on a named table: each one this CPU runs (`minnow kernels
    --supported`) gives the reference table's answers: the int8 layers are exact on every table,
    so only the final sigmoid's polynomial differs (within its stated 3e-7). Unknown tables are
    refused by name."""
    x = np.load(os.path.join(FIXTURES, "ctr_mlp", "reference.npz"))["inputs/x"][:40]
    supported = minnow_cli("kernels", "--supported").stdout.split()
    assert supported[0] == "reference" and len(supported) >= 1
    outs = {}
    for name in supported:
        model = minnow.Model(str(compiled), kernels=name)
        assert model.kernels == name
        outs[name] = minnow.Session(model, max_batch=40, threads=1).run({"x": x})["ctr"]
    for name, y in outs.items():
        np.testing.assert_allclose(y, outs["reference"], rtol=0, atol=3e-7, err_msg=f"table {name}")
    with pytest.raises(minnow.MinnowError, match="kernel table 'sse9'.*reference"):
        minnow.Model(str(compiled), kernels="sse9")
    assert minnow.Model(str(compiled)).kernels == minnow_cli("kernels", "--json").stdout.split('"default":"')[1].split('"')[0]


def test_bf16_attention_is_opt_in_through_the_environment(minnow_cli, tmp_path, monkeypatch):
    """MINNOW_ATTENTION=bf16, read when a model loads, reaches the library: BST's attention then
    runs bf16 products where `minnow kernels --json` says the default table does (outputs move,
    within bf16's reach of the f32 ones), and the f32 bytes elsewhere. An unknown value is an error
    naming it."""
    import json
    path = tmp_path / "bst.minnow"
    minnow_cli("convert", os.path.join(FIXTURES, "bst_seqrec", "model.onnx"), "-o", path,
               "--calibration", os.path.join(FIXTURES, "bst_seqrec", "calibration.npz"))
    ref = np.load(os.path.join(FIXTURES, "bst_seqrec", "reference.npz"))
    feed = {k.split("/", 1)[1]: ref[k][:32] for k in ref.files if k.startswith("inputs/")}
    info = json.loads(minnow_cli("kernels", "--json").stdout)
    runs = next(t["bf16_attention"] for t in info["tables"] if t["name"] == info["default"])
    f32 = minnow.Session(minnow.Model(str(path)), max_batch=32, threads=1).run(feed)
    monkeypatch.setenv("MINNOW_ATTENTION", "bf16")
    bf16 = minnow.Session(minnow.Model(str(path)), max_batch=32, threads=1).run(feed)
    for name, y in f32.items():
        if runs:
            assert not np.array_equal(y, bf16[name])
            np.testing.assert_allclose(bf16[name], y, rtol=0, atol=0.02 * max(1.0, float(np.abs(y).max())))
        else:
            np.testing.assert_array_equal(bf16[name], y)
    monkeypatch.setenv("MINNOW_ATTENTION", "fp16")
    with pytest.raises(minnow.MinnowError, match="MINNOW_ATTENTION='fp16'"):
        minnow.Model(str(path))


def test_threads_give_the_same_answers(compiled):
    x = np.load(os.path.join(FIXTURES, "ctr_mlp", "reference.npz"))["inputs/x"][:64]
    model = minnow.Model(str(compiled))
    one = minnow.Session(model, max_batch=64, threads=1).run({"x": x})["ctr"]
    two = minnow.Session(model, max_batch=64, threads=2).run({"x": x})["ctr"]
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("op,direction,lbr", [("GRU", "bidirectional", 1), ("GRU", "forward", 0), ("LSTM", "bidirectional", None)])
def test_recurrent_ops_split_by_samples_give_the_same_bits(minnow_cli, tmp_path, op, direction, lbr):
    """At threads = 2 each worker runs the whole recurrence for its share of the samples (sizes
    big enough for the pool to split: 64 samples, 20 steps, 48 hidden units)."""
    import onnx
    import test_tensor_ops_oracle as oracle
    nodes, inputs, outputs, inits, _, opset = oracle._rnn_case(op, direction, hidden=48, steps=20, inputs=32, lbr=lbr)
    onnx.save(oracle.graph(nodes, inputs, outputs, inits, opset), tmp_path / "m.onnx")
    minnow_cli("convert", tmp_path / "m.onnx", "-o", tmp_path / "m.minnow", "--mode", "float")
    feeds = {"x": np.random.default_rng(5).standard_normal((64, 20, 32)).astype(np.float32)}
    model = minnow.Model(str(tmp_path / "m.minnow"))
    one = minnow.Session(model, max_batch=64, threads=1).run(feeds)
    two = minnow.Session(model, max_batch=64, threads=2).run(feeds)
    import onnxruntime as ort
    want = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(two["y"], want, atol=2e-5, rtol=2e-5)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_zero_copy_buffers_and_bytes_loading(compiled):
    x = np.load(os.path.join(FIXTURES, "ctr_mlp", "reference.npz"))["inputs/x"][:5]
    model = minnow.Model(data=open(compiled, "rb").read())
    s = minnow.Session(model, max_batch=8)
    s.input(0)[:5] = x
    s.run_batch(5)
    view = s.output(0, 5)
    assert view.shape == (5, 1)
    np.testing.assert_array_equal(view, minnow.Session(model, 8).run({"x": x})["ctr"])


def test_errors_are_exceptions_with_the_message(compiled):
    with pytest.raises(minnow.MinnowError, match="cannot open"):
        minnow.Model("/nonexistent.minnow")
    with pytest.raises(minnow.MinnowError, match="not a .minnow file"):
        minnow.Model(data=b"x" * 64)
    s = minnow.Session(minnow.Model(str(compiled)), max_batch=4)
    with pytest.raises(minnow.MinnowError, match=r"batch 5 is outside 1...4"):
        s.run_batch(5)
    with pytest.raises(minnow.MinnowError, match="unknown input 'pixels'"):
        s.run({"pixels": np.zeros((1, 30), np.float32)})
    with pytest.raises(minnow.MinnowError, match=r"expected shape \[1..4, 30\]"):
        s.run({"x": np.zeros((2, 31), np.float32)})


@pytest.mark.parametrize("mode", ["static", "dynamic", "float"])
def test_worker_pool_splits_large_layers_identically(minnow_cli, tmp_path, mode):
    """A model big enough for the pool to split its layers (>= 4M multiply-adds per operator)."""
    import onnx
    from graphs import mlp
    onnx.save(mlp([512, 1024, 1024, 64], seed=3), tmp_path / "big.onnx")
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "calib.npz", **{"inputs/x": rng.standard_normal((128, 512)).astype(np.float32)})
    minnow_cli("convert", tmp_path / "big.onnx", "-o", tmp_path / "big.minnow", "--mode", mode,
               "--calibration", tmp_path / "calib.npz")
    model = minnow.Model(str(tmp_path / "big.minnow"))
    x = rng.standard_normal((64, 512)).astype(np.float32)
    one = minnow.Session(model, max_batch=64, threads=1).run({"x": x})["y"]
    for threads in (2, 3):
        s = minnow.Session(model, max_batch=64, threads=threads)
        for batch in (64, 37, 9):
            np.testing.assert_array_equal(s.run({"x": x[:batch]})["y"], one[:batch])


def test_id_inputs_go_in_as_integers(minnow_cli, tmp_path):
    """tiny_bert takes int64 token ids and an int64 mask: the binding writes them in their own
    dtype (not as floats) and gets the CLI's answers; fractional ids are refused."""
    d = os.path.join(FIXTURES, "tiny_bert")
    out = tmp_path / "bert.minnow"
    minnow_cli("convert", os.path.join(d, "model.onnx"), "-o", out, "--calibration", os.path.join(d, "calibration.npz"))
    ref = np.load(os.path.join(d, "reference.npz"))
    ids, mask = ref["inputs/input_ids"][:16], ref["inputs/attention_mask"][:16]
    model = minnow.Model(str(out))
    assert model.input_dtypes == [np.int64, np.int64] and model.output_dtypes == [np.float32]
    session = minnow.Session(model, max_batch=16)
    assert session.input(0).dtype == np.int64
    ours = session.run({"input_ids": ids, "attention_mask": mask})["text_embedding"]
    np.savez(tmp_path / "in.npz", input_ids=ids, attention_mask=mask)
    minnow_cli("run", out, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    np.testing.assert_array_equal(ours, np.load(tmp_path / "o.npz")["outputs/text_embedding"])
    cos = np.sum(ours * ref["outputs/text_embedding"][:16], 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref["outputs/text_embedding"][:16], axis=1)
    assert cos.min() > 0.99
    with pytest.raises(minnow.MinnowError, match="fractional"):
        session.run({"input_ids": ids + 0.5, "attention_mask": mask})
