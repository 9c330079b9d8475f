#!/usr/bin/env python3
"""What the default conversion (`--mode auto`) gives next to the uniform modes, on held-out rows:
per fixture, the SNR of Minnow's outputs against the trainer's (PyTorch's) recorded outputs, the
parity spec's verdict and the file size, for static, dynamic and auto; the DLRM-style file against
ONNX Runtime's int8 files with ROC AUC; all-MiniLM-L6-v2's embedding cosine when out/minilm exists
(tools/reference/make_minilm.py).

    python3 tools/compare/default_conversion.py [--minnow .build/release/minnow] [--out table.md] [--speed]

Accuracy and size are the same on every machine with the same kernels, up to float summation
order. --speed adds what the precision choice costs or saves in time: `minnow bench` p50 of auto
over static and over dynamic at batch 1 and 64, one thread, medians of 3 interleaved rounds (a
ratio from one run on one machine; the CPU is printed).
"""
import json
import platform
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics import auc, snr_db  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "fixtures")


def run(minnow, *args):
    p = subprocess.run([minnow, *map(str, args)], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"minnow {' '.join(map(str, args))} failed:\n{p.stderr}")
    return p


def outputs(minnow, model, reference, tmp):
    ref = np.load(reference)
    np.savez(os.path.join(tmp, "in.npz"), **{k: ref[k] for k in ref.files if k.startswith("inputs/")})
    run(minnow, "run", model, "--input", os.path.join(tmp, "in.npz"), "-o", os.path.join(tmp, "out.npz"))
    got = np.load(os.path.join(tmp, "out.npz"))
    return {k: (ref[k].astype(np.float64), got[k].astype(np.float64)) for k in ref.files if k.startswith("outputs/")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minnow", default=os.path.join(ROOT, ".build", "release", "minnow"))
    ap.add_argument("--out")
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    head = "| fixture | static | dynamic | auto (default) | auto's choice |" + (" auto / static p50, b1, b64 | auto / dynamic p50, b1, b64 |" if args.speed else "")
    lines = [f"CPU: {cpu}; SNR of Minnow's outputs against PyTorch's on the held-out reference rows, file size, parity spec.", "",
             head, "|---|---|---|---|---|" + ("---|---|" if args.speed else "")]
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(FIXTURES)):
            d = os.path.join(FIXTURES, name)
            if not os.path.exists(os.path.join(d, "calibration.npz")):
                continue
            m = re.search(r"--max-seq \d+", open(os.path.join(d, "README.md")).read())
            extra = m.group(0).split() + ["--seq-lengths", "max"] if m else []
            cells, choice = [], ""
            for mode in ("static", "dynamic", "auto"):
                path = os.path.join(tmp, f"{name}.{mode}.minnow")
                p = run(args.minnow, "convert", os.path.join(d, "model.onnx"), "-o", path, "--calibration",
                        os.path.join(d, "calibration.npz"), "--mode", mode, *extra)
                if mode == "auto":
                    counts = re.search(r"precision per Dense \(auto[^:]*: (.*)", p.stdout)
                    choice = counts.group(1) if counts else ""
                ok = run(args.minnow, "parity", path, "--reference", os.path.join(d, "reference.npz"), "--spec",
                         os.path.join(d, "parity.json")).returncode == 0
                db = snr_db(outputs(args.minnow, path, os.path.join(d, "reference.npz"), tmp).values())
                cells.append(f"{db:.1f} dB, {os.path.getsize(path) / 1000:.1f} KB, {'pass' if ok else '**fail**'}")
            row = f"| {name} | " + " | ".join(cells) + f" | {choice} |"
            if args.speed:
                p50 = {}
                for batch in (1, 64):
                    rounds = {m: [] for m in ("static", "dynamic", "auto")}
                    for _ in range(3):
                        for mode in rounds:
                            b = json.loads(run(args.minnow, "bench", os.path.join(tmp, f"{name}.{mode}.minnow"), "--batch", batch,
                                               "--threads", 1, "--seconds", 0.5, "--input", os.path.join(d, "reference.npz"),
                                               "--json").stdout)
                            rounds[mode].append(b["latency_ms"]["p50"])
                    p50[batch] = {m: float(np.median(v)) for m, v in rounds.items()}
                row += " " + " | ".join(", ".join(f"{p50[b]['auto'] / p50[b][other]:.2f}x" for b in (1, 64))
                                        for other in ("static", "dynamic")) + " |"
            lines.append(row)
            print(lines[-1], flush=True)

        from onnxruntime.quantization import QuantType, quantize_dynamic
        d = os.path.join(FIXTURES, "dlrm_ctr")
        path = os.path.join(tmp, "dlrm.minnow")
        run(args.minnow, "convert", os.path.join(d, "model.onnx"), "-o", path, "--calibration", os.path.join(d, "calibration.npz"))
        quantize_dynamic(os.path.join(d, "model.onnx"), os.path.join(tmp, "dlrm_ort.onnx"), per_channel=True, weight_type=QuantType.QInt8)
        (w, g), = outputs(args.minnow, path, os.path.join(d, "reference.npz"), tmp).values()
        y = np.load(os.path.join(d, "reference.npz"))["labels/ctr"].ravel()
        lines += ["", "| dlrm_ctr (26 tables, 197,702 rows) | file | ROC AUC (held-out) |", "|---|---|---|",
                  f"| PyTorch fp32 | {os.path.getsize(os.path.join(d, 'model.onnx')) / 1e6:.2f} MB (ONNX) | {auc(y, w.ravel()):.5f} |",
                  f"| ONNX Runtime int8 (quantize_dynamic, per channel) | {os.path.getsize(os.path.join(tmp, 'dlrm_ort.onnx')) / 1e6:.2f} MB | - |",
                  f"| Minnow default (auto) | {os.path.getsize(path) / 1e6:.2f} MB | {auc(y, g.ravel()):.5f} |"]
        print("\n".join(lines[-5:]), flush=True)

        minilm = os.path.join(ROOT, "out", "minilm")
        if os.path.exists(os.path.join(minilm, "model.onnx")):
            rows = ["", "| all-MiniLM-L6-v2, 128 tokens | cosine to PyTorch, mean / min | file |", "|---|---|---|"]
            for mode in ("static", "dynamic", "auto"):
                path = os.path.join(tmp, f"minilm.{mode}.minnow")
                run(args.minnow, "convert", os.path.join(minilm, "model.onnx"), "-o", path, "--calibration",
                    os.path.join(minilm, "calibration.npz"), "--max-seq", 128, "--seq-lengths", "max", "--mode", mode)
                (w, g), = outputs(args.minnow, path, os.path.join(minilm, "reference.npz"), tmp).values()
                cos = (w * g).sum(1) / (np.linalg.norm(w, axis=1) * np.linalg.norm(g, axis=1))
                rows.append(f"| Minnow {mode}{' (default)' if mode == 'auto' else ''} | {cos.mean():.4f} / {cos.min():.4f} | "
                            f"{os.path.getsize(path) / 1e6:.1f} MB |")
                print(rows[-1], flush=True)
            lines += rows
    text = "\n".join(lines) + "\n"
    if args.out:
        open(args.out, "w").write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
