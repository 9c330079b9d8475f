#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/<target>, harnesses in Sources/MinnowFuzzing) with
# AddressSanitizer and runs each for SECONDS (default 30) from the committed seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: model npz onnx http (default: all)
# New inputs go to .build/fuzz-corpus/<target>; a crash leaves its input in
# .build/fuzz-artifacts/ and makes this script fail. Add such inputs to fuzz/corpus/<target>/
# as crash-<what> once fixed: the corpus replay test keeps them fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
shift || true
TARGETS=${*:-model npz onnx http}
export MINNOW_FUZZ=1
for t in $TARGETS; do
    # lld: gold drops the coverage counters of Swift objects (COMDAT sections), and the
    # fuzzer would see only C code.
    swift build --build-path .build/fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -use-ld=lld \
        --product "fuzz-$t" 2>&1 \
        | grep -E "error|warning: .*unsafe|Compiling|Build complete" | grep -vE "^\[[0-9]+/" || true
    test -x ".build/fuzz/debug/fuzz-$t" || { echo "fuzz.sh: building fuzz-$t failed" >&2; exit 1; }
done
mkdir -p .build/fuzz-artifacts
status=0
for t in $TARGETS; do
    mkdir -p ".build/fuzz-corpus/$t"
    log=".build/fuzz-artifacts/$t.log"
    # New inputs go to the first directory; the committed corpus is only read. Leak detection
    # is off: LeakSanitizer cannot follow Swift references stored with enum tags in their spare
    # bits (false reports) and flags Foundation's own leaks; memory growth is checked by the
    # soak (tools/soak.py) instead. Every other ASan check is on.
    if ASAN_OPTIONS=detect_leaks=0 ".build/fuzz/debug/fuzz-$t" ".build/fuzz-corpus/$t" "fuzz/corpus/$t" -max_total_time="$SECS" \
        -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=".build/fuzz-artifacts/$t-" >"$log" 2>&1; then
        runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
        cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1 || echo "cov: ?")
        echo "fuzz-$t: ${SECS}s, $runs executions, $cov, no crash"
    else
        echo "fuzz-$t: FAILED (log: $log)" >&2
        grep -E "ERROR|SUMMARY|artifact|Test unit written" "$log" | head -20 >&2
        status=1
    fi
done
exit $status
