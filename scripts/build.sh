#!/usr/bin/env bash
# Configures and builds ptbuild into build/ (binaries: build/ptbuildd, build/ptbuild).
#   scripts/build.sh [TARGET…]   only these targets (the demo builds ptbuildd and ptbuild alone)
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache: paths relative to the checkout, so that another clone (CI) reuses the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
generator=()
command -v ninja >/dev/null && [ ! -f build/CMakeCache.txt ] && generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"${JOBS:-2}" "${targets[@]}"
