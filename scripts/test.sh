#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every unit and integration
# test with ctest, a short run of each fuzzer, and the whole suite again under ASan + UBSan.
#   FAST=1 scripts/test.sh   only the first part (the plain build and its tests)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/format.sh --check
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"${JOBS:-2}" --timeout 600)
[ -n "${FAST:-}" ] && exit 0
echo "== fuzzing (${FUZZ_SECONDS:-10}s per target)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
echo "== the Debian package"
bash tests/package_check.sh "$(bash scripts/package.sh)"
echo "== the suite under ASan + UBSan"
bash scripts/sanitize.sh
