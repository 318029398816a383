#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each for
# SECONDS (default 10). A crash leaves its input in build-fuzz/crashes/ and fails the script;
# every crash found becomes a regression test (tests/fuzz/regressions/ is run through each target).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache: paths relative to the checkout, so that another clone (CI) reuses the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
seconds="${1:-10}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DPTBUILD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"${JOBS:-2}" >/dev/null
mkdir -p build-fuzz/crashes
status=0
for target in protocol hash_mismatch targets config diagnosis web_request; do
  corpus="build-fuzz/corpus/$target"
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  # Known crashes first: they must stay fixed.
  if [ -d "tests/fuzz/regressions/$target" ]; then
    "build-fuzz/fuzz_$target" tests/fuzz/regressions/"$target"/* >/dev/null 2>&1 || { echo "fuzz_$target: a regression input crashes again"; status=1; }
  fi
  if "build-fuzz/fuzz_$target" -max_total_time="$seconds" -artifact_prefix=build-fuzz/crashes/"$target"- \
       -print_final_stats=1 "$corpus" > "build-fuzz/$target.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$target.log" | grep -o '[0-9]*$')
    echo "fuzz_$target: ok, $runs inputs in ${seconds}s"
  else
    echo "fuzz_$target: FAILED (see build-fuzz/$target.log and build-fuzz/crashes/)"
    tail -30 "build-fuzz/$target.log"
    status=1
  fi
done
exit $status
