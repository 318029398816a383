// A Nix that cannot build on this machine (docs/failures.md nix_setup, docs/fleet.md health): real Nix runs
// provoke each cause, and a daemon whose Nix is broken keeps its queue instead of failing it.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include <doctest/doctest.h>

#include "core/diagnosis.h"
#include "tests/support/harness.h"

using namespace ptbuild;
using namespace ptbuild::testing;
using nlohmann::json;

namespace {

const std::string kGoodConfig = read_file(source_dir() + "/scripts/nix/nix.conf");

// The test's own Nix configuration folder: the good one with `extra` lines appended.
std::map<std::string, std::string> nix_env(TempDir& dir, const std::string& extra) {
  dir.write("nix/nix.conf", kGoodConfig + extra);
  return {{"NIX_CONF_DIR", dir / "nix"}, {"NIX_USER_CONF_FILES", dir / "nix/nix.conf"}, {"NIX_CONFIG", ""}};
}

// Builds a tiny recipe with real Nix under `env` and diagnoses what it printed.
std::optional<Failure> diagnose_real_build(TempDir& dir, std::map<std::string, std::string> env,
                                           const RunOptions& as = {}) {
  dir.write("recipe.nix", sh_recipe("nix-setup-probe", "echo built; mkdir -p $out", dir.path()));
  RunOptions o = as;
  o.env = std::move(env);
  o.env["HOME"] = dir.path();
  ProcessResult r = run_process({"/usr/bin/nix", "--extra-experimental-features", "nix-command", "build",
                                 "-f", dir / "recipe.nix", "--no-link"},
                                o);
  INFO("nix printed: " << r.err);
  CHECK(r.exit_code != 0);
  LogScanner scanner(parse_variant_name("pytorch-python313-cpu-avx2"));
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) scanner.feed(line);
  return scanner.diagnose(r.exit_code);
}

}  // namespace

TEST_CASE("nix_setup: every way a fresh machine's Nix cannot build, from real Nix runs") {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);

  SUBCASE("root with a build-users-group that does not exist (a fresh Debian's default is nixbld)") {
    auto f = diagnose_real_build(dir, nix_env(dir, "build-users-group = ptbuild-no-such-group\n"));
    REQUIRE(f);
    CHECK(f->failure_class == "nix_setup");
    CHECK(f->message.find("'ptbuild-no-such-group' specified in 'build-users-group' does not exist") !=
          std::string::npos);
    CHECK(f->hint.find("nixbld") != std::string::npos);
  }
  SUBCASE("the sandbox (on by default) hides /bin/sh, the recipe's builder") {
    auto f = diagnose_real_build(dir, nix_env(dir, "sandbox = true\n"));
    REQUIRE(f);
    CHECK(f->failure_class == "nix_setup");
    CHECK(f->message.find("executing '/bin/sh'") != std::string::npos);
    CHECK(f->hint.find("sandbox") != std::string::npos);
  }
  SUBCASE("no nix-daemon answers") {
    auto env = nix_env(dir, "");
    env["NIX_REMOTE"] = "unix://" + (dir / "no-daemon.sock");
    auto f = diagnose_real_build(dir, env);
    REQUIRE(f);
    CHECK(f->failure_class == "nix_setup");
    CHECK(f->message.find("cannot connect to socket") != std::string::npos);
    CHECK(f->hint.find("nix-daemon") != std::string::npos);
  }
  SUBCASE("a user who may not write the store builds without the daemon") {
    REQUIRE(::getuid() == 0);
    auto f = diagnose_real_build(dir, nix_env(dir, ""), {.as_uid = 65534, .as_gid = 65534});
    REQUIRE(f);
    CHECK(f->failure_class == "nix_setup");
    CHECK(f->hint.find("may not write the Nix store") != std::string::npos);
  }
}

TEST_CASE("nix_setup: a fresh machine's Nix (no nix.conf at all) cannot build the tests' recipes") {
  // Why the demo and the tests bring scripts/nix/nix.conf: Nix's own defaults for root are build
  // users of a group nixbld (a fresh Debian has none) and the sandbox (which hides /bin/sh).
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  dir.write("empty-nix-conf/.keep", "");
  auto f = diagnose_real_build(dir, {{"NIX_CONF_DIR", dir / "empty-nix-conf"},
                                     {"NIX_USER_CONF_FILES", dir / "empty-nix-conf/nix.conf"},
                                     {"NIX_CONFIG", "substituters ="}});
  REQUIRE(f);
  CHECK(f->failure_class == "nix_setup");
}

