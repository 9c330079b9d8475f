"""Small ONNX graphs built with onnx.helper, in the forms torch.onnx.export produces."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inits, in_shape, out_name="y", opset=17, inputs=None):
    ins = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *in_shape])]
    out = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", ins, [out], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8  # onnxruntime's supported IR range; output shapes are left for inference
    return m


def rng(seed=0):
    return np.random.default_rng(seed)


def w(r, *shape, scale=0.5):
    return (r.standard_normal(shape) * scale).astype(np.float32)


def mlp(sizes, seed=0, act="Relu", opset=17):
    """Gemm(transB=1) + activation per layer: what torch exports for nn.Linear stacks."""
    r = rng(seed)
    nodes, inits, prev = [], {}, "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits[f"w{i}"] = w(r, b, a, scale=1 / np.sqrt(a))
        inits[f"b{i}"] = w(r, b, scale=0.1)
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out if i == len(sizes) - 2 else f"g{i}"], transB=1, name=f"fc{i}"))
        if i < len(sizes) - 2:
            nodes.append(helper.make_node(act, [f"g{i}"], [out], name=f"act{i}"))
        prev = out
    return model(nodes, inits, [sizes[0]], opset=opset)


def cases():
    """(name, model, input shape per sample) covering every converter op and pattern."""
    r = rng(1)
    out = []
    out.append(("gemm_transB0_alpha_beta", model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=0.5, beta=2.0, name="fc")],
        {"w": w(r, 8, 5), "b": w(r, 5)}, [8]), [8]))
    out.append(("matmul_add_relu", model(
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("Add", ["m", "b"], ["a"], name="add"),
         helper.make_node("Relu", ["a"], ["y"], name="relu")],
        {"w": w(r, 6, 4), "b": w(r, 4)}, [6]), [6]))
    out.append(("matmul_3d_rows", model(
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("Add", ["b", "m"], ["y"], name="add")],
        {"w": w(r, 4, 3), "b": w(r, 3)}, [5, 4]), [5, 4]))
    for act, attrs in [("Sigmoid", {}), ("Tanh", {}), ("LeakyRelu", {"alpha": 0.2})]:
        out.append((f"gemm_{act.lower()}", model(
            [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, name="fc"), helper.make_node(act, ["g"], ["y"], name="act", **attrs)],
            {"w": w(r, 7, 6), "b": w(r, 7)}, [6]), [6]))
    out.append(("clip_min_only", model(
        [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"), helper.make_node("Clip", ["g", "lo"], ["y"], name="clip")],
        {"w": w(r, 5, 6), "lo": np.array(-0.1, np.float32)}, [6]), [6]))
    out.append(("relu6_clip", model(
        [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"), helper.make_node("Clip", ["g", "lo", "hi"], ["y"], name="clip")],
        {"w": w(r, 5, 6, scale=3), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}, [6]), [6]))
    for sm in ["Softmax", "LogSoftmax"]:
        out.append((sm.lower(), model(
            [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"), helper.make_node(sm, ["g"], ["y"], axis=-1, name="sm")],
            {"w": w(r, 9, 6)}, [6]), [6]))
    # x.view(x.size(0), -1) as exported: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    out.append(("reshape_shape_chain", model(
        [helper.make_node("Shape", ["x"], ["s"], name="shape"),
         helper.make_node("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
         helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
         helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0, name="cat"),
         helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
         helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1, name="fc")],
        {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64), "w": w(r, 3, 12)},
        [3, 4]), [3, 4]))
    out.append(("flatten_gemm", model(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1, name="flat"), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")],
        {"w": w(r, 4, 24)}, [2, 3, 4]), [2, 3, 4]))
    out.append(("batchnorm_after_gemm", model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, name="fc"),
         helper.make_node("BatchNormalization", ["g", "s", "bb", "mu", "var"], ["n"], epsilon=1e-3, name="bn"),
         helper.make_node("Relu", ["n"], ["y"], name="relu")],
        {"w": w(r, 6, 5), "b": w(r, 6), "s": w(r, 6) + 1, "bb": w(r, 6), "mu": w(r, 6), "var": np.abs(w(r, 6)) + 0.5}, [5]), [5]))
    out.append(("batchnorm_on_input", model(
        [helper.make_node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"], name="bn"),
         helper.make_node("Gemm", ["n", "w"], ["y"], transB=1, name="fc")],
        {"s": w(r, 5) + 1, "bb": w(r, 5), "mu": w(r, 5), "var": np.abs(w(r, 5)) + 0.5, "w": w(r, 3, 5)}, [5]), [5]))
    out.append(("concat_branches_sub_div_mul", model(
        [helper.make_node("Sub", ["x", "mean"], ["c"], name="center"),
         helper.make_node("Div", ["c", "std"], ["z"], name="scale"),
         helper.make_node("Gemm", ["z", "w1"], ["a"], transB=1, name="left"),
         helper.make_node("Gemm", ["z", "w2"], ["b"], transB=1, name="right"),
         helper.make_node("Concat", ["a", "b"], ["ab"], axis=1, name="cat"),
         helper.make_node("Mul", ["ab", "ab"], ["sq"], name="square"),
         helper.make_node("Identity", ["sq"], ["id"], name="identity"),
         helper.make_node("Gemm", ["id", "w3"], ["y"], transB=1, name="head")],
        {"mean": w(r, 6), "std": np.abs(w(r, 6)) + 0.5, "w1": w(r, 4, 6), "w2": w(r, 3, 6), "w3": w(r, 2, 7)}, [6]), [6]))
    out.append(("unsqueeze_squeeze", model(
        [helper.make_node("Unsqueeze", ["x", "ax"], ["u"], name="unsq"),
         helper.make_node("Squeeze", ["u", "ax"], ["s"], name="sq"),
         helper.make_node("Gemm", ["s", "w"], ["y"], transB=1, name="fc")],
        {"ax": np.array([1], np.int64), "w": w(r, 2, 4)}, [4]), [4]))
    return out
