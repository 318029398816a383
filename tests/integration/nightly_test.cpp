// Nightly rebuilds of only what changed, with the real daemon and real Nix (docs/nightly.md).
#include <doctest/doctest.h>

#include <set>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

// A recipe that reads a shared file of the repo: changing that file changes its derivation.
std::string recipe_using(const std::string& name, const std::string& lib, const std::string& nonce,
                         const std::string& flavour = "1") {
  return "{ pkgs ? null }:\n# " + name + "\nlet part = import ./lib/" + lib +
         ".nix; in\nderivation {\n  name = \"" + name +
         "\";\n  system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n  nonce = \"" +
         nonce + "\";\n  inherit part;\n  flavour = \"" + flavour +
         "\";\n  args = [ \"-c\" \"mkdir $out\" ];\n}\n";
}

std::set<std::string> queued_variants(const json& nightly) {
  std::set<std::string> out;
  for (const json& j : nightly["jobs"]) out.insert(j["variant"]);
  return out;
}

void build_all(Daemon& d) {
  REQUIRE(d.client({"wait", "all", "--timeout", "120s"}).exit_code == 0);
}

const std::string kV1 = "pytorch-python313-cpu-avx2", kV2 = "pytorch-python313-cpu-avx512",
                  kV3 = "pytorch-python313-cuda13_0-sm90-avx512";

void three_recipes(Daemon& d) {
  d.dir().write("repo/.flox/pkgs/lib/a.nix", "\"shared-a-1\"\n");
  d.dir().write("repo/.flox/pkgs/lib/b.nix", "\"shared-b-1\"\n");
  d.add_recipe(kV1, recipe_using(kV1, "a", d.nonce()));
  d.add_recipe(kV2, recipe_using(kV2, "a", d.nonce()));
  d.add_recipe(kV3, recipe_using(kV3, "b", d.nonce()));
}

}  // namespace

TEST_CASE("nightly: after a green run nothing - then exactly what a change touched") {
  Daemon d("max_parallel = 3\n");
  three_recipes(d);
  d.start();
  d.client_json({"queue", "all"});
  build_all(d);

  json quiet = d.client_json({"nightly"});
  CHECK(quiet["jobs"].empty());
  REQUIRE(quiet["skipped"].size() == 3);
  for (const json& s : quiet["skipped"])
    CHECK(s["reason"].get<std::string>().find("unchanged since build #") != std::string::npos);
  ProcessResult human = d.client({"nightly"});
  CHECK(human.out.find("3 unchanged variant(s) skipped: nothing to rebuild") != std::string::npos);

  // A comment is no change to the derivation.
  d.add_recipe(kV1, "# reviewed\n" + recipe_using(kV1, "a", d.nonce()));
  CHECK(d.client_json({"nightly"})["jobs"].empty());

  // One recipe changes: exactly that variant. (Paused, so that the job is still queued when
  // nightly is asked again.)
  d.add_recipe(kV3, recipe_using(kV3, "b", d.nonce(), "2"));
  d.client_json({"pause"});
  json one = d.client_json({"nightly"});
  CHECK(queued_variants(one) == std::set<std::string>{kV3});
  CHECK(one["jobs"][0]["reason"].get<std::string>().starts_with("nightly: derivation changed since build #"));
  CHECK(one["jobs"][0]["new"] == true);
  CHECK(one["skipped"].size() == 2);
  // Asked again before it ran: the same job, not a second one.
  CHECK(d.client_json({"nightly"})["jobs"][0]["new"] == false);
  d.client_json({"resume"});
  build_all(d);

  // A shared imported file changes: exactly its users.
  d.dir().write("repo/.flox/pkgs/lib/a.nix", "\"shared-a-2\"\n");
  json users = d.client_json({"nightly"});
  CHECK(queued_variants(users) == std::set<std::string>{kV1, kV2});
  build_all(d);
  CHECK(d.client_json({"nightly"})["jobs"].empty());
}

TEST_CASE(
    "nightly: a known failure is not rebuilt until its inputs change - a transient one is - an unevaluable recipe is reported") {
  Daemon d("max_parallel = 3\nretries = 0\n");
  three_recipes(d);
  const std::string broken = "pytorch-python313-cpu-avx512bf16", flaky = "pytorch-python313-cpu-avx512vnni";
  d.add_sh_recipe(broken, "echo 'CMake Error: the recipe is wrong'\nexit 1");
  d.add_sh_recipe(
      flaky,
      "echo \"error: unable to download 'https://example.org/src.tar.gz': Couldn't resolve host name\"\nexit 1");
  d.start();
  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "120s"});
  REQUIRE(d.job(flaky)["failure"]["class"] == "network");

  d.add_recipe(kV2, "{ pkgs ? null }: derivation {");  // a syntax error
  ProcessResult run = d.client({"nightly", "--json"});
  CHECK(run.exit_code == 1);  // a night that could not evaluate everything says so
  json n = json::parse(run.out);
  // The recipe's own failure with the same inputs would fail again: reported, not started.
  CHECK(queued_variants(n) == std::set<std::string>{flaky, kV2});
  bool known = false;
  for (const json& s : n["skipped"])
    if (s["variant"] == broken) {
      known = true;
      CHECK(s["reason"].get<std::string>().starts_with("known failure, inputs unchanged: its last build #"));
      CHECK(s["reason"].get<std::string>().find("(builder_failed)") != std::string::npos);
    }
  CHECK(known);
  for (const json& j : n["jobs"]) {
    if (j["variant"] == kV2)
      CHECK(j["reason"].get<std::string>().find("recipe files changed") != std::string::npos);
    else
      CHECK(j["reason"].get<std::string>().find("failed (network)") != std::string::npos);
  }
  REQUIRE(n["errors"].size() == 1);
  CHECK(n["errors"][0]["what"] == kV2);
  CHECK(n["errors"][0]["reason"].get<std::string>().find("could not evaluate the recipe: eval_error: ") !=
        std::string::npos);

  // Its recipe changes: now it is built again.
  d.client({"wait", "all", "--timeout", "120s"});
  d.add_sh_recipe(broken, "echo 'fixed'\nmkdir $out");
  json after = d.client_json({"nightly", broken});
  REQUIRE(after["jobs"].size() == 1);
  CHECK(after["jobs"][0]["reason"].get<std::string>().find("and its recipe files changed since") !=
        std::string::npos);
}

