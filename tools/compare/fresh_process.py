#!/usr/bin/env python3
"""One engine in a fresh process, as a service would start it: import the engine, load the model
to a ready session, run `--runs` inferences on the same inputs, and print one JSON line:

    load_ms          model file to a session that can run (ORT: InferenceSession; LiteRT: Interpreter +
                     allocate_tensors; Minnow: Model + Session)
    first_run_ms     the first inference after that
    base_rss_bytes   peak RSS after the imports, before the model (the interpreter, numpy, the engine library)
    peak_rss_bytes   peak RSS at the end (VmHWM)
    allocs_per_run   heap allocations per inference, when started under tools/compare/malloc_count.c
                     (LD_PRELOAD): ORT through run_with_iobinding with inputs and outputs bound once,
                     LiteRT through invoke() on inputs set once, Minnow through run_batch on the
                     session's own input buffers, so none counts Python's copies of the data

    python3 tools/compare/fresh_process.py --engine ort|litert|minnow --model FILE --feed feed.npz
                                           [--inputs a,b] [--threads 1] [--runs 100]

Used by compare.py; one process per measurement, so nothing loaded before skews the numbers.
"""
import argparse
import ctypes
import json
import os
import sys
import time

import numpy as np


def vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def alloc_counter():
    try:
        f = ctypes.CDLL(None).mc_count
    except AttributeError:
        return None
    f.restype = ctypes.c_longlong
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["ort", "litert", "minnow"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--feed", required=True)
    ap.add_argument("--inputs", default=None, help="input names in the model's order (LiteRT's inputs are positional)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    with np.load(args.feed) as z:
        feed = {k: z[k] for k in z.files}
    batch = len(next(iter(feed.values())))
    if args.engine == "ort":
        import onnxruntime as ort
        base = vm("VmHWM")
        t0 = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        s = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        outs = s.run(None, feed)
        first = time.perf_counter() - t0
        # The least-allocating way ORT's Python API offers: everything bound once.
        binding = s.io_binding()
        for name, a in feed.items():
            binding.bind_cpu_input(name, a)
        for o, v in zip(s.get_outputs(), outs):
            binding.bind_ortvalue_output(o.name, ort.OrtValue.ortvalue_from_numpy(np.empty_like(v)))

        def run():
            s.run_with_iobinding(binding)
    elif args.engine == "litert":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (the runtime, before the baseline)
        import litert_variants
        base = vm("VmHWM")
        t0 = time.perf_counter()
        r = litert_variants.Runner(args.model, batch, args.threads, args.inputs.split(",") if args.inputs else list(feed))
        load = time.perf_counter() - t0
        prepared = r.prepare(feed)  # ids to int32, int8 inputs quantized: not part of a run
        t0 = time.perf_counter()
        r.call(prepared)
        first = time.perf_counter() - t0

        def run():
            r.invoke()
    else:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
        import minnow
        minnow._library()  # load libMinnowC before the baseline, as importing onnxruntime loads its library
        base = vm("VmHWM")
        t0 = time.perf_counter()
        m = minnow.Model(args.model)
        s = minnow.Session(m, max_batch=batch, threads=args.threads)
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.run(feed)
        first = time.perf_counter() - t0

        def run():
            s.run_batch(batch)
    for _ in range(10):
        run()
    counter = alloc_counter()
    before = counter() if counter else 0
    for _ in range(args.runs):
        run()
    after = counter() if counter else 0
    print(json.dumps({
        "load_ms": load * 1e3, "first_run_ms": first * 1e3,
        "base_rss_bytes": base, "peak_rss_bytes": vm("VmHWM"),
        "allocs_per_run": (after - before) / args.runs if counter else None,
    }))


if __name__ == "__main__":
    main()
