// What changed since the last good build, and notifications (docs/changes.md,
// docs/notifications.md), with the real daemon, real Nix builds, a real git history and a real
// webhook receiver on loopback.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/web_client.h"
#include "tests/support/webhook_server.h"

using namespace ptbuild::testing;
using json = nlohmann::json;

namespace {

const std::string kVariant = "pytorch-python313-cpu-avx2";

// The recipe reads lib/overlay.nix (a file of the repo it imports): the version of its `magma`
// input and its cmake flags. It builds only against magma 1.0.
std::string recipe(const std::string& nonce) {
  return "{ pkgs ? null }:\nlet\n  o = import ../../lib/overlay.nix;\n"
         "  magma = derivation {\n    name = \"magma-${o.version}\";\n    system = builtins.currentSystem;\n"
         "    builder = \"/bin/sh\";\n    args = [ \"-c\" \"echo ${o.version} > $out\" ];\n  };\nin derivation {\n"
         "  name = \"" +
         kVariant +
         "\";\n  system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n"
         "  nonce = \"" +
         nonce +
         "\";\n  inherit magma;\n  cmakeFlags = o.flags;\n"
         "  args = [ \"-c\" \"read v < $magma; if [ $v != 1.0 ]; then echo \\\"error: magma $v: no member named "
         "clockRate\\\" >&2; exit 1; fi; mkdir $out\" ];\n}\n";
}

std::string overlay(const std::string& version, const std::string& flags) {
  return "{ version = \"" + version + "\"; flags = \"" + flags + "\"; }\n";
}

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string git(Daemon& d, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/git",          "-C", d.repo(), "-c", "user.name=maintainer", "-c",
                                "user.email=m@localhost"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run_process(argv);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return std::string(r.out.substr(0, r.out.find_last_not_of('\n') + 1));
}

std::string commit(Daemon& d, const std::string& subject) {
  git(d, {"add", "-A"});
  git(d, {"commit", "-q", "-m", subject});
  return git(d, {"rev-parse", "HEAD"});
}

json build(Daemon& d) {
  d.client_json({"queue", kVariant});
  d.client({"wait", kVariant, "--timeout", "2m"});
  return d.job(kVariant);
}

// A: the variant builds. B: another recipe changes. C: the file it imports moves magma to 1.1 and
// adds a flag. D: the README changes (or, `d_moves_flags`, the flags again). The build at D fails.
struct History {
  std::string a, b, c, d;
  json good, bad;
};

History broken_at_c(Daemon& d, bool d_moves_flags = false) {
  History h;
  write(d.repo() + "/.flox/pkgs/" + kVariant + ".nix", recipe(d.nonce()));
  write(d.repo() + "/lib/overlay.nix", overlay("1.0", "-DUSE_X=ON"));
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  git(d, {"init", "-q"});
  h.a = commit(d, "A: the recipes");
  d.start();
  h.good = build(d);
  REQUIRE(h.good["state"] == "succeeded");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "echo other; mkdir $out");
  h.b = commit(d, "B: another recipe");
  write(d.repo() + "/lib/overlay.nix", overlay("1.1", "-DUSE_X=ON -DUSE_Y=ON"));
  h.c = commit(d, "C: magma 1.1");
  if (d_moves_flags)
    write(d.repo() + "/lib/overlay.nix", overlay("1.1", "-DUSE_X=ON -DUSE_Y=ON -DUSE_Z=ON"));
  else
    write(d.repo() + "/README.md", "notes\n");
  h.d = commit(d, "D: notes");
  h.bad = build(d);
  REQUIRE(h.bad["state"] == "failed");
  return h;
}

}  // namespace

