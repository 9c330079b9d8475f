"""The PyTorch module behind each fixture, rebuilt from the trainer's own classes with the weights
read back out of the fixture's `model.onnx`, so a peer converter that starts from PyTorch (LiteRT's
`litert-torch`) compiles the very model Minnow and ONNX Runtime run.

    module, example_names = torch_module("dlrm_ctr")

The fixtures ship no PyTorch checkpoint (the ONNX file is the artefact), so the weights are mapped
back: by name where the exporter kept the parameter's name; a Linear weight the dynamo exporter
stored pre-transposed as `val_N` by the `<layer>.bias` its MatMul's Add consumes; LSTM weights from
the ONNX LSTM node (gate order i,o,f,c back to PyTorch's i,f,g,o); then a unique shape match for
what is left (a constant-folded `weight.unsqueeze(0)`). A BatchNorm the exporter folded into the
convolution before it becomes the identity. Every mapping is checked: `verify` runs the rebuilt
module and ONNX Runtime on the fixture's reference rows and refuses a mismatch.
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))


class MappingError(Exception):
    pass


def _bert(config_kwargs, pooling):
    from transformers import BertConfig, BertModel
    from make_bert_fixture import Encoder

    class BothOutputs(BertModel):
        """BertModel's two outputs as a tuple (the exported graph's last_hidden_state, pooler_output)."""

        def forward(self, input_ids, attention_mask):
            out = super().forward(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    config = BertConfig(**config_kwargs)
    if pooling:
        return Encoder(BertModel(config, add_pooling_layer=False))
    return BothOutputs(config)


def _scalar_before_output(model, op):
    """The scalar constant of the `op` node nearest the graph output (RegressionMLP's y_std / y_mean)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in reversed(model.graph.node):
        if node.op_type == op:
            for name in node.input:
                if name in inits and inits[name].size == 1:
                    return float(inits[name])
    raise MappingError(f"no scalar {op} constant in the graph")


def _build(fixture, model):
    """An untrained instance of the fixture's class, with the constructor arguments the trainer used."""
    import make_fixtures as mf
    import make_rec_fixtures as mr
    if fixture == "digits_mlp":
        return mf.DigitsMLP()
    if fixture == "cnn_digits":
        return mf.DigitsCNN()
    if fixture == "ctr_mlp":
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        return mf.CtrMLP(inits["mean"], inits["std"])
    if fixture == "regression_mlp":
        return mf.RegressionMLP(_scalar_before_output(model, "Add"), _scalar_before_output(model, "Mul"))
    if fixture == "dlrm_ctr":
        return mr.DLRM(mr.DLRM_TABLES)
    if fixture == "bst_seqrec":
        return mr.BST(200, 50)
    if fixture == "bilstm_nextitem":
        return mr.NextItem(500)
    if fixture == "tiny_bert":
        return _bert(dict(vocab_size=1000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=256, max_position_embeddings=64, hidden_act="gelu"), pooling=True)
    if fixture == "bert_user_seq128":
        # Random weights, never trained: the exporter merged its equal-valued biases and LayerNorm
        # parameters into one initializer, so they cannot be mapped back by name; the trainer's
        # seed rebuilds the same module (verify() checks it against the file).
        torch.manual_seed(1)
        return _bert(dict(vocab_size=3000, hidden_size=96, num_hidden_layers=3, num_attention_heads=3,
                          intermediate_size=384, max_position_embeddings=128, hidden_act="gelu_new"), pooling=False)
    raise MappingError(f"{fixture}: no PyTorch class known for this fixture")


def _lstm_weights(model, module, inits):
    """state-dict entries of each nn.LSTM from the ONNX LSTM nodes, in order."""
    lstms = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.LSTM)]
    nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
    if len(lstms) != len(nodes):
        if lstms:
            raise MappingError(f"{len(lstms)} nn.LSTM modules but {len(nodes)} ONNX LSTM nodes")
        return {}
    out = {}
    order = lambda h: np.concatenate([np.arange(0, h), np.arange(2 * h, 4 * h), np.arange(h, 2 * h)])  # iofc -> ifco
    for (name, m), node in zip(lstms, nodes):
        # An input the exporter computed (a Concat of the named per-direction weights) is left to
        # the name match.
        w, r, b = (inits.get(node.input[i]) if len(node.input) > i else None for i in (1, 2, 3))
        h = m.hidden_size
        idx = order(h)
        dirs = 2 if m.bidirectional else 1
        for d in range(dirs):
            sfx = "_reverse" if d == 1 else ""
            if w is not None:
                out[f"{name}.weight_ih_l0{sfx}"] = w[d][idx]
            if r is not None:
                out[f"{name}.weight_hh_l0{sfx}"] = r[d][idx]
            if b is not None:
                out[f"{name}.bias_ih_l0{sfx}"] = b[d][:4 * h][idx]
                out[f"{name}.bias_hh_l0{sfx}"] = b[d][4 * h:][idx]
        out.setdefault("__used__", set()).update(node.input[i] for i in (1, 2, 3) if len(node.input) > i and node.input[i] in inits)
    return out


