"""LiteRT (TensorFlow Lite with XNNPACK) variants of a fixture, built the way a LiteRT user builds
them from the same PyTorch model, and a runner that times them like the other engines.

    variants = build("dlrm_ctr", fixture_dir, tmp, batches=(1, 64))
    # {"litert-fp32": Built(paths={1: ..., 64: ...}, how={...}), "litert-int8-static": ..., ...}
    # or Built(error="...") when the converter refuses the model

- fp32: `litert_torch.convert(module, example).export(path)` on the module
  tools/compare/torch_from_fixture.py rebuilds (verified against the fixture's ONNX file).
- int8 dynamic-range: ai-edge-quantizer's `dynamic_wi8_afp32` recipe on the fp32 file.
- int8 static (full-integer): `static_wi8_ai8`, calibrated on the fixture's calibration rows with a
  running min/max (`qsv_utils.min_max_update`; the quantizer's own default is a moving average).
  Its inputs and outputs are int8: the runner quantizes inputs and dequantizes outputs outside the
  timed call.

litert-torch graphs are static-shape. For each batch but 1 the batch-1 file is tried with
`resize_tensor_input` and its outputs compared with the batch-1 file's row by row; where that fails
(or the outputs differ) the module is converted again at that batch. `Built.how[batch]` says which.

Needs `pip install -r tools/requirements-compare.txt` (litert-torch wants torch<2.15).
"""
import os
import traceback
from dataclasses import dataclass, field

import numpy as np

VARIANTS = ["litert-fp32", "litert-int8-static", "litert-int8-dynamic"]


@dataclass
class Built:
    paths: dict = field(default_factory=dict)   # batch -> .tflite path
    how: dict = field(default_factory=dict)     # batch -> "converted" | "resized from batch 1"
    error: str = None


def versions():
    from importlib.metadata import version
    out = {}
    for p in ["ai-edge-litert", "litert-torch", "ai-edge-quantizer", "torch"]:
        try:
            out[p] = version(p)
        except Exception:
            out[p] = "not installed"
    return out


def available():
    """None when LiteRT's packages import, else the reason they do not."""
    try:
        import litert_torch  # noqa: F401
        import ai_edge_quantizer  # noqa: F401
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except Exception as e:  # ImportError, or a torch the converter refuses
        return f"{type(e).__name__}: {e}"
    return None


class Runner:
    """One .tflite file in an Interpreter at `batch` rows with `threads` threads.

    `prepare(feed)` turns {onnx input name: array} into the interpreter's input dtypes (ids to
    int32, float to int8 through the input's scale and zero point for the full-integer variant):
    done once, outside any timing. `call(prepared)` is the Python call a user writes
    (set_tensor, invoke, get_tensor); `invoke()` is LiteRT's own work on bound inputs.
    """

    def __init__(self, path, batch, threads, input_names):
        from ai_edge_litert.interpreter import Interpreter
        self.it = Interpreter(model_path=path, num_threads=threads)
        sig = self.it.get_signature_list()
        key = next(iter(sig))
        runner = self.it.get_signature_runner(key)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        # Signature order is forward()'s argument order, the same as the ONNX inputs'.
        self.inputs = [(name, ins[a]) for name, a in zip(input_names, sig[key]["inputs"])]
        self.outputs = [outs[a] for a in sig[key]["outputs"]]
        del runner  # it holds views of the interpreter's tensors, which allocate_tensors refuses
        for _, d in self.inputs:
            if d["shape"][0] != batch:
                self.it.resize_tensor_input(d["index"], [batch, *d["shape"][1:]], strict=False)
        self.it.allocate_tensors()
        self.batch = batch

    def prepare(self, feed):
        prepared = []
        for name, d in self.inputs:
            a = feed[name]
            scale, zero = d["quantization"]
            if d["dtype"] in (np.int8, np.uint8) and scale:
                info = np.iinfo(d["dtype"])
                a = np.clip(np.round(a / scale) + zero, info.min, info.max)
            prepared.append((d["index"], np.ascontiguousarray(a.astype(d["dtype"]))))
        return prepared

    def set_inputs(self, prepared):
        for index, a in prepared:
            self.it.set_tensor(index, a)

    def invoke(self):
        self.it.invoke()

    def call(self, prepared):
        self.set_inputs(prepared)
        self.it.invoke()
        return [self.it.get_tensor(d["index"]) for d in self.outputs]

    def outputs_float(self):
        """The outputs in float (dequantized for the full-integer variant)."""
        out = []
        for d in self.outputs:
            a = self.it.get_tensor(d["index"])
            scale, zero = d["quantization"]
            out.append((a.astype(np.float32) - zero) * scale if scale and a.dtype != np.float32 else a.astype(np.float32))
        return out