TEST_CASE(
    "changes: a build that broke names the input that moved, the flag, and the one commit that did it") {
  Daemon d;
  History h = broken_at_c(d);
  CHECK(h.good["commit"] == h.a);
  CHECK(h.bad["commit"] == h.d);

  // The failure was recorded with its changes: `show` has them.
  const json& stored = h.bad["changes"];
  REQUIRE_MESSAGE(stored.is_object(), h.bad.dump());
  CHECK(stored["since"] == h.good["id"]);
  REQUIRE(!stored["summary"].empty());
  CHECK(stored["summary"][0] == "inputs: magma 1.0 → 1.1");  // the version that moved comes first
  std::string shown = d.client({"show", kVariant}).out;
  CHECK_MESSAGE(shown.find("changed since #" + h.good["id"].dump()) != std::string::npos, shown);
  CHECK(shown.find("commit " + h.c.substr(0, 7) + " \"C: magma 1.1\" changed lib/overlay.nix") !=
        std::string::npos);

  // `changes` in full: the derivations, the commits (C only: B touched another recipe, D nothing
  // it reads) and nothing ptbuild did.
  json c = d.client_json({"changes", kVariant, "--json"});
  CHECK(c["job"] == h.bad["id"]);
  CHECK(c["since_commit"] == h.a);
  CHECK(c["commit"] == h.d);
  REQUIRE(c["derivation"].is_object());
  CHECK(c["derivation"]["same"] == false);
  REQUIRE(c["derivation"]["versions"].size() == 1);
  CHECK(c["derivation"]["versions"][0] ==
        json{{"change", "moved"}, {"name", "magma"}, {"before", "1.0"}, {"after", "1.1"}});
  REQUIRE(c["derivation"]["variables"].size() == 1);
  CHECK(c["derivation"]["variables"][0]["name"] == "cmakeFlags");
  CHECK(c["derivation"]["variables"][0]["added"] == json{"-DUSE_Y=ON"});
  REQUIRE_MESSAGE(c["commits"].size() == 1, c.dump());
  CHECK(c["commits"][0]["sha"] == h.c);
  CHECK(c["commits"][0]["subject"] == "C: magma 1.1");
  CHECK(c["commits"][0]["files"] == json{"lib/overlay.nix"});
  CHECK(c["actions"].empty());
  std::string text = d.client({"changes", h.bad["id"].dump()}).out;
  CHECK(text.find("magma 1.0 -> 1.1") != std::string::npos);
  CHECK(text.find("+ -DUSE_Y=ON") != std::string::npos);
}

TEST_CASE("changes: --since must name an earlier build of the same variant") {
  Daemon d;
  History h = broken_at_c(d);
  ProcessResult later = d.client({"changes", h.good["id"].dump(), "--since", h.bad["id"].dump()});
  CHECK(later.exit_code == 2);
  CHECK(later.err.find("is not older than") != std::string::npos);
  d.client_json({"queue", "cpu-avx512"});
  d.client({"wait", "cpu-avx512"});
  int64_t other = d.job("cpu-avx512")["id"].get<int64_t>();
  ProcessResult wrong = d.client({"changes", h.bad["id"].dump(), "--since", std::to_string(other)});
  CHECK(wrong.exit_code == 2);
  CHECK(wrong.err.find("is no build of " + kVariant) != std::string::npos);
  // Named, the good build gives what the failure recorded.
  json named = d.client_json({"changes", h.bad["id"].dump(), "--since", h.good["id"].dump(), "--json"});
  CHECK(named == h.bad["changes"]);
}

namespace {
std::vector<json> lines_of(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}
}  // namespace

