#!/usr/bin/env python3
"""Writes fixtures/errors/*.onnx: small models the converter must refuse with a clear message.

    python3 tools/reference/make_error_fixtures.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "errors")


def mlp_graph(nodes, inits, name="g"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None])
    return helper.make_graph(nodes, name, [x], [y], inits)


def main():
    os.makedirs(OUT, exist_ok=True)
    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    # An operator Minnow does not have.
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    g = mlp_graph([helper.make_node("TopK", ["x", "k"], ["y", "idx"], name="topk")], [k])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(OUT, "unsupported_op.onnx"))
    # An opset below the supported range.
    g = mlp_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 12)]), os.path.join(OUT, "opset12.onnx"))
    # Weights in an external file (which is deliberately not shipped: it must never be read).
    ext = TensorProto()
    ext.name = "w"
    ext.data_type = TensorProto.FLOAT
    ext.dims.extend([3, 4])
    ext.data_location = TensorProto.EXTERNAL
    for key, value in [("location", "weights.bin"), ("offset", "0"), ("length", "48")]:
        entry = ext.external_data.add()
        entry.key, entry.value = key, value
    g = mlp_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")], [ext])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(OUT, "external_data.onnx"))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# errors\n\nModels the converter must refuse with a clear error (unsupported op, opset 12, external data).\n"
                "Regenerate: `python3 tools/reference/make_error_fixtures.py`\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
