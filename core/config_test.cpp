#include "core/config.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;
using namespace std::chrono_literals;

namespace {
Environment user_env() {
  Environment e;
  e.is_root = false;
  e.xdg_state_home = "/home/u/.local/state";
  e.xdg_runtime_dir = "/run/user/1000";
  e.home = "/home/u";
  e.cwd = "/srv/build-pytorch";
  e.user_runtime_fallback = "/tmp/ptbuild-1000";
  e.flox_on_path = false;
  return e;
}

Config parse_ok(std::string_view text, Environment env = user_env()) {
  ConfigResult r = parse_config(text, "test.toml", "/etc/ptbuild", env);
  if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->message);
  return std::get<Config>(r);
}

std::string parse_error(std::string_view text) {
  ConfigResult r = parse_config(text, "test.toml", "/etc/ptbuild", user_env());
  REQUIRE(std::holds_alternative<ConfigError>(r));
  return std::get<ConfigError>(r).message;
}
}  // namespace

TEST_CASE("embedded defaults follow who runs it (docs/concepts.md)") {
  Config c = parse_ok("");
  CHECK(c.daemon.state_dir == "/home/u/.local/state/ptbuild");
  CHECK(c.daemon.socket == "/run/user/1000/ptbuild/ptbuildd.sock");
  CHECK(c.backend.kind == "nix");
  CHECK(c.backend.program == "nix");
  REQUIRE(c.repos.size() == 1);
  CHECK(c.repos[0].path == "/srv/build-pytorch");
  CHECK(c.repos[0].name == "build-pytorch");
  CHECK(c.repos[0].recipes == ".flox/pkgs");
  CHECK(c.daemon.max_parallel == 2);
  CHECK(c.daemon.build_timeout == Millis(6h));
  CHECK(c.daemon.order == "longest-first");
  CHECK(c.hashfix.max_rounds == 5);
  CHECK(c.nightly.targets == std::vector<std::string>{"all"});

  Environment root = user_env();
  root.is_root = true;
  root.flox_on_path = true;
  Config r = parse_ok("", root);
  CHECK(r.daemon.state_dir == "/var/lib/ptbuild");
  CHECK(r.daemon.socket == "/run/ptbuild/ptbuildd.sock");
  CHECK(r.backend.kind == "flox");

  Environment bare = user_env();
  bare.xdg_state_home = "";
  bare.xdg_runtime_dir = "";
  Config b = parse_ok("", bare);
  CHECK(b.daemon.state_dir == "/home/u/.local/state/ptbuild");
  CHECK(b.daemon.socket == "/tmp/ptbuild-1000/ptbuild/ptbuildd.sock");
}

TEST_CASE("every key of docs/config.md is read") {
  Config c = parse_ok(R"(
[daemon]
state_dir = "/var/lib/ptbuild"
socket = "/run/ptbuild/ptbuildd.sock"
admin_group = "builders"
max_parallel = 4
build_timeout = "3h"
max_silent = "45m"
kill_grace = "10s"
retries = 1
live_log = false
order = "fifo"
default_family = "pytorch"

[backend]
kind = "flox"
program = "/usr/local/bin/flox"
args = ["--cores", "16"]

[[repo]]
name = "pytorch"
path = "/srv/build-pytorch"
default_cuda = "13_0"

[[repo]]
name = "torchvision"
path = "vision"
recipes = "pkgs"
after = "pytorch"

[hashfix]
enabled = false
max_rounds = 3
commit = true

[verify]
enabled = false
command = "{out}/bin/python {probe}"

[publish]
auto = true
org = "myorg"
store = "file:///srv/cache"

[web]
listen = "[::1]:9000"
[nightly]
targets = ["sm90-*"]
pull = true
)");
  CHECK(c.daemon.admin_group == "builders");
  CHECK(c.daemon.max_parallel == 4);
  CHECK(c.daemon.build_timeout == Millis(3h));
  CHECK(c.daemon.max_silent == Millis(45min));
  CHECK(c.daemon.kill_grace == Millis(10s));
  CHECK(c.daemon.retries == 1);
  CHECK(c.daemon.order == "fifo");
  CHECK_FALSE(c.daemon.live_log);
  CHECK(c.daemon.default_family == "pytorch");
  CHECK(c.backend.kind == "flox");
  CHECK(c.backend.program == "/usr/local/bin/flox");
  CHECK(c.backend.args == std::vector<std::string>{"--cores", "16"});
  REQUIRE(c.repos.size() == 2);
  CHECK(c.web.listen == "[::1]:9000");
  CHECK(c.repos[0].default_cuda == "13_0");
  CHECK(c.repos[1].path == "/etc/ptbuild/vision");  // relative to the config file
  CHECK(c.repos[1].recipes == "pkgs");
  CHECK(c.repos[1].after == "pytorch");
  CHECK_FALSE(c.hashfix.enabled);
  CHECK(c.hashfix.max_rounds == 3);
  CHECK(c.hashfix.commit);
  CHECK(c.verify.command == "{out}/bin/python {probe}");
  CHECK(c.publish.auto_publish);
  CHECK(c.publish.org == "myorg");
  CHECK(c.publish.store == "file:///srv/cache");
  CHECK(c.nightly.targets == std::vector<std::string>{"sm90-*"});
  CHECK(c.nightly.pull);
}

