#!/usr/bin/env python3
"""Latency by sequence length: the user's BERT export (bert_user_seq128, dynamic batch and
sequence axes) converted once with `--max-seq 128`, run at several lengths beside ONNX Runtime
on the same ONNX at the same lengths (fp32 and int8 dynamic, which take any length), and beside
Minnow run the fixed-length way (every input padded to 128 with mask 0). Interleaved rounds,
medians, one thread.

    python3 tools/compare/seq_lengths.py [--lengths 8 32 128] [--batch 1] [--rounds 5] [--seconds 0.5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, os.path.dirname(__file__))
from compare import MINNOW, ROOT, load_arrays, minnow, time_minnow, time_ort  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    d = os.path.join(ROOT, "fixtures", "bert_user_seq128")
    src = os.path.join(d, "model.onnx")
    ref = load_arrays(os.path.join(d, "reference.npz"))
    with tempfile.TemporaryDirectory() as tmp:
        mn = os.path.join(tmp, "bert.minnow")
        subprocess.run([MINNOW, "convert", src, "-o", mn, "--max-seq", "128", "--calibration", os.path.join(d, "calibration.npz")],
                       check=True, capture_output=True)
        dy = os.path.join(tmp, "bert.dynamic.onnx")
        quantize_dynamic(src, dy, per_channel=True, weight_type=QuantType.QInt8)
        model = minnow.Model(mn)
        print("| length | ort-fp32 p50 ms | ort-int8-dynamic p50 ms | minnow at the length p50 ms | minnow padded to 128 p50 ms | minnow / fastest ORT |")
        print("|---|---|---|---|---|---|")
        for length in args.lengths:
            ids = np.resize(ref["input_ids"][:, :length], (args.batch, length)).astype(np.int64)
            mask = np.ones_like(ids)
            feed = {"input_ids": ids, "attention_mask": mask}
            padded = {"input_ids": np.pad(ids, ((0, 0), (0, 128 - length))), "attention_mask": np.pad(mask, ((0, 0), (0, 128 - length)))}
            runs = {"fp32": lambda: time_ort(src, feed, args.seconds, 1), "dyn": lambda: time_ort(dy, feed, args.seconds, 1),
                    "minnow": lambda: time_minnow(model, feed, args.seconds, 1),
                    "padded": lambda: time_minnow(model, padded, args.seconds, 1)}
            samples = {k: [] for k in runs}
            for _ in range(args.rounds):
                for k, f in runs.items():
                    samples[k].append(f()[0])
            med = {k: statistics.median(v) for k, v in samples.items()}
            print(f"| {length} | {med['fp32']:.3f} | {med['dyn']:.3f} | {med['minnow']:.3f} | {med['padded']:.3f} | "
                  f"{med['minnow'] / min(med['fp32'], med['dyn']):.2f}x |")


if __name__ == "__main__":
    main()
