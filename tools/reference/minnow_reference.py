"""The trainer's side of Minnow: one call at the end of a training script writes what
`minnow convert` and `minnow parity` need.

    from minnow_reference import export_for_minnow
    export_for_minnow(model, "out/", inputs={"x": x_test}, calibration={"x": x_train[:2000]},
                      labels={"probs": y_test}, parity={"task": "multiclass",
                      "outputs": {"probs": {"top1_agreement": {"min": 0.99}}}})

writes out/model.onnx (dynamic batch, weights inline), out/calibration.npz (inputs/<name>),
out/reference.npz (inputs/<name>, outputs/<name> = the model's own fp32 outputs, labels/<name>)
and, if given, out/parity.json. Works for any torch.nn.Module with array inputs.

For Keras or scikit-learn (or anything that exported its own ONNX), use write_reference() with
the framework's own predictions; see docs/parity.md.
"""
import json
import os

import numpy as np


def _as_input(v):
    """Float features as float32; ids and masks (integer or bool arrays) as int64."""
    v = np.asarray(v)
    if np.issubdtype(v.dtype, np.integer) or v.dtype == np.bool_:
        return np.ascontiguousarray(v, dtype=np.int64)
    return np.ascontiguousarray(v, dtype=np.float32)


def write_reference(out_dir, inputs, outputs, labels=None, calibration=None, parity=None):
    """Writes calibration.npz, reference.npz and parity.json from plain numpy arrays.

    inputs / outputs / labels / calibration: dicts name -> array, first dimension = samples.
    """
    os.makedirs(out_dir, exist_ok=True)
    counts = {len(v) for v in inputs.values()}
    if len(counts) != 1:
        raise ValueError(f"inputs have different sample counts: { {k: len(v) for k, v in inputs.items()} }")
    samples = counts.pop()
    for name, v in list(outputs.items()) + list((labels or {}).items()):
        if len(v) != samples:
            raise ValueError(f"'{name}' has {len(v)} rows, inputs have {samples}")
    arrays = {f"inputs/{k}": _as_input(v) for k, v in inputs.items()}
    arrays.update({f"outputs/{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in outputs.items()})
    for k, v in (labels or {}).items():
        v = np.asarray(v)
        arrays[f"labels/{k}"] = v.astype(np.int64) if np.issubdtype(v.dtype, np.integer) else v.astype(np.float32)
    np.savez(os.path.join(out_dir, "reference.npz"), **arrays)
    if calibration is not None:
        np.savez_compressed(os.path.join(out_dir, "calibration.npz"),
                            **{f"inputs/{k}": _as_input(v) for k, v in calibration.items()})
    if parity is not None:
        with open(os.path.join(out_dir, "parity.json"), "w") as f:
            json.dump(parity, f, indent=2, sort_keys=True)
            f.write("\n")


def export_for_minnow(model, out_dir, inputs, calibration, labels=None, parity=None, output_names=None,
                      max_batch=4096, dynamo=True):
    """Exports a PyTorch model to out_dir/model.onnx with a dynamic batch dimension, then records
    its own outputs on `inputs` as the reference (and `labels` if given).

    inputs, calibration: dicts input name -> numpy array (same names, in forward() order).
    output_names: names for the model's outputs (default: "output", or output_0, output_1, ...).
    """
    import torch

    model.eval()
    names = list(inputs)
    example = tuple(torch.as_tensor(_as_input(calibration[k][:2])) for k in names)
    with torch.no_grad():
        probe = model(*example)
    count = len(probe) if isinstance(probe, (tuple, list)) else 1
    output_names = output_names or (["output"] if count == 1 else [f"output_{i}" for i in range(count)])
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    if dynamo:
        import inspect
        params = list(inspect.signature(model.forward).parameters)
        batch = torch.export.Dim("batch", min=1, max=max_batch)
        torch.onnx.export(model, example, path, input_names=names, output_names=output_names, dynamo=True,
                          external_data=False, optimize=True, dynamic_shapes={p: {0: batch} for p in params[:len(names)]})
    else:
        axes = {n: {0: "batch"} for n in names + output_names}
        torch.onnx.export(model, example, path, input_names=names, output_names=output_names, dynamo=False,
                          dynamic_axes=axes, opset_version=17)
    with torch.no_grad():
        result = model(*(torch.as_tensor(_as_input(inputs[k])) for k in names))
    results = result if isinstance(result, (tuple, list)) else (result,)
    outputs = {n: r.detach().cpu().numpy() for n, r in zip(output_names, results)}
    write_reference(out_dir, inputs, outputs, labels=labels, calibration=calibration, parity=parity)
    return path
