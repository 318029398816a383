# Shared by the benchmarks: the built binaries, an offline Nix, and recording figures in
# docs/BENCHMARKS.md between markers of the benchmark's own name.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ptbuildd="$root/build/ptbuildd"
ptbuild="$root/build/ptbuild"
source "$root/scripts/nix-env.sh"
[ -x "$ptbuildd" ] || { echo "build ptbuild first: bash scripts/build.sh" >&2; exit 1; }

now_ms() { date +%s%3N; }

# The hash a pin had before its source changed: right once, wrong now (the hash-repair benchmarks).
stale_hash() { nix hash to-sri --type sha256 "$(printf 'stale' | sha256sum | cut -d' ' -f1)"; }

# stale_src NONCE: the Nix binding of a fixed-output source unique to NONCE whose pinned hash is
# wrong (stale_hash): what every recipe of the hash-repair benchmarks pins.
stale_src() {
  cat <<NIX
  src = derivation {
    name = "torch-src"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
    args = [ "-c" "printf '%s' torch-$1 > \$out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "$(stale_hash)";
  };
NIX
}

# sh_derivation NAME NONCE SCRIPT: a recipe whose build runs SCRIPT with /bin/sh (what Debian's
# Nix has without nixpkgs); a new NONCE makes a new derivation, so Nix builds it again.
sh_derivation() {
  cat <<NIX
{ pkgs ? null }:
derivation {
  name = "$1"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/bin:/usr/bin";
  nonce = "$2";
  args = [ "-c" "$3" ];
}
NIX
}

# Makes DIR a git repository with everything in it committed (hash repair works on tracked files).
commit_repo() {
  git -C "$1" init -q
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@localhost commit -q -m recipes
}

# record NAME FILE: puts FILE's text into docs/BENCHMARKS.md as the section NAME.
record() {
  local name="$1" text="$2" doc="$root/docs/BENCHMARKS.md"
  [ -f "$doc" ] || printf '# Benchmarks\n\nFigures printed by the programs under bench/, recorded by them.\n' > "$doc"
  python3 - "$doc" "$name" "$text" <<'PY' 2>/dev/null || {
import sys, re
doc, name, text = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
s = open(doc).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = f"{begin}\n{text.rstrip()}\n{end}"
s = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, s, flags=re.S) if begin in s else s.rstrip() + "\n\n" + block + "\n"
open(doc, "w").write(s)
PY
    # Without python3: append.
    { echo; echo "<!-- $name:begin -->"; cat "$text"; echo "<!-- $name:end -->"; } >> "$doc"
  }
}

# The daemon runs in a cgroup of its own, as under its systemd unit. In the root cgroup the
# kernel's autogroup makes each session a group with an equal share of the CPU, and Nix starts
# every builder in a session of its own: 32 flooding builds then get 32 shares against the
# daemon's one, whatever their SCHED_IDLE says (ptbuildd warns of it at start).
bench_cgroup=""
make_cgroup() {
  [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] || return 0
  local root
  for root in /sys/fs/cgroup/cpu /sys/fs/cgroup; do
    if [ -w "$root/cgroup.procs" ] && mkdir -p "$root/ptbuild-bench-$$" 2>/dev/null; then
      bench_cgroup="$root/ptbuild-bench-$$"
      return 0
    fi
  done
}

# start_daemon DIR CONFIG_EXTRA: a ptbuildd on DIR/repo with its state in DIR.
start_daemon() {
  local dir="$1" extra="${2:-}"
  cat > "$dir/ptbuild.toml" <<TOML
[daemon]
state_dir = "state"
socket = "run/ptbuildd.sock"
$extra
[backend]
kind = "nix"
[[repo]]
name = "bench"
path = "repo"
TOML
  make_cgroup
  (
    [ -z "$bench_cgroup" ] || echo "$BASHPID" > "$bench_cgroup/cgroup.procs"
    exec "$ptbuildd" --config "$dir/ptbuild.toml" 2> "$dir/ptbuildd.log"
  ) &
  daemon_pid=$!
  for _ in $(seq 200); do
    "$ptbuild" --config "$dir/ptbuild.toml" status >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "ptbuildd did not start" >&2; cat "$dir/ptbuildd.log" >&2; exit 1
}
stop_daemon() {
  kill "$daemon_pid" 2>/dev/null || true  # stopped already (the EXIT trap after an explicit stop)
  wait "$daemon_pid" 2>/dev/null || true
  [ -z "$bench_cgroup" ] || rmdir "$bench_cgroup" 2>/dev/null || true
}
