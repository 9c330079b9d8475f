#!/usr/bin/env bash
# The test suite under AddressSanitizer, then each libFuzzer target, from one instrumented build
# (.build/asan: ASan + SanitizerCoverage for libFuzzer, linked with lld).
#   scripts/sanitizers.sh [FUZZ_SECONDS] [TARGET...]   default 30 s each; model npz onnx http
# Fuzzer inputs that reach new code go to .build/fuzz-corpus/<target>; a crash leaves its input in
# .build/fuzz-artifacts/ and fails the script. Once fixed, add that input to
# fuzz/corpus/<target>/ as crash-<what>: CorpusReplayTests keeps it fixed in every test run.
# ThreadSanitizer needs its own build: scripts/tsan.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build  # a fresh clone has none yet (the build logs go there)
SECS=${1:-30}
shift || true
TARGETS=${*:-model npz onnx http}

swiftc_dir=$(dirname "$(readlink -f "$(command -v swiftc)")")
MINNOW_FUZZ=$(ls "$swiftc_dir"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
export MINNOW_FUZZ
# lld: gold drops the coverage counters of Swift objects (COMDAT sections).
rm -f .build/asan/debug/fuzz-model .build/asan/debug/fuzz-npz .build/asan/debug/fuzz-onnx .build/asan/debug/fuzz-http
asan_build() {
    swift build --build-path .build/asan --sanitize=address -Xswiftc -use-ld=lld \
        -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
        -Xcc -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp "$@" >>.build/asan-build.log 2>&1
}
: >.build/asan-build.log
# The test bundle, the CLI the end-to-end tests call, and each fuzzer: our products only (not
# every dependency's executables, which `--build-tests` would add).
for product in MinnowPackageTests minnow $(for t in $TARGETS; do echo "fuzz-$t"; done); do
    if ! asan_build --product "$product"; then
        grep -E "error" .build/asan-build.log | head -20 >&2
        echo "sanitizers.sh: the ASan build of $product failed (.build/asan-build.log)" >&2
        exit 1
    fi
done

# Leak detection is off: LeakSanitizer cannot follow Swift references whose spare bits hold enum
# tags (false reports), and it flags Foundation's own leaks. Memory growth is the soak's to find
# (tools/soak.py). Every other ASan check is on.
export ASAN_OPTIONS=detect_leaks=0
# The release run attacks each fixture with 10,000 corruptions; under ASan (about 15x slower) a
# third of that keeps CI in its budget while every corruption kind still runs hundreds of times.
export MINNOW_CORRUPTIONS=${MINNOW_CORRUPTIONS:-3000}
# Three parity sweeps (thousands of reference samples through DLRM, the transformers and a BERT at
# 128 tokens, every mode) take 4 of ASan's minutes and cover no code the rest of the suite leaves
# out (conversion in every mode and runs at every batch stay in); the release run keeps them.
SKIP='RecommendationFixtureTests.testEveryModePassesItsParitySpec|BertFixtureTests.testAUsersBertExportConvertsWithMaxSeq|BertFixtureTests.testTinyBertKeepsEmbeddingCosineInEveryMode'
echo "== the test suite under AddressSanitizer (${MINNOW_CORRUPTIONS} corruptions per fixture; parity sweeps in the release run only)"
swift test --skip-build --build-path .build/asan --skip "$SKIP" 2>&1 | grep -E "error:|Executed [0-9]+ tests|AddressSanitizer|Fatal" | tail -5
test "${PIPESTATUS[0]}" -eq 0

echo "== fuzzing, ${SECS} s per target"
mkdir -p .build/fuzz-artifacts
status=0
for t in $TARGETS; do
    mkdir -p ".build/fuzz-corpus/$t"
    log=".build/fuzz-artifacts/$t.log"
    # New inputs go to the first directory; the committed corpus is only read.
    if ".build/asan/debug/fuzz-$t" ".build/fuzz-corpus/$t" "fuzz/corpus/$t" -max_total_time="$SECS" \
        -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=".build/fuzz-artifacts/$t-" >"$log" 2>&1; then
        runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
        cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1 || echo "cov: ?")
        echo "fuzz-$t: ${SECS} s, $runs executions, $cov, no crash"
    else
        echo "fuzz-$t: FAILED (log: $log)" >&2
        grep -E "ERROR|SUMMARY|Fatal error|Test unit written" "$log" | head -20 >&2
        status=1
    fi
done
exit $status