TEST_CASE("nightly: with pull it fast-forwards the repo first - a failing pull skips that repo") {
  // The build repo is a clone of a bare remote; a second repo has no upstream, so its pull fails.
  Daemon d("max_parallel = 3\n",
           "\n[[repo]]\nname = \"vision\"\npath = \"vision\"\n\n[nightly]\npull = true\n");
  std::string remote = d.dir() / "remote.git", work = d.dir() / "work";
  auto git = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/git", "-c", "user.name=t", "-c", "user.email=t@localhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run_process(argv);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  };
  git({"init", "-q", "--bare", remote});
  git({"clone", "-q", remote, work});
  d.dir().write("work/.flox/pkgs/lib/a.nix", "\"shared-a-1\"\n");
  d.dir().write("work/.flox/pkgs/" + kV1 + ".nix", recipe_using(kV1, "a", d.nonce()));
  git({"-C", work, "add", "-A"});
  git({"-C", work, "commit", "-q", "-m", "recipes"});
  git({"-C", work, "push", "-q", "origin", "HEAD"});
  std::filesystem::remove_all(d.repo());
  git({"clone", "-q", remote, d.repo()});
  d.dir().write("vision/.flox/pkgs/torchvision-python313-cpu-avx2.nix",
                sh_recipe("torchvision-python313-cpu-avx2", "mkdir $out", d.nonce()));
  git({"-C", d.dir() / "vision", "init", "-q"});
  d.start();
  d.client_json({"queue", "all"});
  build_all(d);

  // Upstream moves on: the recipe changes in the remote, not here.
  d.dir().write("work/.flox/pkgs/" + kV1 + ".nix", recipe_using(kV1, "a", d.nonce(), "2"));
  git({"-C", work, "commit", "-q", "-am", "bump"});
  git({"-C", work, "push", "-q", "origin", "HEAD"});

  ProcessResult run = d.client({"nightly", "--json"});
  CHECK(run.exit_code == 1);  // the failed pull is an error of the night
  json n = json::parse(run.out);
  CHECK(queued_variants(n) == std::set<std::string>{kV1});
  CHECK(read_file(d.repo() + "/.flox/pkgs/" + kV1 + ".nix").find("flavour = \"2\"") != std::string::npos);
  REQUIRE(n["errors"].size() == 1);
  CHECK(n["errors"][0]["what"] == "vision");
  CHECK(n["errors"][0]["reason"].get<std::string>().find("git pull --ff-only failed") != std::string::npos);
  bool vision_skipped = false;
  for (const json& s : n["skipped"])
    if (s["variant"] == "torchvision-python313-cpu-avx2")
      vision_skipped =
          s["reason"].get<std::string>().find("git pull failed in repo 'vision'") != std::string::npos;
  CHECK(vision_skipped);
}

TEST_CASE(
    "nightly: with the network down it stops fetching after a few tries, shows progress and the real error, and exits 1") {
  Daemon d("max_parallel = 4\n");
  d.env["NIX_CONFIG"] = "download-attempts = 1";
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) {
    names.push_back("pytorch-python313-cuda13_0-sm" + std::to_string(80 + i) + "-avx512");
    d.add_sh_recipe(names.back(), "mkdir $out");
  }
  d.start();
  d.client_json({"queue", "all"});
  build_all(d);
  // Every recipe now pins nixpkgs by a tarball URL without a hash, and the network is gone.
  for (const std::string& n : names)
    d.add_recipe(n, "{ pkgs ? null }:\nlet nixpkgs = builtins.fetchTarball \"http://127.0.0.1:1/nixpkgs-" +
                        n + ".tar.gz\"; in import nixpkgs { }\n");
  ProcessResult run = d.client({"nightly"});
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("nightly: evaluated 10 of 10 recipe(s)") != std::string::npos);
  CHECK(run.err.find("10 variant(s) could not be evaluated") != std::string::npos);
  json n = json::parse(d.client({"nightly", "--json"}).out);
  int downloads = 0, cut = 0;
  for (const json& e : n["errors"]) {
    std::string reason = e["reason"];
    if (reason.find(
            "could not evaluate the recipe: network: error: unable to download 'http://127.0.0.1:1/nixpkgs-") !=
        std::string::npos) {
      ++downloads;
      CHECK(reason.find("pin its sha256") != std::string::npos);
    } else if (reason.find("not evaluated: 3 evaluations in a row in repo 'pytorch' could not download") !=
               std::string::npos) {
      ++cut;
    }
  }
  CHECK(downloads + cut == 10);
  // Four run at once: after the third failure in a row nothing more is fetched (at most the
  // two started when the first two failed come on top).
  CHECK(downloads <= 6);
  CHECK(cut >= 4);
}
