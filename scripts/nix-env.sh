# Sourced by the demo, the test scripts and the benchmarks: Nix reads scripts/nix/nix.conf and
# nothing else (neither /etc/nix/nix.conf nor a user's ~/.config/nix), so what works here works on
# a fresh machine too.
__ptbuild_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NIX_CONF_DIR="$__ptbuild_root/scripts/nix"
export NIX_USER_CONF_FILES="$__ptbuild_root/scripts/nix/nix.conf"
unset NIX_CONFIG __ptbuild_root
