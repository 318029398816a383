#!/usr/bin/env bash
# The fleet for real: the same sleep-builds on 1 and on 2 namespaced sshd builders (needs root),
# recorded in docs/BENCHMARKS.md.   bench/fleet.sh [BUILDS] [SECONDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$root/build" --target bench_fleet_real -j2 >/dev/null
report=$(mktemp)
"$root/build/bench_fleet_real" "$@" | tee "$report"
record fleet-real "$report"