TEST_CASE("config errors name the key and the line") {
  CHECK(parse_error("[daemon]\nmax_paralel = 2\n") == "test.toml:2: unknown key 'daemon.max_paralel'");
  CHECK(parse_error("[daemon]\n\nmax_parallel = \"2\"\n") ==
        "test.toml:3: daemon.max_parallel: expected an integer, got a string");
  std::string bad = parse_error("[daemon]\nbuild_timeout = \"6 hours\"\n");
  CHECK(bad.starts_with("test.toml:2: daemon.build_timeout: bad duration \"6 hours\""));
  CHECK(parse_error("[daemon]\nbuild_timeout = 6\n")
            .starts_with("test.toml:2: daemon.build_timeout: expected a duration string"));
  CHECK(parse_error("[daemon]\norder = \"random\"\n") ==
        "test.toml:2: daemon.order: must be one of \"longest-first\", \"fifo\", got \"random\"");
  CHECK(
      parse_error("[backend]\nkind = \"docker\"\n").starts_with("test.toml:2: backend.kind: must be one of"));
  CHECK(parse_error("[daemon]\nmax_parallel = 0\n") ==
        "test.toml:2: daemon.max_parallel: must be between 1 and 1024, got 0");
  CHECK(parse_error("[backend]\nargs = [\"a\", 1]\n")
            .starts_with("test.toml:2: backend.args: expected an array of strings"));
  CHECK(parse_error("[hashfix]\nenabled = \"yes\"\n") ==
        "test.toml:2: hashfix.enabled: expected true or false, got a string");
  CHECK(parse_error("colour = true\n") == "test.toml:1: unknown key 'colour'");
  CHECK(parse_error("[[repo]]\nname = \"x\"\n").find("repo.path: every [[repo]] needs a path") !=
        std::string::npos);
  CHECK(parse_error("[[repo]]\npath = \"/a\"\n[[repo]]\npath = \"/b/a\"\n")
            .find("two repositories are named 'a'") != std::string::npos);
  CHECK(parse_error("[[repo]]\npath = \"/a\"\nafter = \"zz\"\n").find("unknown repository 'zz'") !=
        std::string::npos);
  CHECK(parse_error("[daemon\n").starts_with("test.toml:1: "));
  CHECK(parse_error("daemon = 3\n") == "test.toml:1: [daemon] must be a table, got an integer");
}

