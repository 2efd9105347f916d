#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of tests/fuzz with clang, ASan and UBSan in build-fuzz/, and runs each
# for a bounded time on a scratch copy of its seed corpus (tests/fuzz/corpus/<target>/ stays as it is).
# Fails on any crash, leak, UBSan report, timeout or excess memory; a failing input is kept in
# build-fuzz/artifacts/<target>/ and reproduces with `build-fuzz/tests/fuzz/<target>_fuzz <file>`.
#
#   scripts/fuzz.sh [target…]   targets: reference image challenge registry_error registry_config run_args
#                                size unpack containerfile
#   FUZZ_SECONDS=60 scripts/fuzz.sh unpack      longer runs (default 12 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
all=(reference image challenge registry_error registry_config run_args size unpack containerfile)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
seconds=${FUZZ_SECONDS:-12}
cxx=${FUZZ_CXX:-clang++-14}
build=build-fuzz
if ! command -v "$cxx" >/dev/null; then
    echo "scripts/fuzz.sh: $cxx not found (scripts/deps.sh installs clang-14)" >&2
    exit 1
fi

cmake -S . -B "$build" -DCONTAINER_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null
nice -n 19 cmake --build "$build" -j2 --target "${targets[@]/%/_fuzz}" >/dev/null

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
[[ -n $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The unpack and registry-file targets write files for every input: on tmpfs they run 10 to 40 times
# faster than on a disk-backed /tmp (4000 against 110 layers a second here).
[[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]] && export TMPDIR=/dev/shm
scratch=$(mktemp -d "${TMPDIR:-/tmp}/container-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch # the targets' work directories go too, even after a crash

passed=0 failed=0
for t in "${targets[@]}"; do
    [[ -d tests/fuzz/corpus/$t ]] || { echo "scripts/fuzz.sh: no target \"$t\"" >&2; exit 2; }
    cp -r "tests/fuzz/corpus/$t" "$scratch/$t"
    artifacts=$build/artifacts/$t
    mkdir -p "$artifacts"
    log=$build/fuzz-$t.log
    # `timeout` only guards against a hang of libFuzzer itself; -max_total_time ends a normal run.
    if timeout $((seconds + 120)) nice -n 19 "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch/$t" \
        >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        printf '%-16s passed  %8s runs  %6s exec/s\n' "$t" "$runs" "$rate"
        passed=$((passed + 1))
    else
        printf '%-16s FAILED  (log: %s, input in %s/)\n' "$t" "$log" "$artifacts"
        # From just before the first report (the targets print their own finding right before aborting).
        first=$(grep -n -m1 -E 'ERROR: |runtime error:|deadly signal' "$log" | cut -d: -f1 || true)
        sed -n "$((${first:-6} > 5 ? ${first:-6} - 5 : 1)),+45p" "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
