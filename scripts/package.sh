#!/usr/bin/env bash
# Builds the Debian package (prefix /usr) in build-deb/ and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache: paths relative to the checkout, so that another clone (CI) reuses the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build-deb -G Ninja -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-deb -j"${JOBS:-2}" --target ptbuildd ptbuild >/dev/null
(cd build-deb && cpack -G DEB >/dev/null 2>&1)
ls "$PWD"/build-deb/ptbuild_*.deb
