#!/usr/bin/env bash
# Overhead: 32 builds at once, each printing MB_PER_BUILD (default 100) MB of varied ninja-like
# lines as fast as it can, through real Nix. Side by side in one run:
#   - ptbuildd's CPU per MB of log (MB/s per core), its peak RSS, and the bytes its zstd logs take
#     on disk per MB of log;
#   - `status` latency during the flood, p50/p99, measured inside one open client connection
#     (the daemon's own answer time) and as whole `ptbuild status --json` processes (with the
#     start of a client process on a machine the builds saturate), in turns of 5 s each;
#   - then the 237-job real-process makespan against GNU parallel (bench/scheduling.sh), unless
#     SKIP_SCHEDULING=1.
# LIVE_LOG=false runs the builds without the plain live copy of their logs (daemon.live_log) and
# records the run under its own heading.
# DASHBOARDS=N keeps N simulated web dashboards open meanwhile (bench/dashboard_load.py: event
# streams of the watch and of a flooding build's log, and the page's polls) and records the run
# under its own heading; DASHBOARDS=0 records the baseline beside it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
builds="${BUILDS:-32}"
mb="${MB_PER_BUILD:-100}"
lines=$((mb * 1000000 / 95))  # ~95 bytes a line with Nix's prefix
work=$(mktemp -d /tmp/ptbuild-bench-overhead-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs"
nonce="$$-$(date +%s%N)"
for i in $(seq "$builds"); do
  sh_derivation "flood-$i" "$nonce" \
    "seq 1 $lines | sed 's|.*|[&/$lines] Building CXX object caffe2/CMakeFiles/torch_cpu.dir/aten/src/ATen/op_&.cpp.o|'; mkdir \$out" \
    > "$work/repo/.flox/pkgs/pytorch-python313-cuda13_0-sm$((79 + i))-avx512.nix"
done
dashboards="${DASHBOARDS:-0}"
live_log="${LIVE_LOG:-true}"
start_daemon "$work" "max_parallel = $builds
live_log = $live_log
max_silent = \"10m\"
[verify]
enabled = false
[web]
listen = \"127.0.0.1:0\""
web_port=$(grep -o 'web dashboard on http://127.0.0.1:[0-9]*' "$work/ptbuildd.log" | grep -o '[0-9]*$')
P=("$ptbuild" --config "$work/ptbuild.toml")
ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
hz=$(getconf CLK_TCK)
cpu0=$(ticks)
t0=$(now_ms)
"${P[@]}" queue all >/dev/null
"${P[@]}" wait all --timeout 60m >/dev/null &
waiter=$!

# `status` while the builds run, in turns of 5 s so that neither measurement competes with the
# other for the CPU: asked in one open connection every 0.1 s, then as a whole `ptbuild status
# --json` process every 0.5 s. (Measured at once, the daemon's answers waited for the starts of
# those client processes: a woken daemon does not preempt another group's normal-priority process
# while its cgroup's share goes to its builds.)
python3 - "$work/run/ptbuildd.sock" "$waiter" "$ptbuild" "$work/ptbuild.toml" "$work/in-connection.txt" "$work/process.txt" <<'PY' &
import json, os, socket, subprocess, sys, time
path, waiter, ptbuild, config, in_connection, processes = sys.argv[1:7]
sock = socket.socket(socket.AF_UNIX)
sock.connect(path)
f = sock.makefile("rwb")
f.readline()  # hello
f.write(b'{"hello":"ptbuild","protocol":1}\n'); f.flush()
turn, n, start = 5.0, 0, time.monotonic()
with open(in_connection, "w") as inconn, open(processes, "w") as procs:
    while True:
        try:
            os.kill(int(waiter), 0)
        except ProcessLookupError:
            break
        if int((time.monotonic() - start) / turn) % 2 == 0:
            n += 1
            a = time.perf_counter_ns()
            f.write(b'{"id":%d,"op":"status","args":{}}\n' % n); f.flush()
            while True:
                reply = json.loads(f.readline())
                if reply.get("id") == n and "ok" in reply:
                    break
            took = (time.perf_counter_ns() - a) // 1000
            # How many builds were printing then (running, with ninja's progress shown).
            flooding = sum(1 for j in reply["result"]["jobs"] if j["state"] == "running" and (j.get("progress") or {}).get("done", 0) > 0)
            print(took, flooding, file=inconn)
            time.sleep(0.1)
        else:
            a = time.perf_counter_ns()
            if subprocess.run([ptbuild, "--config", config, "status", "--json"], stdout=subprocess.DEVNULL).returncode:
                print("status failed under load", file=sys.stderr)
            print((time.perf_counter_ns() - a) // 1000, file=procs)
            time.sleep(0.5)
PY
prober=$!
if [ "$dashboards" -gt 0 ]; then
  python3 "$root/bench/dashboard_load.py" "$web_port" "$dashboards" "$waiter" > "$work/dashboard.txt" 2> "$work/dashboard-summary.txt" &
  loader=$!
fi
wait "$waiter" || echo "not every build succeeded" >&2
wait "$prober" || true
[ "$dashboards" -gt 0 ] && { wait "$loader" || true; }
t1=$(now_ms)
cpu1=$(ticks)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
disk=$(cat "$work"/state/logs/*.log.zst | wc -c)
text=$(for f in "$work"/state/logs/*.log.zst; do zstd -dcq "$f"; done | wc -c)
failed=$("${P[@]}" jobs --state failed --json | grep -c '"id"' || true)
pct() { sort -n | awk -v q="$1" '{a[NR]=$1} END {printf "%.1f", a[int(NR*q) < 1 ? 1 : int(NR*q)]/1000}'; }
inconn=$(wc -l < "$work/in-connection.txt")
awk -v n="$builds" '$2 == n' "$work/in-connection.txt" > "$work/flooding.txt"
secs=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f", ms/1000}')
cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN {printf "%.2f", t/hz}')

sched=""
if [ -z "${SKIP_SCHEDULING:-}" ] && command -v parallel >/dev/null; then
  stop_daemon
  sched_out=$(bash "$root/bench/scheduling.sh" 2>&1 || true)
  sched=$(grep -E '^\| (lower bound|ptbuildd|GNU parallel)' <<<"$sched_out" || true)
  [ -n "$sched" ] || { echo "bench/scheduling.sh gave no figures:" >&2; tail -5 <<<"$sched_out" >&2; }
fi

dash_rows=""
if [ "$dashboards" -gt 0 ]; then
  dash_rows="| web dashboards open | $dashboards: $(cat "$work/dashboard-summary.txt" | sed 's/^[0-9]* dashboards: //') | |
| \`GET /api/status\` from the dashboards, p50 / p99 | $(pct 0.5 < "$work/dashboard.txt") ms / $(pct 0.99 < "$work/dashboard.txt") ms ($(wc -l < "$work/dashboard.txt") calls) | |"
fi
heading="Overhead: $builds builds streaming logs at once"
[ -n "${DASHBOARDS:-}" ] && heading="$heading, ${mb} MB each, with $dashboards web dashboards open"
[ "$live_log" = false ] && heading="$heading, without the plain live copy (daemon.live_log = false)"
report=$(mktemp)
cat > "$report" <<MD
## $heading

$(date -u +%Y-%m-%d), $(nproc) cores, real Nix $(nix --version | awk '{print $3}'); each build prints ${mb} MB of varied ninja-like
lines as fast as it can (through Nix's -L prefixing); logs are written zstd-compressed, a frame
closed within a second.

| figure | value | goal |
|---|---|---|
| wall time until all $builds ended | ${secs} s | |
| log text | $(awk -v b="$text" 'BEGIN {printf "%.0f MB", b/1e6}') ($(awk -v b="$text" -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f MB/s", b/1e6/(ms/1000)}')) | |
| ptbuildd CPU time (user + system) | ${cpu} s ($(awk -v c="$cpu" -v ms=$((t1 - t0)) 'BEGIN {printf "%.0f%% of one core", 100*c/(ms/1000)}')) | |
| ptbuildd CPU per MB of log | $(awk -v b="$text" -v c="$cpu" 'BEGIN {printf "%.0f MB/s per core", (c > 0 ? b/1e6/c : 0)}') | ≥ 500 |
| ptbuildd peak RSS | $(awk -v k="$rss" 'BEGIN {printf "%.1f MB", k/1024}') | < 32 MB |
| bytes on disk per MB of log | $(awk -v d="$disk" -v t="$text" 'BEGIN {printf "%.3f MB (%.0f×)", d/t, t/d}') | |
| \`status\` in one open connection while all $builds builds print, p50 / p99 | $(pct 0.5 < "$work/flooding.txt") ms / $(pct 0.99 < "$work/flooding.txt") ms ($(wc -l < "$work/flooding.txt") calls) | p99 < 5 ms |
| \`status\` in one open connection, the whole run (builds starting and ending too), p50 / p99 | $(pct 0.5 < "$work/in-connection.txt") ms / $(pct 0.99 < "$work/in-connection.txt") ms (${inconn} calls) | |
| \`ptbuild status --json\` process, p50 / p99 | $(pct 0.5 < "$work/process.txt") ms / $(pct 0.99 < "$work/process.txt") ms ($(wc -l < "$work/process.txt") calls) | |
| failed builds | $failed | 0 |
$dash_rows
${sched:+
237 real-process builds on 4 slots (bench/scheduling.sh, same run):

| approach | makespan |
|---|---|
$sched}

The builds run under SCHED_IDLE with the lowest best-effort I/O priority, and the daemon in a
cgroup of its own as under its systemd unit (where the kernel's autogroup would otherwise give
each builder's session the daemon's share), so the daemon answers at once although they saturate
the machine; the whole-process figure adds the start of a client process competing with them.
The two are measured in turns of 5 s, never at once. "While all builds print" are the answers
whose own status showed every build running and printing; the whole run adds the builds'
start (each spawn waits for its child's exec) and end (Nix's teardown in the kernel).
The per-byte path alone (bench/log_path.cpp, one core, no Nix): see "Log path" below.
MD
cat "$report"
# DASHBOARDS set (0 too, for the baseline of the comparison): recorded apart from the main figures.
if [ -n "${DASHBOARDS:-}" ]; then record "overhead-dashboards-$dashboards" "$report"
elif [ "$live_log" = false ]; then record overhead-no-live-log "$report"
else record overhead "$report"; fi
