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
