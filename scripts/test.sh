#!/usr/bin/env bash
# Installs what is needed, builds once (release: allocation counts are measured there), and runs
# every test: the Swift suites, the Python suite (Minnow against onnxruntime, the CLI, serving and
# its fault tests), a 30-second soak; then the suite again under AddressSanitizer with a short
# run of each fuzzer (one more build, about 8 minutes on 2 cores; MINNOW_SKIP_SANITIZERS=1 skips
# it for a quick local loop). The ThreadSanitizer run (scripts/tsan.sh, another 7 minutes) is
# opt-in with MINNOW_TSAN=1: CI's 20-minute budget no longer holds all three builds; run it when
# threads, the pool or serving change (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Only our products: `--build-tests` would also build every dependency's executables, among them
# swift-protobuf's bundled protoc (C++, twice: about 5 of CI's minutes on 2 cores).
swift build -c release --product minnow
swift build -c release --product MinnowC   # libMinnowC.so for the Python binding tests
swift build -c release --product MinnowPackageTests
swift test -c release --skip-build
MINNOW_BIN="$PWD/.build/release/minnow" MINNOW_LIB="$PWD/.build/release/libMinnowC.so" python3 -m pytest -q tools/tests
python3 tools/soak.py --seconds 30 --warmup 10 --sample 5 --swap 10
if [ "${MINNOW_SKIP_SANITIZERS:-0}" != 1 ]; then
    scripts/sanitizers.sh 10
fi
if [ "${MINNOW_TSAN:-0}" = 1 ]; then
    scripts/tsan.sh
fi
