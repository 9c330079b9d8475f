"""A user's own model, not a fixture: trained in their script, exported, converted with only
-o and --calibration, checked against their framework's predictions."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from graphs import mlp


def export_sklearn_mlp(clf, path):
    """The graph skl2onnx writes for an MLPClassifier: MatMul + Add + Relu, softmax output."""
    nodes, inits, prev = [], [], "x"
    layers = len(clf.coefs_)
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        inits += [numpy_helper.from_array(W.astype(np.float32), f"coef{i}"), numpy_helper.from_array(b.astype(np.float32), f"int{i}")]
        nodes.append(helper.make_node("MatMul", [prev, f"coef{i}"], [f"mm{i}"], name=f"MatMul{i}"))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"int{i}"], [f"z{i}"], name=f"Add{i}"))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"], name=f"Relu{i}"))
            prev = f"h{i}"
    nodes.append(helper.make_node("Softmax", [f"z{layers - 1}"], ["probabilities"], axis=1, name="Softmax"))
    g = helper.make_graph(nodes, "sklearn_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
                          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    onnx.checker.check_model(m)
    onnx.save(m, path)


def test_user_trained_mlp_converts_and_agrees(minnow, tmp_path):
    data = load_digits()
    x = (data.data / 16).astype(np.float32)
    x_tr, x_te, y_tr, _ = train_test_split(x, data.target, test_size=0.3, random_state=1)
    clf = MLPClassifier(hidden_layer_sizes=(96, 48), max_iter=300, random_state=1).fit(x_tr, y_tr)
    onnx_path = tmp_path / "user.onnx"
    export_sklearn_mlp(clf, onnx_path)
    np.savez(tmp_path / "calib.npz", x=x_tr)  # a bare input name works too
    minnow("convert", onnx_path, "-o", tmp_path / "user.minnow", "--calibration", tmp_path / "calib.npz")
    np.savez(tmp_path / "in.npz", x=x_te)
    minnow("run", tmp_path / "user.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        ours = z["outputs/probabilities"]
    theirs = clf.predict_proba(x_te)
    agreement = np.mean(ours.argmax(1) == theirs.argmax(1))
    assert agreement >= 0.99, agreement


def test_static_int8_file_is_under_30_percent_of_onnx(minnow, tmp_path):
    m = mlp([256, 512, 512, 10], seed=4)
    path = tmp_path / "big.onnx"
    onnx.save(m, path)
    np.savez(tmp_path / "calib.npz", **{"inputs/x": np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)})
    p = minnow("convert", path, "-o", tmp_path / "big.minnow", "--calibration", tmp_path / "calib.npz")
    ratio = os.path.getsize(tmp_path / "big.minnow") / os.path.getsize(path)
    assert ratio <= 0.30, (ratio, p.stdout)
    assert "3 Dense in int8" in p.stdout


def test_npz_written_compressed_reads_too(minnow, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(mlp([8, 4]), path)
    minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", "float")
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    np.savez_compressed(tmp_path / "in.npz", **{"inputs/x": x})
    minnow("run", tmp_path / "m.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        assert z["outputs/y"].shape == (5, 4)


def test_external_data_beside_the_model_is_read(minnow, tmp_path):
    """torch.onnx.export (dynamo) writes weights to MODEL.onnx.data by default."""
    import onnxruntime as ort
    m = mlp([16, 32, 4], seed=2)
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    assert os.path.exists(tmp_path / "m.onnx.data")
    minnow("convert", tmp_path / "m.onnx", "-o", tmp_path / "m.minnow", "--mode", "float")
    x = np.random.default_rng(1).standard_normal((9, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    minnow("run", tmp_path / "m.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    want = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_allclose(z["outputs/y"], want, atol=1e-5)


def test_external_data_outside_the_model_directory_is_refused(minnow, tmp_path):
    m = mlp([4, 2])
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, location="w.data", size_threshold=0)
    m = onnx.load(tmp_path / "m.onnx", load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../../etc/passwd"
    onnx.save(m, tmp_path / "evil.onnx")
    p = minnow("convert", tmp_path / "evil.onnx", "-o", tmp_path / "e.minnow", "--mode", "float", check=False)
    assert p.returncode == 1
    assert "leaves the model's directory" in p.stderr


def test_sklearn_user_records_reference_and_gates_on_parity(minnow, tmp_path):
    """The scikit-learn path of docs/parity.md: the user's own predictions become the reference."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
    from minnow_reference import write_reference

    data = load_digits()
    x = (data.data / 16).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.3, random_state=2)
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=2).fit(x_tr, y_tr)
    export_sklearn_mlp(clf, tmp_path / "model.onnx")
    write_reference(tmp_path, inputs={"x": x_te}, outputs={"probabilities": clf.predict_proba(x_te)},
                    labels={"probabilities": y_te}, calibration={"x": x_tr},
                    parity={"task": "multiclass", "outputs": {"probabilities": {"top1_agreement": {"min": 0.99}}},
                            "labels": {"accuracy": {"max_drop": 0.01}}})
    minnow("convert", tmp_path / "model.onnx", "-o", tmp_path / "m.minnow", "--calibration", tmp_path / "calibration.npz")
    p = minnow("parity", tmp_path / "m.minnow", "--reference", tmp_path / "reference.npz", "--spec", tmp_path / "parity.json",
               "--report", tmp_path / "report")
    assert "PASS" in p.stdout
    import json
    report = json.load(open(tmp_path / "report" / "parity.json"))
    assert report["verdict"] == "pass"
    assert report["task"]["trainer"]["accuracy"] > 0.9
