#!/usr/bin/env bash
# Nightly on a 237-variant repo (tiny real recipes named like the real matrix, all importing one
# shared file): the time of a nightly that has nothing to rebuild, and of one after the shared
# file changed for every variant.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/ptbuild-bench-nightly-XXXXXX)
chmod 755 "$work"
trap 'stop_daemon; rm -rf "$work"' EXIT
mkdir -p "$work/repo/.flox/pkgs/lib"
# A stand-in for nixpkgs: one large shared expression (MB of Nix) that every recipe imports.
big() {  # VERSION
  python3 - "$1" > "$work/repo/.flox/pkgs/lib/common.nix" <<'PY'
import sys
v = sys.argv[1]
print("{")
for i in range(60000):
    print(f'  pkg{i} = {{ name = "pkg-{i}"; version = "{v}.{i % 97}"; deps = [ "a{i % 13}" "b{i % 7}" ]; }};')
print(f'  shared = "shared-{v}";')
print("}")
PY
}
big 1
nonce="$$-$(date +%s%N)"
n=0
add() {
  cat > "$work/repo/.flox/pkgs/$1.nix" <<NIX
{ pkgs ? null }:
derivation {
  name = "$1"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
  common = (import ./lib/common.nix).shared; nonce = "$nonce";
  args = [ "-c" "mkdir \$out" ];
}
NIX
  n=$((n + 1))
}
for family in pytorch torchvision torchaudio; do
  for cuda in cuda12_8 cuda12_9 cuda13_0; do
    for arch in sm80 sm86 sm89 sm90 sm100 sm103 sm110 sm120 sm121; do
      for isa in avx2 avx512 avx512bf16 avx512vnni; do
        [ "$n" -lt 221 ] && add "$family-python313-$cuda-$arch-$isa"
      done
    done
  done
done
for family in pytorch torchvision torchaudio libtorch; do
  for isa in avx2 avx512 avx512bf16 avx512vnni; do add "$family-python313-cpu-$isa"; done
done

start_daemon "$work" "max_parallel = 4
[verify]
enabled = false"
P=("$ptbuild" --config "$work/ptbuild.toml")
t0=$(now_ms)
"${P[@]}" queue all >/dev/null
"${P[@]}" wait all --timeout 30m >/dev/null
t1=$(now_ms)
"${P[@]}" nightly --json > "$work/quiet.json"
t2=$(now_ms)
quiet_ms=$((t2 - t1))
# The same evaluations, one process per variant, 4 at a time (what ptbuildd did before it
# evaluated a repo's recipes in one evaluator): each parses the large expression again.
t4=$(now_ms)
ls "$work"/repo/.flox/pkgs/*.nix | xargs -P 4 -n 1 nix-instantiate --quiet > /dev/null
t5=$(now_ms)
big 2
t2=$(now_ms)
"${P[@]}" nightly --json > "$work/changed.json" || true
t3=$(now_ms)
count() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["jobs"]), len(d["skipped"]), len(d["errors"]))' "$1"; }
read -r q_jobs q_skipped q_errors < <(count "$work/quiet.json")
read -r c_jobs c_skipped c_errors < <(count "$work/changed.json")
secs() { echo "$(( $1 / 1000 )).$(( $1 % 1000 / 100 ))s"; }

report=$(mktemp)
cat > "$report" <<MD
## Nightly on a $n-variant repo

$(date -u +%Y-%m-%d), $(nproc) cores, real Nix $(nix --version | awk '{print $3}'), tiny recipes that all import one large
shared expression ($(du -k "$work/repo/.flox/pkgs/lib/common.nix" | cut -f1) KiB of Nix, a stand-in for nixpkgs).

| run | time | queued | skipped | errors |
|---|---|---|---|---|
| first build of all $n (max_parallel 4) | $(secs $((t1 - t0))) | $n | – | – |
| nightly, nothing changed (one evaluator for the repo) | $(secs $quiet_ms) | $q_jobs | $q_skipped | $q_errors |
| the same evaluations, one nix-instantiate per variant, 4 at a time | $(secs $((t5 - t4))) | – | – | – |
| nightly, the shared file changed | $(secs $((t3 - t2))) | $c_jobs | $c_skipped | $c_errors |

A nightly evaluates a repo's recipes in one \`nix-instantiate\`, so the shared expression is parsed
and evaluated once, not once per variant; a recipe that does not evaluate sends its repo's recipes
to be evaluated one by one, so it costs only itself. The first nightly after the builds also asks
the store once per variant which derivation built it (kept with the job afterwards): the second
nightly is the steady state. The first build of all pays for listing each build's sources before
it (an evaluation of the recipe, docs/hash-repair.md): seconds here for builds of nothing, against hours of a
real build.
MD
cat "$report"
record nightly "$report"
