// Verification of real Nix artifacts through their own "python", and publishing them: into a
// real file:// binary cache with the nix backend, and with the flox double against a real bare
// git remote (docs/verification.md, docs/publishing.md).
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/web_client.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

// An artifact whose bin/python3 answers the probe with `facts`, as a torch build would.
std::string artifact_with_python(const std::string& facts) {
  return "mkdir -p $out/bin\ncat > $out/bin/python3 <<'PY'\n#!/bin/sh\necho '" + facts +
         "'\nPY\nchmod +x $out/bin/python3";
}

std::string facts(const std::string& cuda, const std::string& arch_flags) {
  return "{\"torch_version\": \"2.10.0\", \"cuda_version\": " + cuda + ", \"arch_flags\": [" + arch_flags +
         "], \"cuda_available\": false}";
}

void git(const std::string& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv{
      "/usr/bin/git", "-C", dir, "-c", "user.name=test", "-c", "user.email=test@localhost"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run_process(argv);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

json wait_for(Daemon& d, const std::string& ref) {
  ProcessResult r = d.client({"wait", ref, "--json", "--timeout", "120s"});
  return json::parse(r.out)["jobs"][0];
}

}  // namespace

TEST_CASE("verify: each kind of wrong artifact fails with what was expected and found") {
  Daemon d("max_parallel = 3\n", "\n[verify]\nenabled = true\n");
  struct Case {
    const char* variant;
    std::string facts;
    const char* expect;  // part of the problem; "" = passes
  };
  const Case cases[] = {
      {"pytorch-python313-cuda13_0-sm90-avx512", facts("\"13.0\"", "\"sm_90\""), ""},
      {"pytorch-python313-cuda13_0-sm90-avx2", facts("null", ""),
       "expected CUDA 13.0, found a CPU-only torch"},
      {"pytorch-python313-cuda12_8-sm90-avx512", facts("\"13.0\"", "\"sm_90\""),
       "expected CUDA 12.8, found CUDA 13.0"},
      {"pytorch-python313-cuda13_0-sm120-avx512", facts("\"13.0\"", "\"sm_90\""),
       "expected architecture sm_120, found sm_90"},
      {"pytorch-python313-cuda13_0-sm86-avx2", facts("\"13.0\"", "\"sm_80\", \"sm_86\", \"sm_90\""),
       "expected only sm_86, found also sm_80, sm_90"},
      {"pytorch-python313-cpu-avx2", facts("\"13.0\"", "\"sm_90\""),
       "expected a CPU-only torch, found CUDA 13.0"},
      {"pytorch-python313-cpu-avx512", facts("null", ""), ""},
  };
  for (const Case& c : cases) d.add_sh_recipe(c.variant, artifact_with_python(c.facts));
  d.add_sh_recipe("pytorch-python313-cpu-avx512bf16", "mkdir -p $out/lib");  // no torch at all
  d.start();
  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "120s"});
  for (const Case& c : cases) {
    CAPTURE(c.variant);
    json job = d.job(c.variant);
    REQUIRE(job["verify"].is_object());
    if (std::string(c.expect).empty()) {
      CHECK(job["state"] == "succeeded");
      CHECK(job["verify"]["ok"] == true);
    } else {
      CHECK(job["state"] == "failed");
      CHECK(job["failure"]["class"] == "verify_failed");
      CHECK(job["failure"]["message"].get<std::string>().find(c.expect) != std::string::npos);
      CHECK(job["verify"]["ok"] == false);
      CHECK(job["verify"]["facts"]["torch_version"] == "2.10.0");  // the facts are kept with the job
    }
  }
  json no_torch = d.job("cpu-avx512bf16");
  CHECK(no_torch["failure"]["class"] == "verify_failed");
  CHECK(no_torch["failure"]["message"].get<std::string>().find("cannot import torch") != std::string::npos);
}

