#!/usr/bin/env bash
# Formats every C++ file of the tree (tracked, or new and not ignored) to .clang-format.
#   scripts/format.sh           rewrite them in place
#   scripts/format.sh --check   change nothing; list the files that stray and exit 1 (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
# Tracked files and new ones not yet added (but not what .gitignore leaves out).
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.h')
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