TEST_CASE("values that cannot work are refused, naming the key and the line") {
  CHECK(parse_error("[daemon]\nbuild_timeout = \"0s\"\n") ==
        "test.toml:2: daemon.build_timeout: must be at least 1s, got \"0s\"");
  CHECK(parse_error("[daemon]\n\nmax_silent = \"0\"\n") ==
        "test.toml:3: daemon.max_silent: must be at least 1s, got \"0\"");
  CHECK(parse_error("[daemon]\nsocket = \"\"\n") == "test.toml:2: daemon.socket: must not be empty");
  CHECK(parse_error("[daemon]\nstate_dir = \"\"\n") == "test.toml:2: daemon.state_dir: must not be empty");
  CHECK(parse_error("[daemon]\nstate_dir = \"/var/lib/a\\u0000b\"\n") ==
        "test.toml:2: daemon.state_dir: contains a NUL character");
  CHECK(parse_error("[[repo]]\npath = \"/srv/x\\u0000\"\n").find("repo.path: contains a NUL character") !=
        std::string::npos);
  CHECK(parse_error("[backend]\nargs = [\"--cores\\u0000\"]\n") ==
        "test.toml:2: backend.args: contains a NUL character");
  CHECK(parse_error("[[repo]]\nname = \"pytorch\"\npath = \"/a\"\nafter = \"pytorch\"\n")
            .find("repository 'pytorch' waits for itself") != std::string::npos);
  CHECK(parse_error("[daemon]\nlog_max = \"1KiB\"\n") ==
        "test.toml:2: daemon.log_max: must be at least 64KiB");
  CHECK(parse_error("[daemon]\nlive_log = \"no\"\n") ==
        "test.toml:2: daemon.live_log: expected true or false, got a string");
  CHECK(parse_error("[web]\n\nlisten = \"localhost:8460\"\n") ==
        "test.toml:3: web.listen: 'localhost' is not an IP address (a name would depend on DNS at start)");
  CHECK(parse_error("[web]\nport = 1\n") == "test.toml:2: unknown key 'web.port'");
}

TEST_CASE("a matrix of several CUDA versions - each with its pin, archs and package set") {
  Config c = parse_ok(
      "[[repo]]\npath = \"/srv/bp\"\ndoctor_disable = [\"pname\"]\n[repo.matrix]\nnixpkgs = \"aaa\"\nx86_isas = [\"avx2\"]\n"
      "arch_isas = { sm61 = [\"avx\"] }\ndarwin = [\"mps\"]\n[repo.matrix.arch_text]\nsm61 = { GPU_NAME = \"GTX 1080\" }\n"
      "[[repo.matrix.cuda]]\nversion = \"12_8\"\nnixpkgs = \"bbb\"\narchs = [\"sm61\", \"sm90\"]\n"
      "[[repo.matrix.cuda]]\nversion = \"13_0\"\ncuda_packages = \"cudaPackages_13\"\narchs = [\"sm90\"]\n");
  REQUIRE(c.repos.size() == 1);
  CHECK(c.repos[0].doctor_disable == std::vector<std::string>{"pname"});
  const MatrixConfig& m = *c.repos[0].matrix;
  REQUIRE(m.cuda.size() == 2);
  CHECK(m.cuda[0].nixpkgs == "bbb");
  CHECK(m.cuda[1].cuda_packages == "cudaPackages_13");
  CHECK(m.arch_text.at("sm61").at("GPU_NAME") == "GTX 1080");
  std::vector<std::string> names;
  for (const PlannedRecipe& r : expand_matrix(m)) names.push_back(r.name + " " + r.expect.nixpkgs);
  CHECK(names == std::vector<std::string>{
                     "pytorch-python313-cuda12_8-sm61-avx bbb", "pytorch-python313-cuda12_8-sm90-avx2 bbb",
                     "pytorch-python313-cuda13_0-sm90-avx2 aaa", "pytorch-python313-darwin-mps aaa"});
  // The one-version form of older configs still reads.
  Config one = parse_ok(
      "[[repo]]\npath = \"/a\"\n[repo.matrix]\ncuda = \"13_0\"\ngpu_archs = { sm90 = \"9.0\" }\nx86_isas = [\"avx2\"]\n");
  CHECK(expand_matrix(*one.repos[0].matrix).at(0).name == "pytorch-python313-cuda13_0-sm90-avx2");

  std::string head = "[[repo]]\npath = \"/a\"\n[repo.matrix]\n";
  CHECK(parse_error(head + "[[repo.matrix.cuda]]\narchs = [\"sm90\"]\n") ==
        "test.toml:4: repo.matrix.cuda.version: every [[repo.matrix.cuda]] needs a version (\"12_8\")");
  CHECK(parse_error(head +
                    "[[repo.matrix.cuda]]\nversion = \"13_0\"\n[[repo.matrix.cuda]]\nversion = \"13_0\"\n") ==
        "test.toml:6: repo.matrix.cuda.version: '13_0' is given twice");
  CHECK(parse_error(head + "[[repo.matrix.cuda]]\nversion = \"13_0\"\narch = [\"sm90\"]\n") ==
        "test.toml:6: unknown key 'repo.matrix.cuda.arch'");
  CHECK(parse_error(head + "cuda = 13\n").find("repo.matrix.cuda: write one version as cuda = \"13_0\"") !=
        std::string::npos);
  CHECK(parse_error(head + "arch_isas = { sm99 = [\"avx\"] }\n")
            .find("repo.matrix.arch_isas: 'sm99' is an architecture of no CUDA version") !=
        std::string::npos);
  CHECK(parse_error(head + "templates = { gpu = \"t.nix\" }\n")
            .find("unknown kind 'gpu' (gpu_x86, gpu_arm, cpu, darwin)") != std::string::npos);
  CHECK(parse_error("[[repo]]\npath = \"/a\"\ndoctor_disable = [\"pnames\"]\n")
            .find("no doctor rule is named 'pnames'") != std::string::npos);
}

