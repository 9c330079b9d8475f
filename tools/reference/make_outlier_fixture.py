#!/usr/bin/env python3
"""fixtures/outlier_mlp: a model whose int8 conversion really loses accuracy.

Its first layer has one output channel with activations ~300x larger than the others (the kind
of outlier channel trained transformers and recommenders grow). Per-tensor int8 quantization of
that activation spends its range on the outlier and rounds every other channel to almost
nothing. Parity must catch it, --per-layer must point at the first layer, and accuracy-driven
mixed precision must fix it by keeping a layer in float.

    python3 tools/reference/make_outlier_fixture.py      (numpy + onnx + onnxruntime, no torch)
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "outlier_mlp")


def main():
    r = np.random.default_rng(0)
    w0 = (r.standard_normal((32, 16)) / 4).astype(np.float32)
    w0[0] *= 300.0                                      # the outlier channel
    b0 = (r.standard_normal(32) * 0.1).astype(np.float32)
    w1 = (r.standard_normal((32, 32)) / np.sqrt(32)).astype(np.float32)
    w1[:, 0] = 0.0                                      # downstream ignores it: the outlier only hurts
    b1 = (r.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (r.standard_normal((10, 32)) / np.sqrt(32)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["g0"], transB=1, name="fc0"),
        helper.make_node("Relu", ["g0"], ["h0"], name="relu0"),
        helper.make_node("Gemm", ["h0", "w1", "b1"], ["g1"], transB=1, name="fc1"),
        helper.make_node("Relu", ["g1"], ["h1"], name="relu1"),
        helper.make_node("Gemm", ["h1", "w2"], ["logits"], transB=1, name="fc2"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in dict(w0=w0, b0=b0, w1=w1, b1=b1, w2=w2).items()]
    g = helper.make_graph(nodes, "outlier_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "model.onnx")
    onnx.save(m, path)
    calib = r.standard_normal((512, 16)).astype(np.float32)
    test = r.standard_normal((400, 16)).astype(np.float32)
    probs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": test})[0]
    np.savez_compressed(os.path.join(OUT, "calibration.npz"), **{"inputs/x": calib})
    # Labels are the float model's own decisions: the trainer scores 100%, so any drop is int8's.
    np.savez(os.path.join(OUT, "reference.npz"), **{"inputs/x": test, "outputs/probs": probs,
                                                     "labels/probs": probs.argmax(1).astype(np.int64)})
    with open(os.path.join(OUT, "parity.json"), "w") as f:
        json.dump({"task": "multiclass", "outputs": {"probs": {"top1_agreement": {"min": 0.97}}},
                   "labels": {"accuracy": {"max_drop": 0.03}}}, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# outlier_mlp\n\nA 16 -> 32 -> 32 -> 10 MLP whose first layer has one outlier channel (300x the others), "
                "so per-tensor int8 activations lose accuracy: the parity, --per-layer and mixed-precision test case. "
                "Synthetic weights; labels are the float model's decisions.\n\n"
                "Regenerate: `python3 tools/reference/make_outlier_fixture.py`\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
