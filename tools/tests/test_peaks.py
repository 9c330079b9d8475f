"""tools/compare/peaks.c, built and run as docs/benchmarks.md says: the measured peaks that the
GEMM efficiency figures divide by. Each instruction the CPU has (per /proc/cpuinfo) gets a positive
rate; each it lacks is reported as missing instead of faulting."""
import os
import platform
import re
import shutil
import subprocess

import pytest

from conftest import FIXTURES

PEAKS = os.path.join(os.path.dirname(FIXTURES), "tools", "compare", "peaks.c")


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def test_peaks_reports_what_this_cpu_has(tmp_path):
    if platform.machine() not in ("x86_64", "AMD64") or not os.path.exists("/proc/cpuinfo"):
        pytest.skip(f"peaks.c measures x86 instructions; this machine is {platform.machine()}")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "no C compiler on PATH"
    exe = str(tmp_path / "peaks")
    subprocess.run([cc, "-O2", "-Wall", "-Werror", "-o", exe, PEAKS], check=True)
    out = subprocess.run([exe], check=True, capture_output=True, text=True, timeout=120).stdout
    rows = {}
    for line in out.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 5, line
        rows[cells[0]] = cells
    flags = cpu_flags()
    expected = {
        "`vpmaddwd ymm` (AVX2 int8, exact)": "avx2" in flags and "fma" in flags,
        "`vpdpbusd zmm` (AVX-512 VNNI int8)": "avx512f" in flags and "avx512_vnni" in flags,
        "`vdpbf16ps zmm` (bf16)": "avx512_bf16" in flags,
    }
    for name, present in expected.items():
        if present:
            per_ns, macs, rate = float(rows[name][1]), int(rows[name][2]), float(rows[name][3])
            assert per_ns > 0 and rate == pytest.approx(per_ns * macs, rel=0.01), rows[name]
        else:
            assert name not in rows, f"{name} measured on a CPU without it"
    missing = [r for r in rows.values() if r[4] == "not on this CPU"]
    assert len(missing) == sum(not p for p in expected.values()), out
    assert all(re.fullmatch(r"[-0-9.]+", r[1]) for r in rows.values()), out