TEST_CASE("verify: a real recipe whose python reports CUDA off fails although the build succeeded") {
  Daemon d("", "\n[verify]\nenabled = true\n");
  // The build log looks fine; only the artifact tells.
  d.add_sh_recipe(
      "pytorch-python313-cuda13_0-sm90-avx512",
      "echo '[1/1] Linking CXX shared library libtorch_cuda.so'\n" + artifact_with_python(facts("null", "")));
  d.start();
  d.client_json({"queue", "sm90-avx512"});
  json job = wait_for(d, "sm90-avx512");
  CHECK(job["state"] == "failed");
  CHECK(job["exit_code"] == 0);
  CHECK(job["failure"]["class"] == "verify_failed");
  CHECK(job["failure"]["message"].get<std::string>().find("found a CPU-only torch") != std::string::npos);
  CHECK(job["out_path"].get<std::string>().starts_with("/nix/store/"));
  ProcessResult shown = d.client({"show", "sm90-avx512"});
  CHECK(shown.out.find("verify_failed") != std::string::npos);
  CHECK(shown.out.find("FAILED") != std::string::npos);
}

TEST_CASE("publish: nix copy into a real file:// binary cache - only verified unchanged builds") {
  Daemon d("", "\n[verify]\nenabled = true\n\n[publish]\nstore = \"file://CACHE\"\n");
  std::string cache = d.dir() / "cache";
  std::string config = read_file(d.config_path());
  config.replace(config.find("CACHE"), 5, cache);
  d.dir().write("ptbuild.toml", config);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", artifact_with_python(facts("null", "")));
  d.add_sh_recipe("pytorch-python313-cpu-avx512", artifact_with_python(facts("\"13.0\"", "\"sm_90\"")));
  d.start();

  ProcessResult early = d.client({"publish", "cpu-avx2"});
  CHECK(early.exit_code == 1);
  CHECK(early.err.find("has never been built") != std::string::npos);

  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "120s"});
  ProcessResult unverified = d.client({"publish", "cpu-avx512"});
  CHECK(unverified.exit_code == 1);
  CHECK(unverified.err.find("pytorch-python313-cpu-avx512: its latest build #") != std::string::npos);
  CHECK(unverified.err.find(" failed") != std::string::npos);  // it failed verification

  json queued = d.client_json({"publish", "cpu-avx2"});
  CHECK(queued["jobs"][0]["new"] == true);
  json published = json::parse(
      d.client({"wait", std::to_string(queued["jobs"][0]["id"].get<int64_t>()), "--json"}).out)["jobs"][0];
  CHECK(published["kind"] == "publish");
  CHECK(published["state"] == "succeeded");
  std::string out = d.job("cpu-avx2")["out_path"];  // the variant's latest job is now the publish
  CHECK(out == published["out_path"]);
  ProcessResult in_cache = run_process({"/usr/bin/nix", "--extra-experimental-features", "nix-command",
                                        "path-info", "--store", "file://" + cache, out},
                                       {.env = nix_test_env()});
  CHECK_MESSAGE(in_cache.exit_code == 0, in_cache.err);
  CHECK(in_cache.out.find(out) != std::string::npos);

  // Publish jobs are in the history with their outcome.
  json history = d.client_json({"jobs", "--state", "succeeded"});
  int publishes = 0;
  for (const json& j : history["jobs"]) publishes += j["kind"] == "publish";
  CHECK(publishes == 1);

  // The recipe changed since the build: refused, unless forced.
  d.add_sh_recipe("pytorch-python313-cpu-avx2", artifact_with_python(facts("null", "")) + "\ntrue");
  ProcessResult changed = d.client({"publish", "cpu-avx2"});
  CHECK(changed.exit_code == 1);
  CHECK(changed.err.find("the recipe changed since build") != std::string::npos);
  CHECK(d.client({"publish", "cpu-avx2", "--force"}).exit_code == 0);
}

