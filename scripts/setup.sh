#!/usr/bin/env bash
# Installs everything ptbuild needs to build and test, from Debian 12's packages. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git sqlite3
  libboost1.81-dev libsqlite3-dev nlohmann-json3-dev libspdlog-dev doctest-dev libtomlplusplus-dev
  libzstd-dev libsodium-dev zstd nix-bin systemd clang clang-format libclang-rt-14-dev dpkg-dev tmux man-db
  chromium prometheus fonts-dejavu-core openssh-server openssh-client iproute2
  qemu-system-x86 busybox-static
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
