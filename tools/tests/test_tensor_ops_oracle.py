"""Format-1.2 tensor operators against onnxruntime: each graph is built the way torch or Hugging
Face exports it, run by both engines on random and edge-case inputs, and compared output by output."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def graph(nodes, inputs, outputs, inits=None, opset=17):
    ins = [helper.make_tensor_value_info(n, t, ["batch", *s]) for n, t, s in inputs]
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()]
    m = helper.make_model(helper.make_graph(nodes, "g", ins, outs, inits), opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def run_both(minnow, tmp_path, m, feeds, atol=1e-5, rtol=1e-5, mode="float"):
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = s.run(None, feeds)
    out = tmp_path / "m.minnow"
    minnow("convert", path, "-o", out, "--mode", mode)
    inp, res = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inp, **{f"inputs/{k}": v for k, v in feeds.items()})
    minnow("run", out, "--input", inp, "-o", res)
    with np.load(res) as z:
        for o, w in zip(s.get_outputs(), want):
            got = z[f"outputs/{o.name}"]
            assert got.shape == w.shape, (o.name, got.shape, w.shape)
            np.testing.assert_allclose(got, w.astype(np.float32), atol=atol, rtol=rtol, err_msg=o.name)
    return out


R = np.random.default_rng(11)


def x(*shape):
    return R.standard_normal(shape).astype(np.float32)


def c(v, dtype=np.int64):
    return np.array(v, dtype=dtype)


# Each case: (nodes, inputs, outputs, inits, feeds, opset)
CASES = {
    "transpose_heads": ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1, 3])],
                        [("x", F, [5, 4, 3])], [("y", F)], {}, {"x": x(7, 5, 4, 3)}, 17),
    "transpose_last_two": ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])],
                           [("x", F, [2, 5, 3])], [("y", F)], {}, {"x": x(3, 2, 5, 3)}, 17),
    "slice_steps_negative": ([helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])],
                             [("x", F, [10, 6])], [("y", F)],
                             {"s": c([-2, 1]), "e": c([-100, 6]), "a": c([1, 2]), "t": c([-3, 2])}, {"x": x(4, 10, 6)}, 17),
    "slice_batch_whole": ([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])],
                          [("x", F, [8])], [("y", F)],
                          {"s": c([0, 2]), "e": c([2**62, 7]), "a": c([0, 1])}, {"x": x(3, 8)}, 17),
    "split_sizes": ([helper.make_node("Split", ["x", "sp"], ["a", "b", "c"], axis=2)],
                    [("x", F, [3, 9])], [("a", F), ("b", F), ("c", F)], {"sp": c([2, 3, 4])}, {"x": x(5, 3, 9)}, 17),
    "split_num_outputs": ([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=-1, num_outputs=3)],
                          [("x", F, [2, 8])], [("a", F), ("b", F), ("c", F)], {}, {"x": x(5, 2, 8)}, 18),
    "expand_mask": ([helper.make_node("Expand", ["x", "s"], ["y"])],
                    [("x", F, [1, 1, 6])], [("y", F)], {"s": c([1, 2, 6, 6])}, {"x": x(3, 1, 1, 6)}, 17),
    "gather_column_int64": ([helper.make_node("Gather", ["ids", "k"], ["y"], axis=1),
                             helper.make_node("Cast", ["y"], ["f"], to=F)],
                            [("ids", I64, [5])], [("f", F)], {"k": c(-1)}, {"ids": R.integers(0, 50, (6, 5))}, 17),
    "gather_irregular_positions": ([helper.make_node("Gather", ["x", "p"], ["y"], axis=1)],
                                   [("x", F, [9, 2])], [("y", F)], {"p": c([[0, 4], [8, 1], [3, 3]])}, {"x": x(4, 9, 2)}, 17),
    "embedding_lookup": ([helper.make_node("Gather", ["table", "ids"], ["y"])],
                         [("ids", I64, [6])], [("y", F)], {"table": x(40, 8)}, {"ids": R.integers(-40, 40, (5, 6))}, 17),
    "embedding_bag_mean": ([helper.make_node("Gather", ["table", "ids"], ["e"]),
                            helper.make_node("ReduceMean", ["e", "ax"], ["y"], keepdims=0)],
                           [("ids", I64, [7])], [("y", F)], {"table": x(30, 4), "ax": c([1])},
                           {"ids": R.integers(0, 30, (5, 7))}, 18),
    "reduce_sum_keepdims": ([helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=1)],
                            [("x", F, [3, 4, 5])], [("y", F)], {"ax": c([2, 3])}, {"x": x(4, 3, 4, 5)}, 17),
    "reduce_max_attr": ([helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=0)],
                        [("x", F, [6, 5])], [("y", F)], {}, {"x": x(4, 6, 5)}, 17),
    "reduce_l2_min": ([helper.make_node("ReduceL2", ["x", "ax"], ["a"], keepdims=1),
                       helper.make_node("ReduceMin", ["x", "ax"], ["b"], keepdims=0)],
                      [("x", F, [6, 5])], [("a", F), ("b", F)], {"ax": c([-1])}, {"x": x(4, 6, 5)}, 18),
    "attention_scores": ([helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
                          helper.make_node("MatMul", ["q", "kt"], ["s"]),
                          helper.make_node("Softmax", ["s"], ["p"], axis=-1),
                          helper.make_node("MatMul", ["p", "v"], ["y"])],
                         [("q", F, [2, 5, 4]), ("k", F, [2, 5, 4]), ("v", F, [2, 5, 3])], [("y", F)], {},
                         {"q": x(3, 2, 5, 4), "k": x(3, 2, 5, 4), "v": x(3, 2, 5, 3)}, 17),
    # Right operands read in place (format 1.6): DLRM's t @ t^T, attention's K^T and V split by head.
    "matmul_right_transposed_in_place": ([helper.make_node("Transpose", ["t"], ["tt"], perm=[0, 2, 1]),
                                          helper.make_node("MatMul", ["t", "tt"], ["y"])],
                                         [("t", F, [5, 4])], [("y", F)], {}, {"t": x(3, 5, 4)}, 17),
    "matmul_right_key_heads_in_place": ([helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
                                         helper.make_node("MatMul", ["q", "kt"], ["y"])],
                                        [("q", F, [2, 5, 3]), ("k", F, [6, 2, 3])], [("y", F)], {},
                                        {"q": x(3, 2, 5, 3), "k": x(3, 6, 2, 3)}, 17),
    "matmul_right_value_heads_in_place": ([helper.make_node("Transpose", ["v"], ["vh"], perm=[0, 2, 1, 3]),
                                           helper.make_node("MatMul", ["p", "vh"], ["y"])],
                                          [("p", F, [2, 5, 6]), ("v", F, [6, 2, 3])], [("y", F)], {},
                                          {"p": x(3, 2, 5, 6), "v": x(3, 6, 2, 3)}, 17),
    # Attention as BST exports it (format 1.8): one projection sliced into Q, K and V, each split
    # by head; after the products the heads merge back. Every copy becomes a stride of a product.
    "attention_heads_split_and_merge": ([helper.make_node("Reshape", ["x", "s5"], ["v5"]),
                                         *[helper.make_node("Slice", ["v5", f"b{i}", f"e{i}", "ax2"], [f"p{i}"]) for i in range(3)],
                                         *[helper.make_node("Squeeze", [f"p{i}", "ax2"], [f"h{i}"]) for i in range(3)],
                                         helper.make_node("Transpose", ["h0"], ["q"], perm=[0, 2, 1, 3]),
                                         helper.make_node("Transpose", ["h1"], ["kt"], perm=[0, 2, 3, 1]),
                                         helper.make_node("Transpose", ["h2"], ["v"], perm=[0, 2, 1, 3]),
                                         helper.make_node("MatMul", ["q", "kt"], ["sc"]),
                                         helper.make_node("Div", ["sc", "d"], ["sd"]),
                                         helper.make_node("Softmax", ["sd"], ["pr"], axis=-1),
                                         helper.make_node("MatMul", ["pr", "v"], ["o"]),
                                         helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
                                         helper.make_node("Reshape", ["ot", "s3"], ["y"])],
                                        [("x", F, [7, 24])], [("y", F)],
                                        {"s5": c([-1, 7, 3, 2, 4]), "s3": c([-1, 7, 8]), "ax2": c([2]), "d": np.array(2, np.float32),
                                         **{f"b{i}": c([i]) for i in range(3)}, **{f"e{i}": c([i + 1]) for i in range(3)}},
                                        {"x": x(5, 7, 24)}, 17),
    "layer_norm_op": ([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-12)],
                      [("x", F, [5, 16])], [("y", F)], {"g": x(16), "b": x(16)}, {"x": x(4, 5, 16) * 3 + 1}, 17),
    "gelu_op_both_forms": ([helper.make_node("Gelu", ["x"], ["a"]), helper.make_node("Gelu", ["x"], ["b"], approximate="tanh")],
                           [("x", F, [12])], [("a", F), ("b", F)], {}, {"x": x(6, 12) * 3}, 20),
    "masked_softmax_hf": ([helper.make_node("Cast", ["mask"], ["mb"], to=B),
                           helper.make_node("Where", ["mb", "zero", "neg"], ["add"]),
                           helper.make_node("Add", ["s", "add"], ["sm"]),
                           helper.make_node("Softmax", ["sm"], ["y"], axis=-1)],
                          [("s", F, [2, 6, 6]), ("mask", I64, [1, 1, 6])], [("y", F)],
                          {"zero": np.array(0, np.float32), "neg": np.array(-3.4028234663852886e38, np.float32)},
                          {"s": x(3, 2, 6, 6), "mask": np.array([[[[1, 1, 1, 0, 0, 0]]], [[[1] * 6]], [[[1, 0, 1, 0, 1, 0]]]], np.int64)}, 17),
    "compare_and_logic": ([helper.make_node("Equal", ["ids", "zero"], ["pad"]),
                           helper.make_node("Not", ["pad"], ["keep"]),
                           helper.make_node("Greater", ["x", "half"], ["big"]),
                           helper.make_node("Less", ["x", "nhalf"], ["small"]),
                           helper.make_node("Or", ["big", "small"], ["far"]),
                           helper.make_node("And", ["far", "keep"], ["both"]),
                           helper.make_node("Cast", ["both"], ["y"], to=F)],
                          [("ids", I64, [6]), ("x", F, [6])], [("y", F)],
                          {"zero": c(0), "half": np.array(0.5, np.float32), "nhalf": np.array(-0.5, np.float32)},
                          {"ids": R.integers(0, 3, (8, 6)), "x": x(8, 6)}, 17),
    "float_math": ([helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Neg", ["x"], ["n"]),
                    helper.make_node("Erf", ["x"], ["r"]), helper.make_node("Abs", ["x"], ["ax"]) if False else helper.make_node("Mul", ["x", "x"], ["ax"]),
                    helper.make_node("Sqrt", ["ax"], ["q"]), helper.make_node("Reciprocal", ["e"], ["rc"]),
                    helper.make_node("Pow", ["ax", "p"], ["pw"]), helper.make_node("Max", ["x", "n"], ["mx"]),
                    helper.make_node("Min", ["x", "h"], ["mn"])],
                   [("x", F, [10])], [("e", F), ("n", F), ("r", F), ("q", F), ("rc", F), ("pw", F), ("mx", F), ("mn", F)],
                   {"p": np.array(1.5, np.float32), "h": np.array(0.25, np.float32)}, {"x": x(5, 10)}, 17),
    "decomposed_layer_norm": ([helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
                               helper.make_node("Sub", ["x", "m"], ["d"]),
                               helper.make_node("Pow", ["d", "two"], ["d2"]),
                               helper.make_node("ReduceMean", ["d2"], ["v"], axes=[-1]),
                               helper.make_node("Add", ["v", "eps"], ["ve"]),
                               helper.make_node("Sqrt", ["ve"], ["sd"]),
                               helper.make_node("Div", ["d", "sd"], ["nrm"]),
                               helper.make_node("Mul", ["nrm", "g"], ["sc"]),
                               helper.make_node("Add", ["sc", "b"], ["y"])],
                              [("x", F, [4, 12])], [("y", F)],
                              {"two": np.array(2, np.float32), "eps": np.array(1e-5, np.float32), "g": x(12), "b": x(12)},
                              {"x": x(3, 4, 12) * 2 + 0.5}, 17),
    # torch's SDPA export: NaN rows of a fully masked query's softmax become 0 (one fused softmax).
    "softmax_nan_guard": ([helper.make_node("Softmax", ["x"], ["p"], axis=-1), helper.make_node("IsNaN", ["p"], ["n"]),
                           helper.make_node("Where", ["n", "zero", "p"], ["y"])],
                          [("x", F, [3, 5, 9])], [("y", F)], {"zero": np.array(0, np.float32)},
                          {"x": np.where(np.arange(5)[None, None, :, None] == 2, -np.inf, x(4, 3, 5, 9)).astype(np.float32)}, 17),
    "decomposed_gelu": ([helper.make_node("Div", ["x", "sq2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                         helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
                         helper.make_node("Mul", ["m", "half"], ["y"])],
                        [("x", F, [16])], [("y", F)],
                        {"sq2": np.array(1.4142135, np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)},
                        {"x": x(4, 16) * 3}, 17),
    "conv_stride_pad_dilation": ([helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[2, 1], pads=[1, 2, 0, 1], dilations=[1, 2])],
                                 [("x", F, [3, 9, 8])], [("y", F)], {"w": x(5, 3, 3, 2), "b": x(5)}, {"x": x(4, 3, 9, 8)}, 17),
    "conv_groups_same_upper": ([helper.make_node("Conv", ["x", "w"], ["y"], group=2, auto_pad="SAME_UPPER", strides=[2, 2])],
                               [("x", F, [4, 7, 7])], [("y", F)], {"w": x(6, 2, 3, 3)}, {"x": x(3, 4, 7, 7)}, 17),
    "conv1d": ([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1])],
               [("x", F, [4, 12])], [("y", F)], {"w": x(6, 4, 3), "b": x(6)}, {"x": x(3, 4, 12)}, 17),
    "conv_bn_relu_folded": ([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-3),
                             helper.make_node("Relu", ["n"], ["y"])],
                            [("x", F, [2, 6, 6])], [("y", F)],
                            {"w": x(4, 2, 3, 3), "b": x(4), "s": x(4), "bb": x(4), "m": x(4), "v": np.abs(x(4)) + 0.5},
                            {"x": x(5, 2, 6, 6)}, 17),
    # Channels-last chains (the converter drops the transpose between a conv and the conv or pool
    # that reads it): odd channel counts (3-byte and 12-byte taps), padding on every side, strides,
    # dilation, groups, a pool with ceil mode and one averaging the padding, small widths where the
    # kernel copies its last rows exactly.
    "conv_chain_channels_last": ([helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 2, 1, 0]),
                                  helper.make_node("Relu", ["c1"], ["r1"]),
                                  helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 1], pads=[2, 1, 1, 2], dilations=[1, 2]),
                                  helper.make_node("MaxPool", ["c2"], ["p2"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1],
                                                   ceil_mode=1),
                                  helper.make_node("Conv", ["p2", "w3"], ["y"], group=3, pads=[1, 1, 1, 1])],
                                 [("x", F, [3, 9, 7])], [("y", F)],
                                 {"w1": x(5, 3, 3, 3), "b1": x(5), "w2": x(6, 5, 3, 2), "b2": x(6), "w3": x(3, 2, 2, 3)},
                                 {"x": x(5, 3, 9, 7)}, 17),
    "conv_avgpool_channels_last": ([helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[2, 2, 2, 2]),
                                    helper.make_node("AveragePool", ["c1"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                                     count_include_pad=1),
                                    helper.make_node("Conv", ["x", "w1"], ["c2"], pads=[2, 2, 2, 2]),
                                    helper.make_node("AveragePool", ["c2"], ["z"], kernel_shape=[2, 3], strides=[1, 2])],
                                   [("x", F, [1, 4, 3])], [("y", F), ("z", F)], {"w1": x(3, 1, 5, 5)}, {"x": x(3, 1, 4, 3)}, 17),
    # A kernel taller than the channels-last im2col handles (16 rows) stays NCHW.
    "conv_tall_kernel_stays_nchw": ([helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[8, 0, 8, 0]),
                                     helper.make_node("Conv", ["c1", "w2"], ["y"], pads=[0, 1, 0, 1])],
                                    [("x", F, [2, 18, 3])], [("y", F)], {"w1": x(4, 2, 17, 1), "w2": x(2, 4, 17, 3)},
                                    {"x": x(2, 2, 18, 3)}, 17),
    # An Add after a fused Relu must not fold into the bias (it applies after the activation).
    "gemm_relu_then_add": ([helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["r"]),
                            helper.make_node("Add", ["r", "k"], ["a"]), helper.make_node("Mul", ["a", "k"], ["y"])],
                           [("x", F, [6])], [("y", F)], {"w": x(4, 6), "b": x(4), "k": x(4)}, {"x": x(5, 6)}, 17),
    # A scale after layout copies of a linear layer (SDPA's q * d^-1/4) folds into its weights;
    # behind a Relu it must not (relu(v) * k is not relu(v * k) for k < 0).
    "scale_after_transpose_folds": ([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["l"]),
                                     helper.make_node("Reshape", ["l", "shape"], ["r"]),
                                     helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
                                     helper.make_node("Mul", ["t", "k"], ["ts"]), helper.make_node("Softmax", ["ts"], ["y"]),
                                     helper.make_node("MatMul", ["x", "w"], ["m2"]), helper.make_node("Relu", ["m2"], ["r2"]),
                                     helper.make_node("Reshape", ["r2", "shape"], ["s2"]),
                                     helper.make_node("Transpose", ["s2"], ["t2"], perm=[0, 2, 1, 3]),
                                     helper.make_node("Div", ["t2", "k"], ["t2s"]), helper.make_node("Softmax", ["t2s"], ["z"])],
                                    [("x", F, [5, 6])], [("y", F), ("z", F)],
                                    {"w": x(6, 8), "b": x(8), "shape": c([0, 5, 2, 4]), "k": np.array(-0.42, np.float32)},
                                    {"x": x(3, 5, 6)}, 17),
    "maxpool_ceil_pad": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
                         [("x", F, [3, 8, 7])], [("y", F)], {}, {"x": x(4, 3, 8, 7)}, 17),
    "avgpool_include_pad": ([helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[2, 3], pads=[1, 1, 1, 1], count_include_pad=1),
                             helper.make_node("AveragePool", ["x"], ["b"], kernel_shape=[2, 2], strides=[2, 2])],
                            [("x", F, [3, 6, 6])], [("a", F), ("b", F)], {}, {"x": x(4, 3, 6, 6)}, 17),
    "global_pools": ([helper.make_node("GlobalAveragePool", ["x"], ["a"]), helper.make_node("GlobalMaxPool", ["x"], ["b"])],
                     [("x", F, [5, 4, 3])], [("a", F), ("b", F)], {}, {"x": x(4, 5, 4, 3)}, 17),
}


def _rnn_case(op, direction, hidden=5, steps=7, inputs=4, lbr=None, use_yh=False):
    """torch's export shape: batch-first x -> Transpose -> op -> Y [S, D, B, H] -> back to [B, S, D*H]."""
    d = 2 if direction == "bidirectional" else 1
    g = 4 if op == "LSTM" else 3
    attrs = {"hidden_size": hidden, "direction": direction}
    if lbr is not None:
        attrs["linear_before_reset"] = lbr
    outs = ["Y", "Yh"] if use_yh else ["Y"]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(op, ["xt", "W", "R", "B"], outs, **attrs),
             helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["Yt", "shape"], ["Yr"]),
             helper.make_node("Transpose", ["Yr"], ["y"], perm=[1, 0, 2])]
    results = [("y", F)]
    if use_yh:
        nodes.append(helper.make_node("Transpose", ["Yh"], ["h"], perm=[1, 0, 2]))
        results.append(("h", F))
    inits = {"W": x(d, g * hidden, inputs) * 0.5, "R": x(d, g * hidden, hidden) * 0.5, "B": x(d, 2 * g * hidden) * 0.2,
             "shape": c([steps, 0, d * hidden])}
    # Six samples: the recurrence steps the batch through the blocked GEMM (four rows or more).
    return (nodes, [("x", F, [steps, inputs])], results, inits, {"x": x(6, steps, inputs)}, 17)


