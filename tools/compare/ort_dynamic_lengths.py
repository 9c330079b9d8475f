#!/usr/bin/env python3
"""ONNX Runtime fp32 and int8 dynamic (quantize_dynamic, per channel, QInt8) on a sentence encoder
at several sequence lengths, batch 1, one thread: the ORT side of the MiniLM length table in
docs/benchmarks.md. Run `minnow bench FILE --seq-len L --threads 1` right after, on the same host.

    python3 tools/compare/ort_dynamic_lengths.py [--model out/minilm/model.onnx] [--lengths 8 32 128]
"""
import argparse
import os
import sys

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, os.path.dirname(__file__))
from compare import timed  # noqa: E402  the same warm-up and median as compare.py


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="out/minilm/model.onnx")
    ap.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()
    quantized = os.path.splitext(args.model)[0] + ".ort_int8_dynamic.onnx"
    if not os.path.exists(quantized):
        quantize_dynamic(args.model, quantized, weight_type=QuantType.QInt8, per_channel=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    print("| engine | " + " | ".join(f"{n} tokens" for n in args.lengths) + " |")
    print("|---|" + "---|" * len(args.lengths))
    for name, path in (("ort-fp32", args.model), ("ort-int8-dynamic", quantized)):
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        cells = []
        for n in args.lengths:
            feed = {i.name: np.ones((1, n), np.int64) for i in sess.get_inputs()}
            cells.append(f"{timed(lambda: sess.run(None, feed), args.seconds, 1)[0]:.3f} ms")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
