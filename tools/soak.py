#!/usr/bin/env python3
"""Soak test for `minnow serve` (issue 7): loopback load from wrk for a long stretch while new
model versions are dropped into the repository and old ones removed; the server's RSS is sampled
at a fixed interval and must stay flat after warm-up.

    python3 tools/soak.py                        # 10 minutes, RSS every 10 s, a swap every 30 s
    python3 tools/soak.py --seconds 30 --warmup 10 --sample 5 --swap 10    # the CI version

Exits 1 when RSS drifts by `--max-drift` (2%) or more between the first sample after warm-up and
the end (the mean of the last three samples), or when any request fails."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))
from serving import ROOT, Server, minnow_binary, wrk  # noqa: E402

ROW = {"instances": [[0.05 * i for i in range(30)]]}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) * 1024


def convert(out_dir):
    files = []
    for mode in ("static", "dynamic"):
        out = os.path.join(out_dir, f"{mode}.minnow")
        subprocess.run([minnow_binary(), "convert", f"{ROOT}/fixtures/ctr_mlp/model.onnx", "-o", out, "--mode", mode,
                        "--calibration", f"{ROOT}/fixtures/ctr_mlp/calibration.npz"], check=True, capture_output=True)
        files.append(out)
    return files


def put(root, version, src):
    d = os.path.join(root, "ctr", str(version))
    os.makedirs(d, exist_ok=True)
    shutil.copy(src, os.path.join(d, "model.tmp"))
    os.replace(os.path.join(d, "model.tmp"), os.path.join(d, "model.minnow"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--sample", type=float, default=10, help="RSS sampling interval (s)")
    ap.add_argument("--swap", type=float, default=30, help="a new version every SWAP seconds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--max-drift", type=float, default=2.0, help="percent")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="minnow-soak-")
    try:
        files = convert(work)
        root = os.path.join(work, "repo")
        put(root, 1, files[0])
        server = Server(root, "--poll-seconds", "0.5", "--settle-seconds", "0.5", "--version-policy", "latest:1")
        load = {}
        t = threading.Thread(target=lambda: load.update(zip(("requests", "non2xx", "socket", "out"),
                                                            wrk(server.url + "/v1/models/ctr:predict", ROW, args.seconds,
                                                                connections=args.connections))))
        start = time.monotonic()
        t.start()
        samples, version, next_swap = [], 1, args.swap
        while (elapsed := time.monotonic() - start) < args.seconds:
            if elapsed >= next_swap:
                version += 1
                put(root, version, files[version % 2])
                if version > 3:
                    shutil.rmtree(os.path.join(root, "ctr", str(version - 3)))
                next_swap += args.swap
            if not samples or elapsed - samples[-1][0] >= args.sample:
                samples.append((elapsed, rss_bytes(server.proc.pid)))
            time.sleep(0.2)
        t.join()
        code, err = server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'t (s)':>8} {'RSS (MiB)':>10}")
    for s, r in samples:
        print(f"{s:8.0f} {r / 2**20:10.1f}{'   (warm-up)' if s < args.warmup else ''}")
    steady = [r for s, r in samples if s >= args.warmup]
    base, end = steady[0], sum(steady[-3:]) / len(steady[-3:])
    drift = (end - base) / base * 100
    spread = (max(steady) - min(steady)) / base * 100
    print(f"\n{args.seconds:.0f} s of load: {load['requests']} requests ({load['requests'] / args.seconds:.0f}/s), "
          f"{load['non2xx']} non-2xx, {load['socket']} socket errors; {version - 1} version swaps; exit code {code}")
    print(f"RSS after warm-up: {base / 2**20:.1f} MiB -> {end / 2**20:.1f} MiB: drift {drift:+.2f}% "
          f"(spread {spread:.2f}%, limit {args.max_drift}%)")
    ok = abs(drift) < args.max_drift and load["non2xx"] == 0 and load["socket"] == 0 and code == 0
    if not ok:
        print("soak FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
