#!/usr/bin/env bash
# The daemon's per-byte work on a build's output, one core, no Nix: 200 MB of PyTorch-like log
# through line splitting, the failure classifier, the hash mismatch reader, the progress parser
# and the zstd log writer (bench/log_path.cpp).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$root/build" --target bench_log_path -j"${JOBS:-2}" >/dev/null
report=$(mktemp)
{
  echo "## Log path: the daemon's work per byte of build output"
  echo
  echo "$(date -u +%Y-%m-%d), one core of $(nproc); $("$root/build/bench_log_path" "${MB:-200}")"
  echo
  echo "The goal is ≥ 500 MB/s a core for all of it; the classifier alone must stay fast on a 200 MB"
  echo "log (ninja's status lines, nearly all of one, are recognised and passed over)."
} > "$report"
cat "$report"
record log_path "$report"
