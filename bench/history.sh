#!/usr/bin/env bash
# History: status, jobs and matrix latency with 100,000 finished jobs in the database (client
# round trip, process start included), median and p99 of 50 calls each.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
jobs="${1:-100000}"
work=$(mktemp -d /tmp/ptbuild-bench-history-XXXXXX)
trap 'stop_daemon; rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs"
for arch in sm80 sm86 sm89 sm90 sm100 sm103 sm110 sm120 sm121; do
  for isa in avx2 avx512 avx512bf16 avx512vnni; do
    echo '{ }: { }' > "$work/repo/.flox/pkgs/pytorch-python313-cuda13_0-$arch-$isa.nix"
  done
done
start_daemon "$work" ""
stop_daemon
# 100,000 finished builds spread over the 36 variants, each with its two events.
sqlite3 "$work/state/ptbuild.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $jobs)
INSERT INTO jobs(variant_id, kind, state, priority, reason, attempt, created_at, started_at, finished_at, exit_code)
SELECT 1 + (i % 36), 'build', CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'succeeded' END, 0, 'history', 1,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' minutes'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' minutes'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i - 1) || ' minutes'), 0 FROM n;
INSERT INTO job_events(job_id, at, from_state, to_state) SELECT id, created_at, NULL, 'queued' FROM jobs;
INSERT INTO job_events(job_id, at, from_state, to_state) SELECT id, finished_at, 'running', state FROM jobs;
SQL
start_daemon "$work" ""
P=("$ptbuild" --config "$work/ptbuild.toml")
measure() {  # label args...: prints "label p50 p99" in ms
  local label="$1"; shift
  local times=()
  for _ in $(seq 50); do
    local t0 t1; t0=$(date +%s%N); "${P[@]}" "$@" --json >/dev/null; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "| %s | %.1f ms | %.1f ms |\n", l, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
}
report=$(mktemp)
{
  echo "## History: $jobs finished jobs in the database"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores; the client's whole round trip (process start, connect, hello, request), 50 calls each."
  echo
  echo "| command | p50 | p99 |"
  echo "|---|---|---|"
  measure "ptbuild status" status
  measure "ptbuild jobs (50 newest)" jobs
  measure "ptbuild jobs --state failed" jobs --state failed
  measure "ptbuild matrix" matrix
  measure "ptbuild show 50000" show 50000
  echo
  echo "Database: $(du -h "$work/state/ptbuild.db" | cut -f1)."
} > "$report"
cat "$report"
record history "$report"
