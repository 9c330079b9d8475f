import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "fixtures")


@pytest.fixture(scope="session")
def minnow():
    """Runs the minnow CLI; returns (returncode, stdout, stderr)."""
    binary = os.environ.get("MINNOW_BIN", os.path.join(ROOT, ".build", "release", "minnow"))
    if not os.path.exists(binary):
        raise RuntimeError(f"minnow binary not found at {binary}: run `swift build -c release` or set MINNOW_BIN")

    def run(*args, check=True):
        p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"minnow {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    return run


@pytest.fixture(scope="session", autouse=True)
def forced_kernel_table(minnow):
    """With MINNOW_EXPECT_KERNELS (scripts/test.sh re-runs the oracle suites once per kernel table),
    prove that table is the one the CLI and the Python binding load on: a forced table this CPU
    lacks falls back to the default, which would make the re-run check nothing new."""
    want = os.environ.get("MINNOW_EXPECT_KERNELS")
    if not want:
        return
    import json
    got = json.loads(minnow("kernels", "--json").stdout)["default"]
    assert got == want, f"MINNOW_KERNELS={os.environ.get('MINNOW_KERNELS')} runs on '{got}', expected '{want}'"