TEST_CASE("publish: the flox double refuses a dirty tree - no upstream - unpushed HEAD, then publishes") {
  Daemon d("", "\n[publish]\norg = \"myorg\"\n");
  std::string flox = source_dir() + "/tests/flox-double/flox";
  std::string config = read_file(d.config_path());
  config.replace(config.find("kind = \"nix\""), 12, "kind = \"flox\"\nprogram = \"" + flox + "\"");
  d.dir().write("ptbuild.toml", config);
  d.dir().write("repo/.flox/env/manifest.toml", "version = 1\n");
  d.dir().write("repo/README.md", "build-pytorch\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir $out");
  std::string remote = d.dir() / "remote.git";
  REQUIRE(run_process({"/usr/bin/git", "init", "-q", "--bare", remote}).exit_code == 0);
  git(d.repo(), {"init", "-q", "-b", "main"});
  git(d.repo(), {"add", "-A"});
  git(d.repo(), {"commit", "-q", "-m", "recipes"});
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(wait_for(d, "cpu-avx2")["state"] == "succeeded");

  auto publish_outcome = [&] {
    json q = d.client_json({"publish", "cpu-avx2"});
    return json::parse(
        d.client({"wait", std::to_string(q["jobs"][0]["id"].get<int64_t>()), "--json"}).out)["jobs"][0];
  };
  d.dir().write("repo/README.md", "edited\n");
  json dirty = publish_outcome();
  CHECK(dirty["state"] == "failed");
  CHECK(dirty["failure"]["class"] == "publish_failed");
  CHECK(dirty["failure"]["message"].get<std::string>().find("changes to tracked files") != std::string::npos);
  CHECK(dirty["failure"]["message"].get<std::string>().find("README.md") != std::string::npos);
  git(d.repo(), {"checkout", "--", "README.md"});

  json no_upstream = publish_outcome();
  CHECK(no_upstream["failure"]["message"].get<std::string>().find("branch 'main' has no upstream remote") !=
        std::string::npos);
  git(d.repo(), {"remote", "add", "origin", remote});
  git(d.repo(), {"push", "-q", "-u", "origin", "main"});
  d.dir().write("repo/NOTES.md", "more\n");
  git(d.repo(), {"add", "NOTES.md"});
  git(d.repo(), {"commit", "-q", "-m", "notes"});
  json unpushed = publish_outcome();
  CHECK(unpushed["failure"]["message"].get<std::string>().find("is not on the remote") != std::string::npos);

  git(d.repo(), {"push", "-q"});
  json ok = publish_outcome();
  CHECK(ok["state"] == "succeeded");
  CHECK(log_text(ok["log_path"]).find("✔ Package published successfully.") != std::string::npos);
  CHECK(log_text(ok["log_path"])
            .find("flox-double/flox publish -d " + d.repo() + " -o myorg pytorch-python313-cpu-avx2") !=
        std::string::npos);
  json again = publish_outcome();
  CHECK(again["state"] == "succeeded");
  CHECK(log_text(again["log_path"]).find("Package already published.") != std::string::npos);
}

TEST_CASE("publish: the flox double refuses as flox 1.14 does - no remote at all, a revision on no remote") {
  TempDir dir;
  std::string flox = source_dir() + "/tests/flox-double/flox";
  std::string repo = dir / "repo";
  dir.write("repo/.flox/pkgs/hello.nix", "{ }: derivation { name = \"hello\"; }\n");
  git(repo, {"init", "-q", "-b", "main"});
  git(repo, {"add", "-A"});
  git(repo, {"commit", "-q", "-m", "recipes"});
  auto publish = [&] { return run_process({flox, "publish", "-d", repo, "hello"}); };
  ProcessResult no_remote = publish();
  CHECK(no_remote.exit_code == 1);
  CHECK(no_remote.err.find("✘ ERROR: The repository must have at least one remote configured.") !=
        std::string::npos);
  std::string remote = dir / "remote.git";
  REQUIRE(run_process({"/usr/bin/git", "init", "-q", "--bare", remote}).exit_code == 0);
  git(repo, {"remote", "add", "origin", remote});
  ProcessResult unpushed = publish();
  CHECK(unpushed.exit_code == 1);
  CHECK(unpushed.err.find("✘ ERROR: Current revision not found on any remote repositories.") !=
        std::string::npos);
}

namespace {
std::string nix_out(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/nix", "--extra-experimental-features", "nix-command"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run_process(argv, {.env = nix_test_env()});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return std::string(r.out.substr(0, r.out.find_last_not_of('\n') + 1));
}
int nix_status(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/nix", "--extra-experimental-features", "nix-command"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, {.env = nix_test_env()}).exit_code;
}
}  // namespace

