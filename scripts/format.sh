#!/usr/bin/env bash
# Formats every C++ file git tracks to .clang-format.
#   scripts/format.sh           rewrite them in place
#   scripts/format.sh --check   change nothing; list the files that stray and exit 1 (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h')
if [ "${1:-}" = "--check" ]; then
  stray=()
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || stray+=("$f")
  done
  if ((${#stray[@]})); then
    echo "format: ${#stray[@]} files are not formatted to .clang-format (run scripts/format.sh):" >&2
    printf '  %s\n' "${stray[@]}" >&2
    exit 1
  fi
  echo "format: all ${#files[@]} C++ files follow .clang-format"
else
  clang-format -i "${files[@]}"
fi
