#!/usr/bin/env bash
# The .deb has what an operator needs, installs cleanly, works, and removes cleanly.
#   tests/package_check.sh PACKAGE.deb     (installing needs root)
set -euo pipefail
deb="$1"
fail() { echo "package check: $*" >&2; exit 1; }
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/ptbuildd ./usr/bin/ptbuild ./usr/lib/systemd/system/ptbuildd.service \
            ./usr/lib/systemd/system/ptbuild-nightly.service ./usr/lib/systemd/system/ptbuild-nightly.timer \
            ./usr/lib/sysusers.d/ptbuild.conf ./usr/lib/tmpfiles.d/ptbuild.conf ./etc/ptbuild/ptbuildd.toml \
            ./usr/share/ptbuild/probe.py ./usr/share/man/man1/ptbuild.1 ./usr/share/man/man8/ptbuildd.8 \
            ./usr/share/bash-completion/completions/ptbuild ./usr/share/zsh/vendor-completions/_ptbuild; do
  grep -q " $path\$" <<<"$contents" || fail "$path is not in the package"
done
dpkg-deb -f "$deb" Depends | grep -q libsqlite3 || fail "Depends does not name libsqlite3"
dpkg-deb -I "$deb" conffiles | grep -q /etc/ptbuild/ptbuildd.toml || fail "the config is not a conffile"
grep -q "ExecStart=/usr/bin/ptbuildd" <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/ptbuildd.service) ||
  fail "the unit does not start /usr/bin/ptbuildd"
echo "package check: contents ok"
if [ "$(id -u)" -ne 0 ]; then echo "package check: not root, install not tried"; exit 0; fi
if dpkg -s ptbuild >/dev/null 2>&1; then fail "ptbuild is already installed here; not touching it"; fi
# A purge removes /var/lib/ptbuild: keep what a source install or the demo left there.
kept=""
if [ -e /var/lib/ptbuild ]; then
  kept=$(mktemp -d /var/lib/ptbuild-kept-XXXXXX)
  mv /var/lib/ptbuild "$kept/"
fi
restore() { [ -z "$kept" ] || { rm -rf /var/lib/ptbuild; mv "$kept/ptbuild" /var/lib/ptbuild; rmdir "$kept"; }; }
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null || { restore; fail "dpkg -i failed"; }
trap 'dpkg -P ptbuild >/dev/null 2>&1 || true; restore' EXIT
getent passwd ptbuild >/dev/null || fail "the ptbuild user was not created"
/usr/bin/ptbuildd --check-config --config /etc/ptbuild/ptbuildd.toml >/dev/null || fail "the installed config does not check"
/usr/bin/ptbuild --help >/dev/null || fail "ptbuild --help failed"
systemd-analyze verify /usr/lib/systemd/system/ptbuildd.service /usr/lib/systemd/system/ptbuild-nightly.service \
  /usr/lib/systemd/system/ptbuild-nightly.timer || fail "systemd-analyze verify failed on the installed units"
dpkg -r ptbuild >/dev/null || fail "dpkg -r failed"
[ ! -e /usr/bin/ptbuildd ] || fail "/usr/bin/ptbuildd is left after removal"
[ ! -e /usr/lib/systemd/system/ptbuildd.service ] || fail "the unit is left after removal"
dpkg -P ptbuild >/dev/null 2>&1 || true
restore
trap - EXIT
[ ! -e /etc/ptbuild/ptbuildd.toml ] || fail "the config is left after purge"
echo "package check: installed, worked, removed cleanly"
