"""Starts and stops `minnow serve` for tests and the serving comparison."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def minnow_binary():
    return os.environ.get("MINNOW_BIN", os.path.join(ROOT, ".build", "release", "minnow"))


class Server:
    """`minnow serve` on a free loopback port (--port 0; the bound port is read from stdout)."""

    def __init__(self, model_root, *args):
        self.proc = subprocess.Popen([minnow_binary(), "serve", "--model-root", model_root, "--port", "0", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"minnow serve did not start: {line}{self.proc.stderr.read()}")
        self.url = m.group(1)

    def request(self, method, path, body=None, timeout=30):
        """Returns (status, parsed JSON or text)."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def stop(self, timeout=30):
        """SIGTERM; returns (exit code, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            return None, err
        return self.proc.returncode, err


def wrk(url, body, seconds, connections=16, threads=2):
    """Loads `url` with POSTs of `body` using wrk; returns (requests, non-2xx, socket errors, summary)."""
    script = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"minnow-wrk-{os.getpid()}-{time.monotonic_ns()}.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = " + json.dumps(body if isinstance(body, str) else json.dumps(body)) + "\n")
    try:
        p = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script, url],
                           capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.remove(script)
    out = p.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(map(int, m.groups())) if (m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0
    return requests, non2xx, sock, out


def parse_latency_ms(summary, percentile):
    """The `--latency` distribution line for a percentile ('50%' or '99%'), in ms."""
    m = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", summary, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
