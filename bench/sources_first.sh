#!/usr/bin/env bash
# Hash repair before the long build: N recipes pin one source with one wrong hash, and each also
# needs a long dependency (magma, say: LONG_SECONDS, default 2) built beside that source. How many
# long builds start on a wrong pin (work thrown away, or hours spent before the hash is met), at
# max_parallel 1, 2 and 4?  ptbuildd realises a build's sources first (docs/hash-repair.md); the comparison is
# the loop by hand (nix build --keep-going, copy the got: hash, build again), which is also what
# ptbuildd did before: every build that started before the first repair built its dependencies.
#   bench/sources_first.sh [N]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
n="${1:-6}"
long="${LONG_SECONDS:-2}"
work=$(mktemp -d /tmp/ptbuild-bench-sources-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; rm -rf "$work"' EXIT

make_repo() {  # DIR NONCE
  local dir="$1" nonce="$2" src
  src=$(stale_src "$nonce")
  mkdir -p "$dir/.flox/pkgs"
  for i in $(seq "$n"); do
    cat > "$dir/.flox/pkgs/pytorch-python313-cuda13_0-sm$((79 + i))-avx512.nix" <<NIX
{ pkgs ? null }:
let
$src
  dep = derivation {
    name = "magma-$i"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin"; nonce = "$nonce";
    args = [ "-c" "echo \$(date +%s%3N) $i >> $work/starts-$nonce; sleep $long; echo done > \$out" ];
  };
in derivation {
  name = "pytorch-$i"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
  inherit src dep; nonce = "$nonce";
  args = [ "-c" "cat \$src \$dep >/dev/null; mkdir \$out" ];
}
NIX
  done
  commit_repo "$dir"
}

# long dependency starts before the time (ms) in $2, from the starts file $1
before() { awk -v t="$2" '$1 < t {c++} END {print c+0}' "$1" 2>/dev/null || echo 0; }
# (ptbuildd: starts before the last repair, an upper bound of those on a wrong pin)

rows=""
for p in 1 2 4; do
  nonce="daemon-$p-$$-$(date +%s%N)"
  rm -rf "$work/repo" "$work/state" "$work/run"
  make_repo "$work/repo" "$nonce"
  start_daemon "$work" "max_parallel = $p"$'\n[verify]\nenabled = false'""
  t0=$(now_ms)
  "$ptbuild" --config "$work/ptbuild.toml" queue all >/dev/null
  "$ptbuild" --config "$work/ptbuild.toml" wait all --json --timeout 30m > "$work/jobs.json" || true
  t1=$(now_ms)
  fixed_at=$("$ptbuild" --config "$work/ptbuild.toml" fixes --json | python3 -c '
import json, sys, datetime
ts = [datetime.datetime.fromisoformat(f["at"].replace("Z", "+00:00")).timestamp() for f in json.load(sys.stdin)["fixes"]]
print(int(max(ts) * 1000) if ts else 0)')
  green=$(python3 -c 'import json,sys; print(all(j["state"]=="succeeded" for j in json.load(open(sys.argv[1]))["jobs"]))' "$work/jobs.json")
  stop_daemon
  wasted=$(before "$work/starts-$nonce" "$fixed_at")
  rows+="| ptbuildd, max_parallel $p | $wasted | $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 ))s | $green |"$'\n'
done

# By hand (and ptbuildd before): nix build --keep-going each recipe, repair the one that failed.
nonce="manual-$$-$(date +%s%N)"
make_repo "$work/manual" "$nonce"
t2=$(now_ms)
manual_wasted=0
for i in $(seq "$n"); do
  f="$work/manual/.flox/pkgs/pytorch-python313-cuda13_0-sm$((79 + i))-avx512.nix"
  while ! out=$(nix build -f "$f" --no-link --keep-going 2>&1); do
    got=$(printf '%s\n' "$out" | sed -n 's/^ *got: *//p' | head -1)
    spec=$(printf '%s\n' "$out" | sed -n 's/^ *specified: *//p' | head -1)
    [ -n "$got" ] || { echo "$out" >&2; exit 1; }
    sed -i "s|$spec|$got|" "$f"
    # its long dependency ran in the attempt that met the wrong pin
    grep -q " $i\$" "$work/starts-$nonce" 2>/dev/null && manual_wasted=$((manual_wasted + 1))
  done
done
t3=$(now_ms)

report=$(mktemp)
cat > "$report" <<MD
## Hash repair before the long build: $n recipes sharing one wrong hash

$(date -u +%Y-%m-%d), $(nproc) cores, real Nix $(nix --version | awk '{print $3}'); each recipe also needs a
long dependency (${long}s here, hours for magma or torch itself) beside the source with the wrong pin.

| approach | long builds started on a wrong pin | time to all green | all green |
|---|---|---|---|
${rows}| by hand: nix build --keep-going, copy got:, again (ptbuildd before: every build started before the first repair) | $manual_wasted | $(( (t3 - t2) / 1000 )).$(( (t3 - t2) % 1000 / 100 ))s | True |

A long build started on a wrong pin either runs for nothing (the package fails after it) or, with
--keep-going, spends its hours before the wrong hash is even reported. ptbuildd realises a build's
fixed-output inputs first, so the wrong hash is met and repaired in seconds, whatever max_parallel.
MD
cat "$report"
record sources-first "$report"