CASES.update({
    # Hugging Face BERT: token_type_ids from a buffer of zeros (GatherElements on it, then Expand over
    # the batch), looked up and added; position ids sliced from a buffer with Range/Max folding.
    "hf_token_type_embedding": ([helper.make_node("Gather", ["words", "ids"], ["we"]),
                                 helper.make_node("GatherElements", ["buf", "pos"], ["tt"], axis=1),
                                 helper.make_node("Shape", ["ids"], ["b"], start=0, end=1),
                                 helper.make_node("Concat", ["b", "s"], ["target"], axis=0),
                                 helper.make_node("Expand", ["tt", "target"], ["tte"]),
                                 helper.make_node("Gather", ["types", "tte"], ["te"]),
                                 helper.make_node("Max", ["lo", "hi"], ["m"]),
                                 helper.make_node("Add", ["we", "te"], ["a"]),
                                 helper.make_node("Mul", ["a", "m"], ["y"])],
                                [("ids", I64, [6])], [("y", F)],
                                {"words": x(30, 4), "types": x(2, 4), "buf": np.zeros((1, 16), np.int64), "pos": c([[0, 1, 2, 3, 4, 5]]),
                                 "s": c([6]), "lo": np.array([0.5, 2, -1, 1], np.float32), "hi": np.array([1, 1, 1, 1], np.float32)},
                                {"ids": R.integers(0, 30, (4, 6))}, 17),
    # transformers' masking_utils: mask[batch_idx, kv_idx] with batch_idx = Range(0, batch) as a GatherND,
    # shapes from Max/Shape/Expand; then And with a constant, Where into an additive mask.
    "hf_padding_mask_gathernd": ([helper.make_node("Shape", ["mask"], ["bs"], start=0, end=1),
                                  helper.make_node("Squeeze", ["bs"], ["b"]),
                                  helper.make_node("Cast", ["mask"], ["mb"], to=B),
                                  helper.make_node("Range", ["zero", "b", "one"], ["ar"]),
                                  helper.make_node("Unsqueeze", ["ar", "ax12"], ["u1"]),
                                  helper.make_node("Unsqueeze", ["u1", "ax3"], ["u2"]),
                                  helper.make_node("Max", ["u2", "kv"], ["mx"]),
                                  helper.make_node("Shape", ["mx"], ["shp"]),
                                  helper.make_node("Expand", ["u2", "shp"], ["e1"]),
                                  helper.make_node("Unsqueeze", ["e1", "axm1"], ["i1"]),
                                  helper.make_node("Expand", ["kv", "shp"], ["e2"]),
                                  helper.make_node("Unsqueeze", ["e2", "axm1"], ["i2"]),
                                  helper.make_node("Concat", ["i1", "i2"], ["idx"], axis=-1),
                                  helper.make_node("GatherND", ["mb", "idx"], ["g"]),
                                  helper.make_node("GreaterOrEqual", ["kvq", "zero"], ["ge"]),
                                  helper.make_node("And", ["ge", "g"], ["both"]),
                                  helper.make_node("Where", ["both", "fz", "neg"], ["add"]),
                                  helper.make_node("Add", ["scores", "add"], ["sc"]),
                                  helper.make_node("Softmax", ["sc"], ["p"], axis=-1),
                                  helper.make_node("IsNaN", ["p"], ["nan"]),
                                  helper.make_node("Where", ["nan", "fz", "p"], ["y"])],
                                 [("mask", I64, [6]), ("scores", F, [2, 6, 6])], [("y", F)],
                                 {"zero": c(0), "one": c(1), "ax12": c([1, 2]), "ax3": c([3]), "axm1": c([-1]),
                                  "kv": c([[[[0, 1, 2, 3, 4, 5]]]]), "kvq": c([[[[0], [1], [2], [3], [4], [5]]]]),
                                  "fz": np.array(0, np.float32), "neg": np.array(-3.4028235e38, np.float32)},
                                 {"mask": (np.arange(6)[None, :] < np.array([[6], [3], [1], [5]])).astype(np.int64),
                                  "scores": x(4, 2, 6, 6)}, 18),
    # torchlib's scaled_dot_product_attention: K^T as Reshape([-1, L, d]) -> Transpose -> Reshape back.
    "sdpa_key_transpose": ([helper.make_node("Shape", ["k"], ["ks"]),
                            helper.make_node("Slice", ["ks", "m1", "big"], ["dl"]),
                            helper.make_node("Slice", ["ks", "m2", "m1"], ["sl"]),
                            helper.make_node("Slice", ["ks", "small", "m2"], ["lead"]),
                            helper.make_node("Concat", ["m1", "sl", "dl"], ["s1"], axis=0),
                            helper.make_node("Reshape", ["k", "s1"], ["k3"]),
                            helper.make_node("Transpose", ["k3"], ["kt3"], perm=[0, 2, 1]),
                            helper.make_node("Concat", ["lead", "dl", "sl"], ["s2"], axis=0),
                            helper.make_node("Reshape", ["kt3", "s2"], ["kt"]),
                            helper.make_node("MatMul", ["q", "kt"], ["y"])],
                           [("q", F, [3, 5, 4]), ("k", F, [3, 5, 4])], [("y", F)],
                           {"m1": c([-1]), "m2": c([-2]), "big": c([2**62]), "small": c([-(2**62)])},
                           {"q": x(4, 3, 5, 4), "k": x(4, 3, 5, 4)}, 18),
    "reshape_minus_one_over_unit_axis": ([helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Relu", ["r"], ["y"])],
                                         [("x", F, [1, 5])], [("y", F)], {"s": c([-1, 5])}, {"x": x(3, 1, 5)}, 17),
    "compare_or_equal": ([helper.make_node("GreaterOrEqual", ["a", "b"], ["ge"]), helper.make_node("LessOrEqual", ["a", "t"], ["le"]),
                          helper.make_node("And", ["ge", "le"], ["both"]), helper.make_node("Cast", ["both"], ["y"], to=F)],
                         [("a", F, [8]), ("b", F, [8])], [("y", F)], {"t": np.array(0.5, np.float32)},
                         {"a": np.round(x(5, 8)), "b": np.round(x(5, 8))}, 17),
    "expand_constant_folded": ([helper.make_node("Expand", ["c", "s"], ["e"]), helper.make_node("Add", ["x", "e"], ["y"])],
                               [("x", F, [3, 4])], [("y", F)], {"c": x(1, 4), "s": c([3, 4])}, {"x": x(2, 3, 4)}, 17),
    "decomposed_gelu_tanh": ([helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Pow", ["x", "three"], ["p"]),
                              helper.make_node("Mul", ["p", "k"], ["pk"]), helper.make_node("Add", ["x", "pk"], ["s"]),
                              helper.make_node("Mul", ["s", "c"], ["sc"]), helper.make_node("Tanh", ["sc"], ["t"]),
                              helper.make_node("Add", ["t", "one"], ["a"]), helper.make_node("Mul", ["h", "a"], ["y"])],
                             [("x", F, [16])], [("y", F)],
                             {"half": np.array(0.5, np.float32), "three": np.array(3, np.float32), "k": np.array(0.044715, np.float32),
                              "c": np.array(0.7978845608, np.float32), "one": np.array(1, np.float32)},
                             {"x": x(4, 16) * 3}, 17),
    "lstm_bidirectional_with_final_state": _rnn_case("LSTM", "bidirectional", use_yh=True),
    "lstm_forward": _rnn_case("LSTM", "forward"),
    "gru_linear_before_reset": _rnn_case("GRU", "bidirectional", lbr=1, use_yh=True),
    "gru_reset_before_linear": _rnn_case("GRU", "forward", lbr=0),
})


@pytest.mark.parametrize("name", sorted(CASES))
def test_tensor_op_float_matches_onnxruntime(minnow, tmp_path, name):
    nodes, inputs, outputs, inits, feeds, opset = CASES[name]
    run_both(minnow, tmp_path, graph(nodes, inputs, outputs, inits, opset), feeds, atol=2e-5, rtol=2e-5)


def test_embedding_id_outside_table_is_a_clear_error(minnow, tmp_path):
    nodes, inputs, outputs, inits, _, opset = CASES["embedding_lookup"]
    path = tmp_path / "m.onnx"
    onnx.save(graph(nodes, inputs, outputs, inits, opset), path)
    minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", "float")
    np.savez(tmp_path / "in.npz", **{"inputs/ids": np.array([[1, 2, 3, 4, 40, 5]], np.int64)})
    p = minnow("run", tmp_path / "m.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz", check=False)
    assert p.returncode == 1
    assert "id 40 at position 4 is outside the table's 40 rows" in p.stderr


@pytest.mark.parametrize("name,fused", [("decomposed_layer_norm", "LayerNorm"), ("decomposed_gelu", "Gelu"),
                                        ("decomposed_gelu_tanh", "GeluTanh"), ("softmax_nan_guard", "Softmax")])
def test_decomposed_patterns_become_one_kernel(minnow, tmp_path, name, fused):
    import json
    nodes, inputs, outputs, inits, feeds, opset = CASES[name]
    out = run_both(minnow, tmp_path, graph(nodes, inputs, outputs, inits, opset), feeds, atol=2e-5, rtol=2e-5)
    ops = json.loads(minnow("inspect", out, "--json").stdout)["operators"]
    assert [o["op"] for o in ops] == [fused]


@pytest.mark.parametrize("name", ["matmul_right_transposed_in_place", "matmul_right_key_heads_in_place",
                                  "matmul_right_value_heads_in_place", "attention_scores"])
def test_a_transposed_right_operand_is_read_in_place(minnow, tmp_path, name):
    import json
    nodes, inputs, outputs, inits, feeds, opset = CASES[name]
    out = run_both(minnow, tmp_path, graph(nodes, inputs, outputs, inits, opset), feeds, atol=2e-5, rtol=2e-5)
    ops = [o["op"] for o in json.loads(minnow("inspect", out, "--json").stdout)["operators"]]
    assert "StridedCopy" not in ops and "MatMul" in ops, ops


def test_attention_head_split_and_merge_are_strides_of_the_products(minnow, tmp_path):
    """The slices and transposes around attention's products fold into the products' reads and
    write (no copy left), and give the same bits as with the copies kept."""
    import json
    nodes, inputs, outputs, inits, feeds, opset = CASES["attention_heads_split_and_merge"]
    out = run_both(minnow, tmp_path, graph(nodes, inputs, outputs, inits, opset), feeds, atol=2e-5, rtol=2e-5)
    ops = [o["op"] for o in json.loads(minnow("inspect", out, "--json").stdout)["operators"]]
    assert "StridedCopy" not in ops and ops.count("MatMul") == 2, ops
    kept = tmp_path / "kept.minnow"
    minnow("convert", tmp_path / "m.onnx", "-o", kept, "--mode", "float", "--keep-layout-copies")
    assert [o["op"] for o in json.loads(minnow("inspect", kept, "--json").stdout)["operators"]].count("StridedCopy") >= 3
    minnow("run", kept, "--input", tmp_path / "in.npz", "-o", tmp_path / "kept.npz")
    with np.load(tmp_path / "out.npz") as a, np.load(tmp_path / "kept.npz") as b:
        assert a["outputs/y"].tobytes() == b["outputs/y"].tobytes()


def test_a_scale_after_layout_copies_folds_into_the_linear_layer(minnow, tmp_path):
    import json
    nodes, inputs, outputs, inits, feeds, opset = CASES["scale_after_transpose_folds"]
    out = run_both(minnow, tmp_path, graph(nodes, inputs, outputs, inits, opset), feeds, atol=2e-5, rtol=2e-5)
    ops = [o["op"] for o in json.loads(minnow("inspect", out, "--json").stdout)["operators"]]
    assert ops.count("Mul") == 0 and ops.count("Div") == 1, ops  # the one behind the Relu stays


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_embedding_rows_stay_within_half_a_step(minnow, tmp_path, mode):
    """Rows of very different ranges get per-row scales: every looked-up value is within half a
    step of its row, the step being that row's own (asymmetric, or symmetric over +-max|x|), as
    rounded up to a 1-byte log code (at most 2^(1/16), 4.4%, larger)."""
    table = x(500, 16) * np.linspace(0.01, 3, 500, dtype=np.float32)[:, None]  # rows of very different ranges
    m = graph([helper.make_node("Gather", ["table", "ids"], ["y"])], [("ids", I64, [8])], [("y", F)], {"table": table})
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    ids = R.integers(0, 500, (64, 8))
    np.savez(tmp_path / "calib.npz", **{"inputs/ids": ids})
    minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", mode, "--calibration", tmp_path / "calib.npz")
    np.savez(tmp_path / "in.npz", **{"inputs/ids": ids})
    minnow("run", tmp_path / "m.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    with np.load(tmp_path / "o.npz") as z:
        got = z["outputs/y"]
    want = table[ids]
    lo, hi = np.minimum(table.min(1), 0), np.maximum(table.max(1), 0)
    step = (np.maximum((hi - lo) / 255, np.maximum(-lo, hi) / 127) * 2 ** (1 / 16))[ids][..., None]
    assert np.all(np.abs(got - want) <= step * 0.5 + 1e-6)
    import json
    info = json.loads(minnow("inspect", tmp_path / "m.minnow", "--json").stdout)
    assert info["embeddings"]["tables"] == 1 and info["embeddings"]["fp32_bytes"] == 500 * 16 * 4
    assert info["embeddings"]["stored_bytes"] < 500 * 16 * 4 / 3


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_small_cnn_quantized_stays_close(minnow, tmp_path, mode):
    """Conv -> Relu -> MaxPool -> Conv -> Relu -> GlobalAveragePool -> Gemm in int8: SNR >= 25 dB."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    inits = {"w1": x(8, 1, 3, 3) * 0.5, "b1": x(8) * 0.1, "w2": x(16, 8, 3, 3) * 0.2, "b2": x(16) * 0.1, "w3": x(10, 16), "b3": x(10)}
    m = graph(nodes, [("x", F, [1, 8, 8])], [("y", F)], inits)
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    np.savez(tmp_path / "calib.npz", **{"inputs/x": x(200, 1, 8, 8)})
    minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", mode, "--calibration", tmp_path / "calib.npz")
    feeds = {"x": x(64, 1, 8, 8)}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.savez(tmp_path / "in.npz", **{"inputs/x": feeds["x"]})
    minnow("run", tmp_path / "m.minnow", "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    with np.load(tmp_path / "o.npz") as z:
        got = z["outputs/y"]
    snr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert snr >= 25, snr


def test_a_value_defined_twice_is_refused(minnow, tmp_path):
    """ONNX values are single-assignment; onnxruntime refuses a graph that breaks it, and so do we."""
    m = graph([helper.make_node("Relu", ["x"], ["y"], name="first"), helper.make_node("Neg", ["x"], ["y"], name="second")],
              [("x", F, [4])], [("y", F)])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    p = minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", "float", check=False)
    assert p.returncode == 1
    assert "node 'second' (Neg): output 'y' is already defined" in p.stderr


def test_a_batch_merging_reshape_read_by_another_op_is_refused(minnow, tmp_path):
    """Reshape([-1, 4]) of [batch, 3, 4] merges the batch into rows: only the transpose-and-back of
    torch's attention may read such a value; anything else is an error naming the node."""
    m = graph([helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Relu", ["r"], ["y"], name="act")],
              [("x", F, [3, 4])], [("y", F)], {"s": c([-1, 4])})
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    p = minnow("convert", path, "-o", tmp_path / "m.minnow", "--mode", "float", check=False)
    assert p.returncode == 1
    assert "node 'act' (Relu): input 0 merges the batch with other axes" in p.stderr