def load_weights(module, model):
    """Fill `module`'s state dict from the ONNX initializers (see the module docstring); raises
    MappingError naming the parameter that found no source."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    sd = module.state_dict()
    params = {n for n, _ in module.named_parameters()}
    found, used = {}, set()
    for k, v in sd.items():  # 1. the exporter kept the name
        if k in inits and tuple(inits[k].shape) == tuple(v.shape):
            found[k], _ = inits[k], used.add(k)
    lstm = _lstm_weights(model, module, inits)  # 2. LSTM nodes
    used |= lstm.pop("__used__", set())
    found.update(lstm)
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in model.graph.node:  # 3. MatMul(x, W^T) -> Add(_, layer.bias)
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1] in used:
            continue
        for nxt in consumers.get(node.output[0], []):
            bias = next((i for i in nxt.input if i.endswith(".bias") and i in sd), None) if nxt.op_type == "Add" else None
            if bias is None:
                continue
            key = bias[:-len(".bias")] + ".weight"
            w = inits[node.input[1]]
            if key in sd and key not in found and w.ndim == 2 and tuple(w.T.shape) == tuple(sd[key].shape):
                found[key] = w.T
                used.add(node.input[1])
    for k, v in sd.items():  # 4. a unique shape match among what is left
        if k in found or k not in params:
            continue
        shape = tuple(v.shape)
        cands = []
        for name, a in inits.items():
            if name in used:
                continue
            squeezed = a.reshape(a.shape[next((i for i, d in enumerate(a.shape) if d != 1), a.ndim):])
            if tuple(squeezed.shape) == shape:
                cands.append((name, squeezed))
            elif a.ndim == 2 and tuple(a.T.shape) == shape and len(shape) == 2 and shape[0] != shape[1]:
                cands.append((name, a.T))
        if len(cands) == 1:
            found[k], _ = cands[0][1], used.add(cands[0][0])
    embeddings = {f"{n}.weight" for n, m in module.named_modules() if isinstance(m, nn.Embedding)}
    for k in sorted(embeddings - set(found)):  # 4b. rows [:S] of a position table folded to a [1, S, D] constant
        rows, dim = sd[k].shape
        cands = [n for n, a in inits.items() if n not in used and a.ndim == 3 and a.shape[0] == 1 and a.shape[2] == dim and a.shape[1] < rows]
        if len(cands) == 1:
            table = np.zeros((rows, dim), np.float32)
            table[:inits[cands[0]].shape[1]] = inits[cands[0]][0]
            found[k], _ = table, used.add(cands[0])
    for name, m in module.named_modules():  # 5. a BatchNorm folded into the convolution before it
        if isinstance(m, nn.BatchNorm2d) and f"{name}.weight" not in found:
            for p, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0 - m.eps)):
                found[f"{name}.{p}"] = np.full(sd[f"{name}.{p}"].shape, value, np.float32)
    missing = [k for k in params if k not in found]
    if missing:
        raise MappingError(f"no ONNX initializer for {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    state = {k: torch.tensor(np.ascontiguousarray(found[k]), dtype=sd[k].dtype) if k in found else v for k, v in sd.items()}
    module.load_state_dict(state)
    return module.eval()


def torch_module(fixture, fixture_dir):
    """(module in eval mode, ONNX input names in forward's order) for `fixture`."""
    model = onnx.load(os.path.join(fixture_dir, "model.onnx"), load_external_data=False)
    if fixture == "minilm":  # the real encoder: the very module tools/reference/make_minilm.py exports
        from make_minilm import sentence_encoder
        return sentence_encoder()[1], [i.name for i in model.graph.input]
    module = _build(fixture, model)
    module = module.eval() if fixture == "bert_user_seq128" else load_weights(module, model)
    return module, [i.name for i in model.graph.input]


def verify(module, fixture_dir, inputs, rows=64, atol=1e-4):
    """Run the rebuilt module and ONNX Runtime on `rows` reference rows; raise MappingError unless
    every output agrees within `atol` (relative to the output's scale)."""
    import onnxruntime as ort
    s = ort.InferenceSession(os.path.join(fixture_dir, "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        got = module(*(torch.tensor(inputs[i.name][:rows]) for i in s.get_inputs()))
    got = got if isinstance(got, tuple) else (got,)
    want = s.run(None, {n: a[:rows] for n, a in inputs.items()})
    for o, g, w in zip(s.get_outputs(), got, want):
        err = float(np.max(np.abs(g.numpy() - w))) / max(1.0, float(np.max(np.abs(w))))
        if err > atol:
            raise MappingError(f"output {o.name}: rebuilt PyTorch module differs from the ONNX file by {err:.2e}")