def run_rows(path, inputs, input_names, batch, threads=1):
    """Every row of `inputs` through the file at `batch` (the last chunk padded by repeating rows):
    the float outputs, one array per output."""
    r = Runner(path, batch, threads, input_names)
    n = len(next(iter(inputs.values())))
    chunks = []
    for i in range(0, n, batch):
        feed = {k: np.resize(v[i:i + batch], (batch, *v.shape[1:])) for k, v in inputs.items()}
        r.set_inputs(r.prepare(feed))
        r.invoke()
        chunks.append([o[:min(batch, n - i)] for o in r.outputs_float()])
    return [np.concatenate(c) for c in zip(*chunks)]


def _rows(arrays, start, count):
    return {k: v[start:start + count] for k, v in arrays.items()}


def _resizes(path, batch, sample, input_names):
    """Whether the batch-1 file, resized to `batch`, gives the batch-1 outputs for its first rows."""
    try:
        big = run_rows(path, _rows(sample, 0, batch), input_names, batch)
        small = run_rows(path, _rows(sample, 0, 4), input_names, 1)
    except Exception:
        return False
    return all(np.allclose(b[:4], s, rtol=1e-3, atol=1e-3 * max(1.0, float(np.max(np.abs(s))))) for b, s in zip(big, small))


def _convert(module, sample, input_names, batch, path):
    import torch
    import litert_torch
    example = tuple(torch.tensor(np.resize(sample[n], (batch, *sample[n].shape[1:]))) for n in input_names)
    litert_torch.convert(module, example).export(path)


def _quantize(fp32, out, recipe_name, calibration, input_names, batch):
    from ai_edge_quantizer import calibrator, quantizer, recipe
    from ai_edge_quantizer.utils import qsv_utils
    q = quantizer.Quantizer(fp32)
    q.load_quantization_recipe(getattr(recipe, recipe_name)())
    result = None
    if q.need_calibration:
        cal = calibrator.Calibrator(fp32, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=fp32)
        sig = it.get_signature_list()
        key = next(iter(sig))
        dtypes = {a: d["dtype"] for a, d in it.get_signature_runner(key).get_input_details().items()}
        del it
        n = len(next(iter(calibration.values())))
        steps = [{a: calibration[name][i:i + batch].astype(dtypes[a]) for name, a in zip(input_names, sig[key]["inputs"])}
                 for i in range(0, n - batch + 1, batch)]
        cal.calibrate({key: steps}, q._recipe_manager)
        result = cal.get_model_qsvs()
    q.quantize(result).export_model(out, overwrite=True)


def build(fixture, module, input_names, sample, calibration, tmp, batches=(1, 64), log=print):
    """{variant: Built} for the three LiteRT variants. `module` is the PyTorch module, `sample`
    rows to convert and check with, `calibration` the fixture's calibration inputs (int ids
    already in the dtype the model declares)."""
    out = {v: Built() for v in VARIANTS}
    recipes = {"litert-int8-static": "static_wi8_ai8", "litert-int8-dynamic": "dynamic_wi8_afp32"}
    float_files = {}
    for batch in sorted(batches):
        path = os.path.join(tmp, f"{fixture}.b{batch}.litert-fp32.tflite")
        if batch != 1 and 1 in float_files and _resizes(float_files[1], batch, sample, input_names):
            out["litert-fp32"].paths[batch], out["litert-fp32"].how[batch] = float_files[1], "resized from batch 1"
            float_files[batch] = None
            continue
        try:
            _convert(module, sample, input_names, batch, path)
        except Exception as e:
            err = first_line(e)
            log(f"{fixture}: litert-torch cannot convert it at batch {batch}: {err}")
            for v in VARIANTS:
                out[v].error = f"litert-torch: {err}"
            return out
        float_files[batch] = path
        out["litert-fp32"].paths[batch], out["litert-fp32"].how[batch] = path, "converted"
    for variant, recipe_name in recipes.items():
        for batch in sorted(batches):
            src = float_files[batch]
            if src is None:  # this batch runs the batch-1 file resized, if its quantized file resizes too
                small = out[variant].paths.get(1)
                if small and _resizes(small, batch, sample, input_names):
                    out[variant].paths[batch], out[variant].how[batch] = small, "resized from batch 1"
                    continue
                src = os.path.join(tmp, f"{fixture}.b{batch}.litert-fp32.tflite")
                try:
                    _convert(module, sample, input_names, batch, src)
                except Exception as e:
                    out[variant].error = f"litert-torch at batch {batch}: {first_line(e)}"
                    break
                float_files[batch] = src  # the next variant quantizes this one too
            path = os.path.join(tmp, f"{fixture}.b{batch}.{variant}.tflite")
            try:
                _quantize(src, path, recipe_name, calibration, input_names, batch)
                run_rows(path, _rows(sample, 0, batch), input_names, batch)  # it loads and runs
            except Exception as e:
                out[variant].error = f"ai-edge-quantizer {recipe_name}: {first_line(e)}"
                log(f"{fixture}: {variant}: {out[variant].error}")
                traceback.print_exc()
                break
            out[variant].paths[batch], out[variant].how[batch] = path, "converted"
    return out


def first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