TEST_CASE(
    "notify: a command and a webhook each hear newly failing and fixed once - the webhook is tried again after a 500") {
  WebhookServer hook({500});  // the first POST fails, the next is taken
  WebhookServer broken({500, 500, 500, 500, 500});
  Daemon d("",
           "\n[web]\nlisten = \"127.0.0.1:0\"\nurl = \"http://ptbuild.example\"\n"
           "\n[[notify]]\non = [\"newly_failing\", \"fixed\"]\ncommand = \"cat >> EVENTS; echo >> EVENTS\"\n"
           "\n[[notify]]\non = [\"newly_failing\", \"fixed\"]\nwebhook = \"" +
               hook.url() +
               "\"\n"
               "\n[[notify]]\non = [\"newly_failing\"]\nwebhook = \"" +
               broken.url() + "\"\n");
  // The command writes into the test's folder, which is known once the daemon's is made.
  std::string events = d.nonce() + "/events.jsonl";
  {
    std::ifstream in(d.config_path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t at; (at = text.find("EVENTS")) != std::string::npos;) text.replace(at, 6, events);
    std::ofstream(d.config_path()) << text;
  }
  History h = broken_at_c(d);

  REQUIRE(eventually([&] { return lines_of(events).size() == 1 && hook.bodies().size() == 2; }));
  json heard = lines_of(events)[0];
  CHECK(heard["event"] == "newly_failing");
  CHECK(heard["job"] == h.bad["id"]);
  CHECK(heard["variant"] == kVariant);
  CHECK(heard["class"] == h.bad["failure"]["class"]);
  CHECK(heard["url"] == "http://ptbuild.example/#/job/" + h.bad["id"].dump());
  REQUIRE(!heard["changes"].empty());
  CHECK(heard["changes"][0] == "inputs: magma 1.0 → 1.1");
  CHECK(heard["text"].get<std::string>().find("newly_failing") != std::string::npos);
  // The webhook got the same event twice: a 500, then again after the back-off.
  CHECK(json::parse(hook.bodies()[0]) == heard);
  CHECK(json::parse(hook.bodies()[1]) == heard);

  // A hook that keeps failing shows in `status`, and is counted; the daemon goes on.
  REQUIRE(eventually([&] {
    json s = d.client_json({"status", "--json"});
    for (const json& n : s["scheduler"]["notify"])
      if (n["target"] == "webhook " + broken.url()) return n["failing"] == true;
    return false;
  }));
  CHECK(d.client({"status"}).out.find("notify webhook " + broken.url() + ": failing") != std::string::npos);
  uint16_t port = dashboard_port(d.log());
  REQUIRE(port != 0);
  std::string metrics = http_get(port, "/metrics").body;
  CHECK(metrics.find("ptbuild_notifications_total{event=\"newly_failing\",result=\"retried\"}") !=
        std::string::npos);
  CHECK(metrics.find("ptbuild_notifications_total{event=\"newly_failing\",result=\"delivered\"} 2") !=
        std::string::npos);

  // The job's page says what changed, in a real Chromium.
  if (Browser::available()) {
    Browser browser;
    browser.go("http://127.0.0.1:" + std::to_string(port) + "/#/job/" + h.bad["id"].dump());
    REQUIRE(eventually([&] { return browser.eval("!!document.querySelector('#job-changes li')") == true; }));
    CHECK(browser.eval("document.querySelector('#job-changes li').textContent") == "inputs: magma 1.0 → 1.1");
    CHECK(browser.eval("document.querySelector('#job-changes h2').textContent") ==
          "What changed since #" + h.good["id"].dump());
    std::filesystem::create_directories(source_dir() + "/docs/screenshots");
    browser.screenshot(source_dir() + "/docs/screenshots/job-changes.png");
  }

  // Fixed: the overlay goes back to magma 1.0.
  write(d.repo() + "/lib/overlay.nix", overlay("1.0", "-DUSE_X=ON"));
  commit(d, "E: back to magma 1.0");
  REQUIRE(build(d)["state"] == "succeeded");
  REQUIRE(eventually([&] { return lines_of(events).size() == 2 && hook.bodies().size() == 3; }));
  CHECK(lines_of(events)[1]["event"] == "fixed");
  CHECK(json::parse(hook.bodies()[2])["event"] == "fixed");
  CHECK(broken.bodies().size() <= 5);  // fixed is not its event; it gave up after five tries at most
}

TEST_CASE("notify: a webhook that never answers holds nothing - status answers while it hangs") {
  WebhookServer hanging({}, true);
  Daemon d("", "\n[[notify]]\nwebhook = \"" + hanging.url() + "\"\n");
  d.add_sh_recipe(kVariant, "exit 1");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  d.start();
  d.client_json({"queue", kVariant});
  d.client({"wait", kVariant});
  REQUIRE(eventually([&] { return hanging.holding(); }));
  // While the webhook holds its connection open, the daemon answers and builds.
  ProcessResult status = d.client({"status"});
  CHECK(status.exit_code == 0);
  CHECK(hanging.holding());
  d.client_json({"queue", "cpu-avx512"});
  CHECK(d.client({"wait", "cpu-avx512", "--timeout", "1m"}).exit_code == 0);
  CHECK(hanging.holding());
}

