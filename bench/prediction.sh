#!/usr/bin/env bash
# Prediction error of the expected peak memory (docs/resources.md): VARIANTS (default 6) variants
# built ROUNDS (default 8) times each through real Nix on this machine, each build holding its
# variant's memory (a different size for each variant) varied by ±5% from run to run (a normal
# spread, as the simulated nightly assumes); the cgroups ptbuildd makes measure every peak.
# bench_prediction then replays the daemon's expect_from() over that history: before each build,
# what would it have expected? The noise is this script's; the measuring and learning are real.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$root/build" --target bench_prediction -j2 >/dev/null
variants="${VARIANTS:-6}"
rounds="${ROUNDS:-8}"
work=$(mktemp -d /tmp/ptbuild-bench-prediction-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs"
isas=(avx2 avx512 avx512bf16 avx512vnni avx sse4_2 sse3 avx10)
name() { echo "pytorch-python313-cpu-${isas[$1]}"; }
recipe() {  # recipe I ROUND: variant I's build of this round, a fresh derivation each time
  local mib
  mib=$(python3 -c "import random; random.seed($1 * 1000 + $2); print(max(16, round((150 + 60 * $1) * random.gauss(1, 0.05))))")
  sh_derivation "prediction-$1" "$2-$$" "dd if=/dev/zero of=/dev/null bs=${mib}M count=1 2>/dev/null; mkdir \$out" \
    > "$work/repo/.flox/pkgs/$(name "$1").nix"
}
for i in $(seq 0 $((variants - 1))); do recipe "$i" 0; done
start_daemon "$work" "max_parallel = 2
[verify]
enabled = false
[[builder]]
name = \"local\"
uri = \"local\"
max_jobs = 2"
P=("$ptbuild" --config "$work/ptbuild.toml")
for r in $(seq 0 $((rounds - 1))); do
  for i in $(seq 0 $((variants - 1))); do recipe "$i" "$r"; done
  "${P[@]}" queue all >/dev/null
  "${P[@]}" wait all --timeout 10m >/dev/null
done
# Each variant's measured peaks, oldest first.
{
  echo '{"variants": {'
  for i in $(seq 0 $((variants - 1))); do
    [ "$i" = 0 ] || echo ','
    printf '"%s": ' "$(name "$i")"
    "${P[@]}" jobs --variant "$(name "$i")" --limit 1000 --json |
      python3 -c "import json,sys; j=json.load(sys.stdin)['jobs']; print(json.dumps([{'peak_memory': x['resources']['peak_memory'], 'cores': x['resources']['cores']} for x in reversed(j) if x['state']=='succeeded' and x.get('resources') and x['resources'].get('peak_memory')]))"
  done
  echo '}}'
} > "$work/history.json"
report=$(mktemp)
{
  echo "$variants variants × $rounds builds through real Nix, peaks measured by cgroup ($(cat /sys/fs/cgroup/cgroup.controllers >/dev/null 2>&1 && echo v2 || echo v1)); each variant holds 150 + 60·i MiB ±5% (normal) a build"
  echo
  "$root/build/bench_prediction" < "$work/history.json"
} | tee "$report"
record prediction "$report"
