#!/usr/bin/env bash
# Installs what is needed, builds once (release: allocation counts are measured there), and runs
# every test: the Swift suites, then the Python suite that checks Minnow against onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --build-tests
swift build -c release --product MinnowC   # libMinnowC.so for the Python binding tests
swift test -c release --skip-build
MINNOW_BIN="$PWD/.build/release/minnow" MINNOW_LIB="$PWD/.build/release/libMinnowC.so" python3 -m pytest -q tools/tests