namespace {
int count(const json& jobs, const std::function<bool(const json&)>& pred) {
  return static_cast<int>(std::count_if(jobs.begin(), jobs.end(), pred));
}

// Ten queued jobs on a daemon whose Nix cannot build: none fails, each says why it waits, and
// once the operator has fixed Nix and said resume, all build.
void broken_nix_keeps_the_queue(int slots, const std::string& broken, const std::string& cause) {
  Daemon d("max_parallel = " + std::to_string(slots) + "\n");
  d.env = nix_env(d.dir(), broken);
  for (int i = 0; i < 10; ++i)
    d.add_sh_recipe("pytorch-python313-cuda13_0-sm" + std::to_string(80 + i) + "-avx512", "mkdir -p $out");
  d.start();
  REQUIRE(d.client_json({"queue", "all"})["jobs"].size() == 10);

  json status;
  REQUIRE(eventually([&] {
    status = d.client_json({"status", "--json"});
    return status["scheduler"]["builders"][0]["state"].get<std::string>().starts_with("down until");
  }));
  std::string builder_state = status["scheduler"]["builders"][0]["state"];
  CHECK(builder_state.find("nix_setup") != std::string::npos);
  CHECK(builder_state.find(cause) != std::string::npos);
  // Wait for the dispatch that follows the fault to have spoken for every job.
  REQUIRE(eventually([&] {
    status = d.client_json({"status", "--json"});
    return count(status["jobs"], [](const json& j) {
             return j["waiting"].is_string() &&
                    j["waiting"].get<std::string>().starts_with("builder local down until");
           }) == 10;
  }));
  json jobs = status["jobs"];
  CHECK(count(jobs, [](const json& j) { return j["state"] == "queued"; }) == 10);
  CHECK(count(jobs, [](const json& j) { return j["failure"].is_null(); }) == 10);
  // At most one attempt: none when the probe build at start sees the fault, one per free slot
  // when only a real build can.
  CHECK(count(jobs, [](const json& j) { return j["attempt"].get<int>() > 0; }) <= 1);
  for (const json& j : jobs)
    if (j["attempt"].get<int>() > 0)  // the attempt that met the broken Nix is in its log
      CHECK(log_text(j["log_path"].get<std::string>()).find(cause) != std::string::npos);

  ProcessResult show = d.client({"show", "sm85-avx512"});
  CHECK(show.out.find("waiting") != std::string::npos);
  CHECK(show.out.find("builder local down until") != std::string::npos);
  ProcessResult human = d.client({"status"});
  CHECK(human.out.find("builder local: down until") != std::string::npos);

  // The operator fixes Nix and says resume: everything builds.
  nix_env(d.dir(), "");  // rewrites the daemon's nix.conf
  CHECK(d.client({"resume"}).exit_code == 0);
  ProcessResult waited = d.client({"wait", "all", "--timeout", "3m", "--json"});
  CHECK(waited.exit_code == 0);
  json built = json::parse(waited.out)["jobs"];  // a named value: the loop must not outlive it
  CHECK(built.size() == 10);
  for (const json& j : built) CHECK(j["state"] == "succeeded");
  CHECK(d.client_json({"status", "--json"})["scheduler"]["builders"][0]["state"] == "up");
}

}  // namespace

TEST_CASE("nix_setup: a daemon whose Nix cannot build keeps its 10 jobs queued, then builds them all") {
  SUBCASE("no build users (the probe build at start sees it: two free slots, no attempt)") {
    broken_nix_keeps_the_queue(2, "build-users-group = ptbuild-no-such-group\n", "build-users-group");
  }
  SUBCASE("the sandbox hides the recipes' builder (the probe build, needing none, passes)") {
    broken_nix_keeps_the_queue(1, "sandbox = true\n", "executing '/bin/sh'");
  }
}

TEST_CASE("nix_setup: after its back-off a probe build brings the builder back by itself") {
  Daemon d("builder_backoff = \"1s\"\n");
  d.env = nix_env(d.dir(), "build-users-group = ptbuild-no-such-group\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.start();
  d.client_json({"queue", "all"});
  REQUIRE(eventually([&] {
    return d.client_json({"status", "--json"})["scheduler"]["builders"][0]["state"]
        .get<std::string>()
        .starts_with("down until");
  }));
  // While Nix stays broken, each probe fails and the rest grows (1 s, then 3 s): no build starts.
  REQUIRE(eventually([&] { return d.log().find("(fault 2 in a row)") != std::string::npos; }));
  CHECK(d.log().find("the probe build failed: nix_setup") != std::string::npos);
  CHECK(d.job("cpu-avx2")["state"] == "queued");
  CHECK(d.job("cpu-avx2")["attempt"].get<int>() <= 1);

  nix_env(d.dir(), "");  // fixed (the daemon's nix.conf rewritten), without telling the daemon
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--timeout", "2m", "--json"});
  CHECK(waited.exit_code == 0);
  CHECK(d.log().find("the probe build succeeded") != std::string::npos);
}