TEST_CASE("notify: a bad [[notify]] is refused by line - an unknown event, no target, an https webhook") {
  for (const auto& [entry, error] : std::vector<std::pair<std::string, std::string>>{
           {"on = [\"nightly\", \"exploded\"]\ncommand = \"true\"", "notify.on: unknown event \"exploded\""},
           {"on = [\"fixed\"]", "a [[notify]] needs a command or a webhook"},
           {"webhook = \"https://hooks.example/x\"", "notify.webhook: expected http://"}}) {
    Daemon d("", "\n[[notify]]\n" + entry + "\n");
    ProcessResult r = run_process({build_dir() + "/ptbuildd", "--config", d.config_path(), "--check-config"});
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.err.find(error) != std::string::npos, r.err);
  }
}

namespace {
// The newest bisection, once it has ended.
json finished_bisect(Daemon& d) {
  json b;
  REQUIRE(eventually([&] {
    b = d.client_json({"bisect", "status", "--json"})["bisects"][0];
    return b["state"] != "running";
  }));
  return b;
}
}  // namespace

TEST_CASE("bisect: a commit whose derivation is one already judged costs no build") {
  Daemon d;
  History h = broken_at_c(d);  // C's derivation is D's: only the README changed after it
  d.client_json({"bisect", "cpu-avx2"});
  json b = finished_bisect(d);
  INFO(b.dump());
  CHECK(b["state"] == "found");
  CHECK(b["first_bad"] == h.c);
  CHECK(b["builds"] == 0);
  CHECK(b["commits"][0]["how"] == "its derivation is the good end's: no build");
  CHECK(b["commits"][1]["how"] == "its derivation is " + h.d.substr(0, 7) + "'s: no build");
}

TEST_CASE(
    "bisect: between the good build at A and the failure at D it builds once and names C - the checkout untouched") {
  Daemon d;
  History h = broken_at_c(d, true);
  json started = d.client_json({"bisect", "cpu-avx2", "--json"});
  REQUIRE(started["bisects"].size() == 1);
  const json& b0 = started["bisects"][0];
  CHECK(b0["good"] == h.a);
  CHECK(b0["bad"] == h.d);
  CHECK(b0["state"] == "running");
  REQUIRE(b0["commits"].size() == 3);  // B, C, D
  CHECK(b0["max_builds"] == 2);

  json b = finished_bisect(d);
  INFO(b.dump());
  CHECK(b["state"] == "found");
  CHECK(b["first_bad"] == h.c);
  CHECK(b["message"].get<std::string>().find("\"C: magma 1.1\"") != std::string::npos);
  // B's derivation is A's: judged good without a build. C was built, and failed.
  CHECK(b["commits"][0]["commit"] == h.b);
  CHECK(b["commits"][0]["verdict"] == "good");
  CHECK(b["commits"][0]["job"].is_null());
  CHECK(b["commits"][1]["verdict"] == "bad");
  REQUIRE(b["commits"][1]["job"].is_number());
  CHECK(b["builds"] == 1);
  CHECK(b["changes"]["summary"][0] == "inputs: magma 1.0 → 1.1");
  CHECK(b["changes"]["commits"].size() == 1);

  // The bisect build: its own kind, below normal priority, at C, from a worktree.
  json job = d.job(b["commits"][1]["job"].dump());
  CHECK(job["kind"] == "bisect");
  CHECK(job["rev"] == h.c);
  CHECK(job["priority"].get<int>() < 0);
  CHECK(job["state"] == "failed");
  CHECK(d.client({"status"}).out.find("bisect") != std::string::npos);
  // The repo's checkout never moved, and the worktrees are gone.
  CHECK(git(d, {"rev-parse", "HEAD"}) == h.d);
  CHECK(git(d, {"status", "--porcelain"}).empty());
  REQUIRE(eventually([&] { return git(d, {"worktree", "list"}).find('\n') == std::string::npos; }));
  // The variant's own history is the builds': its latest build is still the failure at D.
  CHECK(d.job(kVariant)["id"] == h.bad["id"]);

  CHECK(d.client({"bisect", "cancel"}).exit_code != 0);  // nothing runs
  ProcessResult wrong = d.client({"bisect", "cpu-avx2", "--good", "no-such-rev"});
  CHECK(wrong.exit_code != 0);
  CHECK(wrong.err.find("'no-such-rev' is no commit") != std::string::npos);
}
