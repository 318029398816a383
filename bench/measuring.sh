#!/usr/bin/env bash
# The daemon's own cost of measuring (docs/resources.md) with BUILDS (default 32) builds running
# through real Nix: each build sleeps, so what ptbuildd does meanwhile is its timers, reading this
# machine's facts every 5 s and each build's cgroup, and the log frames of silent builds. Its CPU
# time (utime + stime of /proc/PID/stat) and wakeups (context switches of /proc/PID/status) over
# SECONDS (default 60), against the same daemon idle for as long.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
builds="${BUILDS:-32}"
seconds="${SECONDS_MEASURED:-60}"
work=$(mktemp -d /tmp/ptbuild-bench-measuring-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs"
for i in $(seq "$builds"); do
  sh_derivation "measured-$i" "$$-$(date +%s%N)" "while [ ! -e $work/done ]; do sleep 1; done; mkdir \$out" \
    > "$work/repo/.flox/pkgs/pytorch-python313-cuda13_0-sm$((79 + i))-avx512.nix"
done
# Never built, a variant is expected to take resources.default_memory: small here, or this
# machine's memory would hold one build at a time.
start_daemon "$work" "max_parallel = $builds
max_silent = \"30m\"
[verify]
enabled = false
[resources]
default_memory = \"64MiB\"
[[builder]]
name = \"local\"
uri = \"local\"
max_jobs = $builds"
P=("$ptbuild" --config "$work/ptbuild.toml")
hz=$(getconf CLK_TCK)
sample() {  # prints "cpu_ticks switches" of the daemon
  local ticks switches
  ticks=$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")
  switches=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s}' "/proc/$daemon_pid/status")
  echo "$ticks $switches"
}
measure() {  # measure LABEL: the daemon's cost over $seconds, as a table row
  local a b
  a=$(sample); sleep "$seconds"; b=$(sample)
  python3 - "$1" "$a" "$b" "$seconds" "$hz" <<'PY'
import sys
label, a, b, secs, hz = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), float(sys.argv[4]), float(sys.argv[5])
cpu = (int(b[0]) - int(a[0])) / hz
wakeups = int(b[1]) - int(a[1])
print(f"| {label} | {cpu:.2f} s | {100 * cpu / secs:.2f}% | {wakeups / secs:.1f} |")
PY
}
report=$(mktemp)
{
  echo "ptbuildd's own CPU time and wakeups over ${seconds} s; builds that sleep through real Nix, their cgroups read"
  echo
  echo "| daemon | CPU time | of one core | wakeups a second |"
  echo "|---|---|---|---|"
  measure "idle (no build)"
  "${P[@]}" queue all >/dev/null
  for _ in $(seq 600); do
    [ "$("${P[@]}" jobs --state running --limit 1000 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')" = "$builds" ] && break
    sleep 0.5
  done
  sleep 6  # the first readings of their groups are done
  measure "$builds builds running, measured"
} | tee "$report"
touch "$work/done"
"${P[@]}" wait all --timeout 10m >/dev/null
record measuring-cost "$report"