TEST_CASE("the effective config renders to TOML that parses back to the same config") {
  Config c = parse_ok("[daemon]\nmax_parallel = 3\nbuild_timeout = \"1h30m\"\n[backend]\nargs = [\"-L\"]\n");
  std::string text = render_config(c);
  CHECK(text.find("max_parallel = 3") != std::string::npos);
  CHECK(text.find("build_timeout = '1h30m'") != std::string::npos);
  Config back = parse_ok(text);
  CHECK(back.daemon.max_parallel == 3);
  CHECK(back.daemon.build_timeout == c.daemon.build_timeout);
  CHECK(back.backend.args == c.backend.args);
  CHECK(back.repos.size() == 1);
  CHECK(back.repos[0].path == c.repos[0].path);
}

TEST_CASE("text that is not TOML's is refused before the TOML reader sees it") {
  // Found by fuzz_config: U+FEFD where a key belongs (tests/fuzz/regressions/config/).
  std::string text = ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) +
                                                 "/tests/fuzz/regressions/config/u-fefd-in-key.toml");
  ConfigResult r = parse_config(text, "test.toml", "/etc/ptbuild", user_env());
  REQUIRE(std::holds_alternative<ConfigError>(r));
  CHECK(std::get<ConfigError>(r).message ==
        "test.toml:1: a non-ASCII character outside a string or comment (TOML keys are ASCII)");
  CHECK(parse_error("[daemon]\nadmin_group = \"\xff\"\n") == "test.toml:2: the file is not valid UTF-8");
  CHECK(std::holds_alternative<Config>(
      parse_config("# café ✓ 日本\n[daemon]\nadmin_group = \"bâtisseurs\" # ✓\n", "t", "/", user_env())));
  CHECK(parse_ok("[verify]\ncommand = \"\"\"\n✓ {out}\"\"\"\n").verify.command == "✓ {out}");
}

TEST_CASE("non-ASCII text keeps its value in basic strings and is refused where TOML cannot take it") {
  // Found by fuzz_config: Cyrillic in what looks like a string after a number.
  std::string text = ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) +
                                                 "/tests/fuzz/regressions/config/cyrillic-after-number.toml");
  CHECK(std::holds_alternative<ConfigError>(parse_config(text, "t", "/", user_env())));
  Config c = parse_ok("[daemon]\nadmin_group = \"bâtisseurs 🛠\"  # outils ✓\n");
  CHECK(c.daemon.admin_group == "bâtisseurs 🛠");
  CHECK(parse_error("[daemon]\nadmin_group = 'bâtisseurs'\n")
            .starts_with("test.toml:2: a non-ASCII character in a 'literal' string"));
}

