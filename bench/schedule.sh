#!/usr/bin/env bash
# Runs the scheduling simulation and records its table in docs/BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$root/build" --target bench_schedule_sim -j2 >/dev/null
report=$(mktemp)
"$root/build/bench_schedule_sim" | tee "$report"
record schedule-sim "$report"
