#!/usr/bin/env bash
# Overhead: 32 builds at once, each printing MB_PER_BUILD of log as fast as it can. The daemon's
# CPU time and peak RSS, the log written per second, and `ptbuild status --json` latency (whole
# client round trip) during the load.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
builds=32
mb="${MB_PER_BUILD:-16}"
work=$(mktemp -d /tmp/ptbuild-bench-overhead-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs"
nonce="$$-$(date +%s%N)"
for i in $(seq "$builds"); do
  cat > "$work/repo/.flox/pkgs/pytorch-python313-cuda13_0-sm$((79 + i))-avx512.nix" <<NIX
{ pkgs ? null }:
derivation {
  name = "flood-$i"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
  nonce = "$nonce";
  args = [ "-c" "yes '[1/4210] Building CXX object caffe2/CMakeFiles/torch_cpu.dir/aten/src/ATen/native/cpu/Kernel.cpp.o' | head -c ${mb}000000; mkdir \$out" ];
}
NIX
done
start_daemon "$work" "max_parallel = $builds
max_silent = \"10m\"
[verify]
enabled = false"
P=("$ptbuild" --config "$work/ptbuild.toml")
ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
hz=$(getconf CLK_TCK)
cpu0=$(ticks)
t0=$(now_ms)
"${P[@]}" queue all >/dev/null
"${P[@]}" wait all --timeout 30m >/dev/null &
waiter=$!
lat=()
while kill -0 "$waiter" 2>/dev/null; do
  a=$(date +%s%N); "${P[@]}" status --json >/dev/null || echo "status failed under load" >&2; b=$(date +%s%N)
  lat+=($(( (b - a) / 1000 )))
done
wait "$waiter" || echo "not every build succeeded" >&2
t1=$(now_ms)
cpu1=$(ticks)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
bytes=$(cat "$work"/state/logs/*.log | wc -c)
failed=$("${P[@]}" jobs --state failed --json | grep -c '"id"' || true)
p() { printf '%s\n' "${lat[@]}" | sort -n | awk -v q="$1" '{a[NR]=$1} END {printf "%.1f", a[int(NR*q) < 1 ? 1 : int(NR*q)]/1000}'; }
secs=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f", ms/1000}')
report=$(mktemp)
cat > "$report" <<MD
## Overhead: $builds builds streaming logs at once

$(date -u +%Y-%m-%d), $(nproc) cores, real Nix $(nix --version | awk '{print $3}'); each build prints ${mb} MB of ninja-like lines as fast
as it can (through Nix's -L prefixing).

| figure | value |
|---|---|
| wall time until all $builds ended | ${secs} s |
| log written | $(awk -v b="$bytes" 'BEGIN {printf "%.0f MB", b/1e6}') ($(awk -v b="$bytes" -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f MB/s", b/1e6/(ms/1000)}')) |
| ptbuildd CPU time (user + system) | $(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN {printf "%.2f s", t/hz}') ($(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v ms=$((t1 - t0)) 'BEGIN {printf "%.0f%% of one core", 100*t/hz/(ms/1000)}')) |
| ptbuildd peak RSS | $(awk -v k="$rss" 'BEGIN {printf "%.1f MB", k/1024}') |
| \`ptbuild status --json\` during the load, p50 / p99 | $(p 0.5) ms / $(p 0.99) ms (${#lat[@]} calls) |
| failed builds | $failed |

Most of the CPU of this machine goes to the builds and to Nix copying their output; ptbuildd's
share is the log writing, line splitting for progress and diagnosis, and the socket.
MD
cat "$report"
record overhead "$report"
