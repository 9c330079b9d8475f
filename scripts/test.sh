#!/usr/bin/env bash
# Installs what is needed, builds once (release: allocation counts are measured there), and runs
# every test: the Swift suites, the Python suite (Minnow against onnxruntime, the CLI, serving and
# its fault tests) and a 30-second soak. About 15 minutes on 2 cores.
# The sanitizer runs need builds of their own and no longer fit CI's 20 minutes beside the
# release build: MINNOW_SANITIZERS=1 adds the suite under AddressSanitizer with 10 s of each
# fuzzer (scripts/sanitizers.sh, about 12 minutes), MINNOW_TSAN=1 the ThreadSanitizer run
# (scripts/tsan.sh, about 8 minutes). Run them when unsafe code, threads or serving change
# (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Only our products: `--build-tests` would also build every dependency's executables, among them
# swift-protobuf's bundled protoc (C++, built twice: host tool and target).
swift build -c release --product minnow
swift build -c release --product MinnowC   # libMinnowC.so for the Python binding tests
swift build -c release --product MinnowPackageTests
swift test -c release --skip-build
MINNOW_BIN="$PWD/.build/release/minnow" MINNOW_LIB="$PWD/.build/release/libMinnowC.so" python3 -m pytest -q tools/tests
# The default table ran everything above; the oracle suites (Minnow against onnxruntime, every op
# and fixture) run again on each other table this CPU supports, forced through MINNOW_KERNELS.
default_table=$(.build/release/minnow kernels --json | python3 -c "import json, sys; print(json.load(sys.stdin)['default'])")
lacking=$(.build/release/minnow kernels | { grep "not available" || true; } | cut -d' ' -f1 | tr '\n' ' ')
others=$(.build/release/minnow kernels --supported | { grep -vx "$default_table" || true; } | tr '\n' ' ')
echo "kernel tables: default $default_table; oracle suites also on: ${others:-none}; not on this CPU: ${lacking:-none}"
for table in $(.build/release/minnow kernels --supported); do
    [ "$table" = "$default_table" ] && continue
    echo "oracle suites on kernel table $table"
    MINNOW_KERNELS=$table MINNOW_EXPECT_KERNELS=$table MINNOW_BIN="$PWD/.build/release/minnow" MINNOW_LIB="$PWD/.build/release/libMinnowC.so" \
        python3 -m pytest -q tools/tests/test_onnxruntime_oracle.py tools/tests/test_tensor_ops_oracle.py
done
python3 tools/soak.py --seconds 30 --warmup 10 --sample 5 --swap 10
if [ "${MINNOW_SANITIZERS:-0}" = 1 ]; then
    scripts/sanitizers.sh 10
fi
if [ "${MINNOW_TSAN:-0}" = 1 ]; then
    scripts/tsan.sh
fi
