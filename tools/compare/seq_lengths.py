#!/usr/bin/env python3
"""Latency by sequence length: a BERT export with dynamic batch and sequence axes (the user's
bert_user_seq128, or `--fixture minilm`: all-MiniLM-L6-v2 from tools/reference/make_minilm.py)
converted once with `--max-seq 128`, run at several lengths beside ONNX Runtime
on the same ONNX at the same lengths (fp32 and int8 dynamic, which take any length), beside
LiteRT (fp32, int8 static, int8 dynamic: its graphs are static-shape, so one file per length,
converted from the PyTorch module at that length) and beside Minnow run the fixed-length way
(every input padded to 128 with mask 0), and beside Minnow with the opt-in bf16 attention
products (MINNOW_ATTENTION=bf16; the f32 model again where the CPU lacks AVX512-BF16).
Interleaved rounds, medians, Python calls (as in compare.py), one thread.

    python3 tools/compare/seq_lengths.py [--fixture bert_user_seq128|minilm] [--lengths 8 16 32 64 128]
                                         [--batch 1] [--rounds 5] [--seconds 0.5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, os.path.dirname(__file__))
from compare import MINNOW, ROOT, Fixture, litert_variants, make_call, minnow, timed  # noqa: E402


def litert_files(f, length, tmp):
    """{variant: path} of the LiteRT files at `length` tokens, batch 1 ({} without LiteRT)."""
    import torch_from_fixture
    module, names = torch_from_fixture.torch_module(f.name, f.dir)
    cut = lambda a: {k: v[:, :length] for k, v in a.items()}
    built = litert_variants.build(f"{f.name}.L{length}", module, names, cut(f.arrays("reference.npz")),
                                  cut(f.arrays("calibration.npz")), tmp, batches=(1,), log=lambda m: print(m, file=sys.stderr))
    return {k: b.paths[1] for k, b in built.items() if not b.error}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixture", default="bert_user_seq128", choices=["bert_user_seq128", "minilm"])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    f = Fixture(args.fixture)
    src = os.path.join(f.dir, "model.onnx")
    ref = f.arrays("reference.npz")
    reason = litert_variants.available()
    if reason:
        print(f"LiteRT left out: {reason} (pip install -r tools/requirements-compare.txt)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        mn = os.path.join(tmp, "bert.minnow")
        subprocess.run([MINNOW, "convert", src, "-o", mn, "--max-seq", "128", "--calibration", os.path.join(f.dir, "calibration.npz")],
                       check=True, capture_output=True)
        dy = os.path.join(tmp, "bert.dynamic.onnx")
        quantize_dynamic(src, dy, per_channel=True, weight_type=QuantType.QInt8)
        loaded = {"minnow": minnow.Model(mn)}
        # The same file with the opt-in bf16 attention products (MINNOW_ATTENTION is read at load;
        # where the CPU lacks AVX512-BF16 this is the f32 model again).
        os.environ["MINNOW_ATTENTION"] = "bf16"
        loaded["minnow-bf16"] = minnow.Model(mn)
        del os.environ["MINNOW_ATTENTION"]
        peers = ["ort-fp32", "ort-int8-dynamic"] + ([] if reason else litert_variants.VARIANTS)
        print("| length | " + " | ".join(f"{p} p50 ms" for p in peers)
              + " | minnow at the length p50 ms | minnow padded to 128 p50 ms | minnow bf16 attention p50 ms"
              + " | minnow / fastest peer | minnow bf16 attention / fastest peer |")
        print("|---" * (len(peers) + 6) + "|")
        for length in args.lengths:
            ids = np.resize(ref["input_ids"][:, :length], (args.batch, length)).astype(np.int64)
            mask = np.ones_like(ids)
            feed = {"input_ids": ids, "attention_mask": mask}
            padded = {"input_ids": np.pad(ids, ((0, 0), (0, 128 - length))), "attention_mask": np.pad(mask, ((0, 0), (0, 128 - length)))}
            files = {"ort-fp32": src, "ort-int8-dynamic": dy}
            if not reason:
                files.update(litert_files(f, length, tmp))
            at = SimpleNamespace(peers={k: {args.batch: p} for k, p in files.items()}, input_names=f.input_names)
            runs = {k: (k, feed) for k in files}
            runs.update({"minnow": ("minnow", feed), "padded": ("minnow", padded), "bf16": ("minnow-bf16", feed)})
            samples = {k: [] for k in runs}
            for _ in range(args.rounds):  # interleaved rounds
                for k, (engine, x) in runs.items():
                    samples[k].append(timed(make_call(at, engine, x, 1, False, loaded), args.seconds, args.batch)[0])
            med = {k: statistics.median(v) for k, v in samples.items()}
            print(f"| {length} | " + " | ".join(f"{med[p]:.3f}" if p in med else "not converted" for p in peers)
                  + f" | {med['minnow']:.3f} | {med['padded']:.3f} | {med['bf16']:.3f} | "
                  f"{med['minnow'] / min(med[p] for p in files):.2f}x | {med['bf16'] / min(med[p] for p in files):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
