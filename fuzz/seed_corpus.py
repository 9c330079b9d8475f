"""Small .npy/.npz and ONNX seeds for the fuzzers, and HTTP requests (see seed-corpus.sh)."""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(7)

# npz / npy
x = rng.standard_normal((3, 4)).astype(np.float32)
np.savez(f"{out}/npz/plain.npz", **{"inputs/x": x, "labels": np.array([1, 0, 1], dtype=np.int64)})
np.savez_compressed(f"{out}/npz/compressed.npz", x=x, ids=np.arange(6, dtype=np.int32).reshape(2, 3))
np.save(f"{out}/npz/float.npy", x)
np.save(f"{out}/npz/reject-fortran.npy", np.asfortranarray(x))
np.save(f"{out}/npz/uint8.npy", np.arange(5, dtype=np.uint8))
np.save(f"{out}/npz/scalar.npy", np.float64(2.5))


# onnx: the shapes of graph PyTorch exports for MLPs, one op family each
def model(name, nodes, inits, inp, outp, opset=17):
    g = helper.make_graph(nodes, name, [inp], [outp], [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="seed")
    onnx.save(m, f"{out}/onnx/{name}.onnx")


x4 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
y3 = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
w = rng.standard_normal((3, 4)).astype(np.float32)
b = rng.standard_normal(3).astype(np.float32)
model("gemm_relu", [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
      [("w", w), ("b", b)], x4, y3)
model("matmul_add_softmax", [helper.make_node("MatMul", ["x", "wt"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
                             helper.make_node("Softmax", ["a"], ["y"], axis=-1)],
      [("wt", w.T.copy()), ("b", b)], x4, y3)
model("concat_sigmoid", [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
                         helper.make_node("Sigmoid", ["h"], ["s"]),
                         helper.make_node("Concat", ["s", "h"], ["c"], axis=1),
                         helper.make_node("Gemm", ["c", "w2"], ["y"], transB=1)],
      [("w", w), ("b", b), ("w2", rng.standard_normal((3, 6)).astype(np.float32))], x4, y3)

# http: "METHOD PATH" line, then the body
requests = {
    "tf_rows": ("POST /v1/models/ctr:predict", {"instances": [[0.5] * 30, [-1.0] * 30]}),
    "tf_named": ("POST /v1/models/ctr/versions/1:predict", {"instances": [{"x": [0.25] * 30}]}),
    "tf_columns": ("POST /v1/models/ctr:predict", {"inputs": {"x": [[1.0] * 30]}}),
    "kserve_infer": ("POST /v2/models/ctr/infer", {"id": "a", "inputs": [{"name": "x", "shape": [1, 30],
                                                                          "datatype": "FP32", "data": [0.1] * 30}]}),
    "kserve_nested": ("POST /v2/models/ctr/versions/1/infer", {"inputs": [{"name": "x", "shape": [2, 30],
                                                                           "datatype": "FP32", "data": [[0.2] * 30] * 2}],
                                                               "outputs": [{"name": "ctr"}]}),
    "tf_status": ("GET /v1/models/ctr", None),
    "tf_metadata": ("GET /v1/models/ctr/metadata", None),
    "kserve_meta": ("GET /v2/models/ctr", None),
    "kserve_ready": ("GET /v2/health/ready", None),
    "reject-bad_json": ("POST /v1/models/ctr:predict", "{\"instances\": [[1, 2,"),
}
for name, (line, body) in requests.items():
    text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
    with open(f"{out}/http/{name}", "w") as f:
        f.write(line + "\n" + text)
