#!/usr/bin/env bash
# The test suite under ThreadSanitizer (.build/tsan): the thread pool, sessions shared across
# threads, the serving queue and the model manager's swaps are all exercised by it. Any report
# fails the run (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build  # a fresh clone has none yet (the build logs go there)
if ! { swift build --build-path .build/tsan --sanitize=thread --product MinnowPackageTests && swift build --build-path .build/tsan --sanitize=thread --product minnow; } >.build/tsan-build.log 2>&1; then
    grep -E "error" .build/tsan-build.log | head -20 >&2
    echo "tsan.sh: the TSan build failed (.build/tsan-build.log)" >&2
    exit 1
fi
echo "== the test suite under ThreadSanitizer"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" swift test --skip-build --build-path .build/tsan 2>&1 \
    | grep -E "error:|Executed [0-9]+ tests|ThreadSanitizer|Fatal" | tail -5
test "${PIPESTATUS[0]}" -eq 0