TEST_CASE("builders: [[builder]] tables, a machines file, or one local builder with max_parallel slots") {
  Config plain = parse_ok("[daemon]\nmax_parallel = 3\n");
  REQUIRE(plain.fleet().size() == 1);
  CHECK(plain.fleet()[0].name == "local");
  CHECK(plain.fleet()[0].max_jobs == 3);
  CHECK(plain.fleet()[0].is_local());

  Config c = parse_ok(
      "[[builder]]\n"
      "uri = \"ssh-ng://builder@gpu1\"\n"
      "ssh_key = \"keys/id\"\n"
      "max_jobs = 2\n"
      "speed_factor = 1.5\n"
      "supported_features = [\"big-parallel\", \"cuda\", \"gpu-sm90\"]\n"
      "[[builder]]\n"
      "name = \"here\"\n"
      "uri = \"local\"\n"
      "max_jobs = 1\n");
  REQUIRE(c.fleet().size() == 2);
  CHECK(c.fleet()[0].name == "gpu1");
  CHECK(c.fleet()[0].ssh_key == "/etc/ptbuild/keys/id");
  CHECK(c.fleet()[0].speed_factor == 1.5);
  CHECK(c.fleet()[0].supported_features.size() == 3);
  CHECK(c.fleet()[0].line == 1);
  CHECK(c.fleet()[1].name == "here");
  CHECK_FALSE(c.fleet()[1].features_declared);

  // --check-config prints the whole fleet, and what it prints parses back to the same fleet.
  std::string text = render_config(c);
  CHECK(text.find("[[builder]]") != std::string::npos);
  Config back = parse_ok(text);
  REQUIRE(back.fleet().size() == 2);
  CHECK(back.fleet()[0].machines_line() == c.fleet()[0].machines_line());
  CHECK_FALSE(back.fleet()[1].features_declared);
  CHECK(render_config(plain).find("name = 'local'") != std::string::npos);

  Config with_file = parse_ok("[daemon]\nbuilders_file = \"machines\"\n[[builder]]\nuri = \"local\"\n");
  CHECK(with_file.daemon.builders_file == "/etc/ptbuild/machines");
  CHECK_FALSE(add_builders_file(with_file, "ssh://arm1 aarch64-linux - 4 1 big-parallel\n"));
  REQUIRE(with_file.fleet().size() == 2);
  CHECK(with_file.fleet()[1].name == "arm1");
  auto bad = add_builders_file(with_file, "ssh://arm2 aarch64-linux - many\n");
  REQUIRE(bad);
  CHECK(
      bad->message ==
      "daemon.builders_file: /etc/ptbuild/machines:1: max jobs (field 4): expected a number of slots, got 'many'");
  auto twice = add_builders_file(with_file, "ssh://arm1 aarch64-linux\n");
  REQUIRE(twice);
  CHECK(twice->message.find("two builders are named 'arm1'") != std::string::npos);
}

TEST_CASE("builders: a bad [[builder]] names the key and the line") {
  CHECK(parse_error("[[builder]]\nuri = \"http://x\"\n") ==
        "test.toml:1: builder.uri: expected ssh://…, ssh-ng://… or \"local\", got \"http://x\"");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://x\"\nmax_jobs = \"2\"\n") ==
        "test.toml:3: builder.max_jobs: expected an integer, got a string");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://x\"\nspeed_factor = 0\n") ==
        "test.toml:3: builder.speed_factor: must be a finite number greater than 0");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://x\"\nspeed_factor = inf\n") ==
        "test.toml:3: builder.speed_factor: must be a finite number greater than 0");
  CHECK(parse_error("[[builder]]\nuri = \"ssh-ng://\"\n") ==
        "test.toml:1: builder.uri: \"ssh-ng://\" names no host");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://x\"\nslots = 2\n") ==
        "test.toml:3: unknown key 'builder.slots'");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://x\"\nsystems = []\n") ==
        "test.toml:1: builder.systems: a builder needs at least one system");
  CHECK(parse_error("[[builder]]\nuri = \"ssh://a@x\"\n[[builder]]\nuri = \"ssh://b@x\"\n")
            .find("two builders are named 'x'") != std::string::npos);
  CHECK(parse_error("builder = 1\n") == "test.toml:1: builder: write each builder as a [[builder]] table");
}
