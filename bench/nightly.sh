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
echo '"shared-1"' > "$work/repo/.flox/pkgs/lib/common.nix"
nonce="$$-$(date +%s%N)"
n=0
add() {
  cat > "$work/repo/.flox/pkgs/$1.nix" <<NIX
{ pkgs ? null }:
derivation {
  name = "$1"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
  common = import ./lib/common.nix; nonce = "$nonce";
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
echo '"shared-2"' > "$work/repo/.flox/pkgs/lib/common.nix"
"${P[@]}" nightly --json > "$work/changed.json"
t3=$(now_ms)
count() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["jobs"]), len(d["skipped"]), len(d["errors"]))' "$1"; }
read -r q_jobs q_skipped q_errors < <(count "$work/quiet.json")
read -r c_jobs c_skipped c_errors < <(count "$work/changed.json")
secs() { echo "$(( $1 / 1000 )).$(( $1 % 1000 / 100 ))s"; }

report=$(mktemp)
cat > "$report" <<MD
## Nightly on a $n-variant repo

$(date -u +%Y-%m-%d), $(nproc) cores, real Nix $(nix --version | awk '{print $3}'), tiny recipes importing one shared file,
evaluations $(grep -o 'kEvalParallel = [0-9]*' "$root/daemon/nightly/nightly.h" | awk '{print $3}') at a time.

| run | time | queued | skipped | errors |
|---|---|---|---|---|
| first build of all $n (max_parallel 4) | $(secs $((t1 - t0))) | $n | – | – |
| nightly, nothing changed | $(secs $((t2 - t1))) | $q_jobs | $q_skipped | $q_errors |
| nightly, the shared file changed | $(secs $((t3 - t2))) | $c_jobs | $c_skipped | $c_errors |

A nightly that rebuilds nothing costs one \`nix-instantiate\` per variant; real recipes that
evaluate nixpkgs take seconds each, so this grows with the recipes, not with ptbuild.
MD
cat "$report"
record nightly "$report"
