#!/usr/bin/env bash
# Runs the memory-packing simulation and records its table in docs/BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$root/build" --target bench_memory_sim -j2 >/dev/null
report=$(mktemp)
"$root/build/bench_memory_sim" | tee "$report"
record memory-sim "$report"
