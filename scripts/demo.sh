#!/usr/bin/env bash
# The README's first command: installs what is missing, builds ptbuild, makes a small real build
# repo, starts ptbuildd on it with the embedded defaults (no config file), queues the whole
# matrix, shows progress until done and prints the matrix.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
bash scripts/build.sh ptbuildd ptbuild   # the demo needs no test binaries
ptbuildd="$root/build/ptbuildd"
ptbuild="$root/build/ptbuild"

# Nix as a fresh machine's nix-bin needs it for the demo's recipes (scripts/nix/nix.conf).
source scripts/nix-env.sh
unset PTBUILD_CONFIG PTBUILD_SOCKET

demo="${PTBUILD_DEMO_DIR:-/tmp/ptbuild-demo}"
rm -rf "$demo"
bash scripts/make-demo-repo.sh "$demo/build-pytorch"
cd "$demo/build-pytorch"

echo "== ptbuildd with the embedded defaults, build repo $(pwd)"
"$ptbuildd" --check-config | sed -n '/^\[daemon\]/,/^$/p'
"$ptbuildd" 2> "$demo/ptbuildd.log" &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$ptbuild" status >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { cat "$demo/ptbuildd.log"; exit 1; }
  sleep 0.1
done

echo "== the dashboard: http://127.0.0.1:8460/ (metrics: /metrics) while the demo runs"
echo; echo "== the matrix the daemon found"
"$ptbuild" matrix
echo; echo "== ptbuild queue all"
"$ptbuild" queue all
echo; echo "== ptbuild status --watch (until every build has ended)"
"$ptbuild" status --watch
echo; echo "== ptbuild wait all"
"$ptbuild" wait all && result=0 || result=$?
echo; echo "== the matrix after the builds"
"$ptbuild" matrix
echo; echo "== one job in full: ptbuild show cuda13_0-sm90-avx512"
"$ptbuild" show cuda13_0-sm90-avx512
echo; echo "daemon log: $demo/ptbuildd.log"
exit "$result"