TEST_CASE(
    "provenance: a verified build is published signed into a file:// cache, verified offline, refused once changed") {
  Daemon d("",
           "\n[verify]\nenabled = true\n\n[publish]\nstore = \"file://CACHE\"\nsigning_key = \"KEY\"\n"
           "\n[web]\nlisten = \"127.0.0.1:0\"\n");
  std::string keys = d.dir() / "keys", cache = d.dir() / "cache";
  std::filesystem::create_directories(keys);
  ProcessResult made =
      run_process({build_dir() + "/ptbuild", "keys", "generate", "cache.test-1", "--dir", keys});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  std::string pub = read_file(keys + "/cache.test-1.pub");
  CHECK(made.out == pub);
  CHECK(pub.starts_with("cache.test-1:"));
  CHECK((std::filesystem::status(keys + "/cache.test-1.sec").permissions() &
         std::filesystem::perms::group_read) == std::filesystem::perms::none);
  REQUIRE(run_process({build_dir() + "/ptbuild", "keys", "generate", "other-1", "--dir", keys}).exit_code ==
          0);
  std::string config = read_file(d.config_path());
  config.replace(config.find("CACHE"), 5, cache);
  config.replace(config.find("KEY"), 3, keys + "/cache.test-1.sec");
  d.dir().write("ptbuild.toml", config);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", artifact_with_python(facts("null", "")));
  d.commit_recipes();
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  json built = wait_for(d, "cpu-avx2");
  REQUIRE(built["state"] == "succeeded");
  std::string out = built["out_path"];

  // The statement: the output by its NAR hash, the commit, the recipe and its axes, what
  // verification found; signed by the key.
  bool written = eventually([&] { return d.client({"provenance", "cpu-avx2"}).exit_code == 0; });
  std::string why = d.client({"provenance", "cpu-avx2"}).err + d.log();
  REQUIRE_MESSAGE(written, why);
  json p = d.client_json({"provenance", "cpu-avx2", "--json"});
  const json& s = p["statement"];
  CHECK(s["subject"][0]["name"] == out);
  CHECK(s["subject"][0]["digest"]["sha256"] ==
        nix_out({"hash", "path", "--type", "sha256", "--base16", out}));
  const json& params = s["predicate"]["buildDefinition"]["externalParameters"];
  CHECK(params["commit"] == built["commit"]);
  CHECK(params["recipe"] == ".flox/pkgs/pytorch-python313-cpu-avx2.nix");
  CHECK(params["axes"]["isa"] == "avx2");
  CHECK(s["predicate"]["runDetails"]["byproducts"][0]["annotations"]["ok"] == true);
  CHECK(p["envelope"]["signatures"][0]["keyid"] == "cache.test-1");
  ProcessResult ok =
      d.client({"provenance", "cpu-avx2", "--verify", "--public-key", keys + "/cache.test-1.pub"});
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  ProcessResult other =
      d.client({"provenance", "cpu-avx2", "--verify", "--public-key", keys + "/other-1.pub"});
  CHECK(other.exit_code == 1);
  CHECK(other.err.find("does not match") != std::string::npos);

  // The job's page shows who signed it, in a real Chromium.
  if (Browser::available()) {
    uint16_t port = 0;
    REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
    // The op answers off the loop; the page's API waits for it.
    HttpResponse api = http_get(port, "/api/provenance?job=" + built["id"].dump());
    CHECK(api.status == 200);
    CHECK(json::parse(api.body)["statement"]["subject"][0]["name"] == out);
    Browser browser;
    browser.go("http://127.0.0.1:" + std::to_string(port) + "/#/job/" + built["id"].dump());
    bool shown = eventually(
        [&] { return browser.eval("!!document.querySelector('#job-provenance .signed')") == true; });
    std::string page = browser.eval("document.body.innerText").dump();
    REQUIRE_MESSAGE(shown, page);
    CHECK(browser.eval("document.querySelector('#job-provenance .signed').textContent") == "cache.test-1");
    browser.screenshot(source_dir() + "/docs/screenshots/job-provenance.png");
  }

  // Published: signed in the cache, with its provenance beside it.
  json queued = d.client_json({"publish", "cpu-avx2"});
  REQUIRE(wait_for(d, std::to_string(queued["jobs"][0]["id"].get<int64_t>()))["state"] == "succeeded");
  std::string store = "file://" + cache;
  CHECK(nix_status({"store", "verify", "--store", store, "-r", out, "--trusted-public-keys",
                    pub.substr(0, pub.size() - 1), "--sigs-needed", "1"}) == 0);
  std::string other_pub = read_file(keys + "/other-1.pub");
  CHECK(nix_status({"store", "verify", "--store", store, "-r", out, "--trusted-public-keys",
                    other_pub.substr(0, other_pub.size() - 1), "--sigs-needed", "1"}) != 0);
  std::string name = std::filesystem::path(out).filename().string();
  CHECK(read_file(cache + "/provenance/" + name + ".intoto.json") ==
        read_file(d.state() + "/provenance/" + name + ".intoto.json"));
  // A second, empty store takes it from the cache with signatures required.
  std::string second = d.dir() / "second";
  CHECK(nix_status({"copy", "--from", store, "--to", second, "--option", "require-sigs", "true", "--option",
                    "trusted-public-keys", other_pub.substr(0, other_pub.size() - 1), out}) != 0);
  CHECK(nix_status({"copy", "--from", store, "--to", second, "--option", "require-sigs", "true", "--option",
                    "trusted-public-keys", pub.substr(0, pub.size() - 1), out}) == 0);
  CHECK(std::filesystem::exists(second + out + "/bin/python3"));

  // One byte of the statement changed: refused.
  std::string file = d.state() + "/provenance/" + name + ".intoto.json";
  std::string original = read_file(file);
  json envelope = json::parse(original);
  std::string payload = envelope["payload"];
  payload[10] = payload[10] == 'A' ? 'B' : 'A';
  envelope["payload"] = payload;
  d.dir().write("state/provenance/" + name + ".intoto.json", envelope.dump());
  ProcessResult changed =
      d.client({"provenance", "cpu-avx2", "--verify", "--public-key", keys + "/cache.test-1.pub"});
  CHECK(changed.exit_code == 1);
  CHECK_MESSAGE(changed.err.find("refused") != std::string::npos, changed.err);
  d.dir().write("state/provenance/" + name + ".intoto.json", original);
  // One byte of the artifact changed: refused, with what differs.
  std::filesystem::permissions(out + "/bin/python3", std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::ofstream(out + "/bin/python3", std::ios::app) << "#";
  ProcessResult tampered =
      d.client({"provenance", "cpu-avx2", "--verify", "--public-key", keys + "/cache.test-1.pub"});
  CHECK(tampered.exit_code == 1);
  CHECK_MESSAGE(tampered.err.find("the artifact differs from the statement") != std::string::npos,
                tampered.err);
}

TEST_CASE("provenance: a missing or broken signing key stops the daemon at start and at --check-config") {
  for (const auto& [key, error] : std::vector<std::pair<std::string, std::string>>{
           {"/nonexistent/cache.sec", "publish.signing_key: cannot read /nonexistent/cache.sec"},
           {"BROKEN", "not a Nix key (NAME:BASE64)"}}) {
    Daemon d("", "\n[publish]\nsigning_key = \"" + key + "\"\n");
    if (key == "BROKEN") {
      d.dir().write("BROKEN", "garbage");
      std::string config = read_file(d.config_path());
      config.replace(config.find("\"BROKEN\""), 8, "\"" + std::string(d.dir() / "BROKEN") + "\"");
      d.dir().write("ptbuild.toml", config);
    }
    ProcessResult check =
        run_process({build_dir() + "/ptbuildd", "--config", d.config_path(), "--check-config"});
    CHECK(check.exit_code != 0);
    CHECK_MESSAGE(check.err.find(error) != std::string::npos, check.err);
    ProcessResult start = run_process({build_dir() + "/ptbuildd", "--config", d.config_path()});
    CHECK(start.exit_code != 0);
    CHECK(start.err.find(error) != std::string::npos);
  }
}
