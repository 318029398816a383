# Shared by the benchmarks: the built binaries, an offline Nix, and recording figures in
# docs/BENCHMARKS.md between markers of the benchmark's own name.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ptbuildd="$root/build/ptbuildd"
ptbuild="$root/build/ptbuild"
source "$root/scripts/nix-env.sh"
[ -x "$ptbuildd" ] || { echo "build ptbuild first: bash scripts/build.sh" >&2; exit 1; }

now_ms() { date +%s%3N; }

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
  "$ptbuildd" --config "$dir/ptbuild.toml" 2> "$dir/ptbuildd.log" &
  daemon_pid=$!
  for _ in $(seq 200); do
    "$ptbuild" --config "$dir/ptbuild.toml" status >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "ptbuildd did not start" >&2; cat "$dir/ptbuildd.log" >&2; exit 1
}
stop_daemon() { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; }
