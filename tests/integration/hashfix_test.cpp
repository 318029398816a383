// Repairing wrong fixed-output hashes with the real daemon and real Nix (docs/hash-repair.md).
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include <algorithm>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "core/text.h"
#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

// A fixed-output "fetcher" that needs no network: its output is `content`. Recipes spell its
// hash as real ones do (hash, sha256 or outputHash), and `lib` offers nixpkgs' fake hashes.
const std::string kPrelude = R"(  lib = {
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    fakeSha256 = "0000000000000000000000000000000000000000000000000000";
  };
  fetch = { name, content, hash ? "", sha256 ? "", outputHash ? "" }: derivation {
    inherit name content;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/bin:/usr/bin";
    args = [ "-c" "printf '%s' \"$content\" > $out" ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = if hash != "" then hash else if sha256 != "" then sha256 else outputHash;
  };
)";

// A package that uses the sources named in `srcs` (Nix expressions, one per line of `let`).
std::string recipe(const std::string& name, const std::string& sources, const std::string& nonce) {
  std::string all = sources + (sources.find("extra =") == std::string::npos ? "  extra = [ ];\n" : "");
  return "{ pkgs ? null }:\nlet\n" + kPrelude + all + "in derivation {\n  name = \"" + name +
         "\";\n  system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n"
         "  nonce = \"" +
         nonce +
         "\";\n  srcs = [ src ] ++ extra;\n"
         "  args = [ \"-c\" \"cat $srcs > /dev/null && mkdir $out\" ];\n}\n";
}

std::string_view ptbuild_trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::string sh(const std::string& command) {
  ProcessResult r = run_process({"/bin/sh", "-c", command});
  REQUIRE(r.exit_code == 0);
  return std::string(ptbuild_trim(r.out));
}

// The hash of `content` as Nix spells it: sri, nix32 or hex — computed by sha256sum and real nix.
std::string hash_of(const std::string& content, const std::string& spelling) {
  std::string hex = sh("printf '%s' '" + content + "' | sha256sum | cut -d' ' -f1");
  if (spelling == "hex") return hex;
  if (spelling == "nix32") return sh("nix-hash --type sha256 --to-base32 " + hex);
  return sh("nix --extra-experimental-features nix-command hash to-sri --type sha256 " + hex);
}

void git(Daemon& d, const std::vector<std::string>& args) {
  std::vector<std::string> argv{
      "/usr/bin/git", "-C", d.repo(), "-c", "user.name=test", "-c", "user.email=test@localhost"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run_process(argv);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

void commit_all(Daemon& d) {
  git(d, {"init", "-q"});
  git(d, {"add", "-A"});
  git(d, {"commit", "-q", "-m", "recipes"});
}

std::string recipe_text(Daemon& d, const std::string& name) {
  return read_file(d.repo() + "/.flox/pkgs/" + name + ".nix");
}

json build(Daemon& d, const std::string& target) {
  d.client_json({"queue", target});
  ProcessResult r = d.client({"wait", target, "--json", "--timeout", "120s"});
  return json::parse(r.out)["jobs"];
}

// CPU recipes of the given ISAs that all pin one source with the hash `wrong`, built together.
ProcessResult build_sharing(Daemon& d, std::initializer_list<const char*> isas, const std::string& content,
                            const std::string& wrong) {
  for (const char* isa : isas) {
    std::string name = std::string("pytorch-python313-cpu-") + isa;
    d.add_recipe(name, recipe(name,
                              "  src = fetch { name = \"torch-src\"; content = \"" + content +
                                  "\"; hash = \"" + wrong + "\"; };\n",
                              d.nonce()));
  }
  commit_all(d);
  d.start();
  d.client_json({"queue", "all"});
  return d.client({"wait", "all", "--json", "--timeout", "120s"});
}

}  // namespace

TEST_CASE("hashfix: a wrong SRI hash is repaired within the same job") {
  Daemon d;
  std::string content = "torch-" + d.nonce();
  std::string wrong = hash_of("something else", "sri");
  std::string original = recipe(
      "pytorch-python313-cpu-avx2",
      "  src = fetch { name = \"torch-src\"; content = \"" + content + "\"; hash = \"" + wrong + "\"; };\n",
      d.nonce());
  d.add_recipe("pytorch-python313-cpu-avx2", original);
  commit_all(d);
  std::filesystem::permissions(d.repo() + "/.flox/pkgs/pytorch-python313-cpu-avx2.nix",
                               std::filesystem::perms(0640));
  d.start();
  json jobs = build(d, "cpu-avx2");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["state"] == "succeeded");
  CHECK(jobs[0]["attempt"] == 2);
  REQUIRE(jobs[0]["fixes"].size() == 1);
  json fix = jobs[0]["fixes"][0];
  CHECK(fix["file"] == ".flox/pkgs/pytorch-python313-cpu-avx2.nix");
  CHECK(fix["line"] ==
        1 + std::count(original.begin(), original.begin() + static_cast<long>(original.find(wrong)), '\n'));
  CHECK(fix["old"] == wrong);
  CHECK(fix["new"] == hash_of(content, "sri"));
  std::string text = recipe_text(d, "pytorch-python313-cpu-avx2");
  CHECK(text.find(hash_of(content, "sri")) != std::string::npos);
  CHECK(text.find(wrong) == std::string::npos);
  struct stat st {};
  REQUIRE(::stat((d.repo() + "/.flox/pkgs/pytorch-python313-cpu-avx2.nix").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);  // the file's mode is kept
  json fixes = d.client_json({"fixes"})["fixes"];
  REQUIRE(fixes.size() == 1);
  for (const char* key : {"id", "job", "variant", "drv", "file", "line", "old", "new", "at"})
    CHECK(fixes[0].contains(key));
  CHECK(fixes[0]["drv"].get<std::string>().ends_with("-torch-src.drv"));
}

TEST_CASE("hashfix: nix32 sha256, hex outputHash and an empty hash keep their spelling") {
  Daemon d("max_parallel = 3\n");
  std::string c1 = "a-" + d.nonce(), c2 = "b-" + d.nonce(), c3 = "c-" + d.nonce();
  d.add_recipe("pytorch-python313-cpu-avx2",
               recipe("pytorch-python313-cpu-avx2",
                      "  src = fetch { name = \"src-a\"; content = \"" + c1 + "\"; sha256 = \"" +
                          hash_of("x", "nix32") + "\"; };\n",
                      d.nonce()));
  d.add_recipe("pytorch-python313-cpu-avx512",
               recipe("pytorch-python313-cpu-avx512",
                      "  src = fetch { name = \"src-b\"; content = \"" + c2 + "\"; outputHash = \"" +
                          hash_of("y", "hex") + "\"; };\n",
                      d.nonce()));
  d.add_recipe(
      "pytorch-python313-cpu-avx512bf16",
      recipe("pytorch-python313-cpu-avx512bf16",
             "  src = fetch { name = \"src-c\"; content = \"" + c3 + "\"; hash = \"\"; };\n", d.nonce()));
  commit_all(d);
  d.start();
  d.client_json({"queue", "all"});
  REQUIRE(d.client({"wait", "all", "--timeout", "120s"}).exit_code == 0);
  CHECK(recipe_text(d, "pytorch-python313-cpu-avx2").find("sha256 = \"" + hash_of(c1, "nix32") + "\"") !=
        std::string::npos);
  CHECK(recipe_text(d, "pytorch-python313-cpu-avx512").find("outputHash = \"" + hash_of(c2, "hex") + "\"") !=
        std::string::npos);
  CHECK(recipe_text(d, "pytorch-python313-cpu-avx512bf16").find("hash = \"" + hash_of(c3, "sri") + "\"") !=
        std::string::npos);
}

TEST_CASE("hashfix: two fake hashes for two sources in one file each get their own hash") {
  Daemon d;
  std::string torch = "torch-" + d.nonce(), magma = "magma-" + d.nonce();
  d.add_recipe("pytorch-python313-cuda13_0-sm90-avx512",
               recipe("pytorch-python313-cuda13_0-sm90-avx512",
                      "  src = fetch {\n    name = \"torch-src\";\n    content = \"" + torch +
                          "\";\n    hash = lib.fakeHash;\n  };\n"
                          "  extra = [ (fetch {\n    name = \"magma-cuda13-patch\";\n    content = \"" +
                          magma + "\";\n    sha256 = lib.fakeSha256;\n  }) ];\n",
                      d.nonce()));
  commit_all(d);
  d.start();
  json jobs = build(d, "sm90-avx512");
  CHECK(jobs[0]["state"] == "succeeded");
  std::string text = recipe_text(d, "pytorch-python313-cuda13_0-sm90-avx512");
  CHECK(text.find("content = \"" + torch + "\";\n    hash = \"" + hash_of(torch, "sri") + "\";") !=
        std::string::npos);
  CHECK(text.find("content = \"" + magma + "\";\n    sha256 = \"" + hash_of(magma, "sri") + "\";") !=
        std::string::npos);
  CHECK(text.find("fakeHash = \"sha256-AAAA") != std::string::npos);  // the definition of lib.fakeHash stays
}

TEST_CASE("hashfix: one wrong hash shared by three recipes - one failing build repairs all three files") {
  Daemon d("max_parallel = 1\n");
  std::string content = "shared-" + d.nonce();
  std::string wrong = hash_of("stale source", "sri");
  ProcessResult waited = build_sharing(d, {"avx2", "avx512", "avx512bf16"}, content, wrong);
  REQUIRE(waited.exit_code == 0);
  int failed_builds = 0;
  json jobs = json::parse(waited.out)["jobs"];
  for (const json& j : jobs) failed_builds += j["attempt"].get<int>() - 1;
  CHECK(failed_builds == 1);
  json fixes = d.client_json({"fixes"})["fixes"];
  CHECK(fixes.size() == 3);
  std::set<std::string> files;
  for (const json& f : fixes) files.insert(f["file"]);
  CHECK(files.size() == 3);
}

TEST_CASE("hashfix: a hash in a shared imported file is repaired there") {
  Daemon d;
  std::string content = "lib-" + d.nonce();
  d.dir().write("repo/.flox/pkgs/lib/sources.nix",
                "{ fetch }:\n{\n  torch = fetch {\n    name = \"torch-src\";\n    content = \"" + content +
                    "\";\n    hash = \"" + hash_of("old", "sri") + "\";\n  };\n}\n");
  d.add_recipe("pytorch-python313-cpu-avx2",
               recipe("pytorch-python313-cpu-avx2",
                      "  src = (import ./lib/sources.nix { inherit fetch; }).torch;\n", d.nonce()));
  commit_all(d);
  d.start();
  json jobs = build(d, "cpu-avx2");
  CHECK(jobs[0]["state"] == "succeeded");
  REQUIRE(jobs[0]["fixes"].size() == 1);
  CHECK(jobs[0]["fixes"][0]["file"] == ".flox/pkgs/lib/sources.nix");
  CHECK(read_file(d.repo() + "/.flox/pkgs/lib/sources.nix").find(hash_of(content, "sri")) !=
        std::string::npos);
}

TEST_CASE("hashfix: a computed hash or an untracked recipe fails cleanly and nothing is patched") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2",
               recipe("pytorch-python313-cpu-avx2",
                      "  src = fetch { name = \"torch-src\"; content = \"c-" + d.nonce() +
                          "\"; outputHash = builtins.hashString \"sha256\" \"not the content\"; };\n",
                      d.nonce()));
  commit_all(d);
  std::string wrong = hash_of("old", "sri");
  d.add_recipe("pytorch-python313-cpu-avx512",
               recipe("pytorch-python313-cpu-avx512",
                      "  src = fetch { name = \"untracked-src\"; content = \"u-" + d.nonce() +
                          "\"; hash = \"" + wrong + "\"; };\n",
                      d.nonce()));
  std::string computed_before = recipe_text(d, "pytorch-python313-cpu-avx2");
  std::string untracked_before = recipe_text(d, "pytorch-python313-cpu-avx512");
  d.start();
  d.client_json({"queue", "all"});
  ProcessResult waited = d.client({"wait", "all", "--json", "--timeout", "120s"});
  CHECK(waited.exit_code == 1);
  json jobs = json::parse(waited.out)["jobs"];
  for (const json& j : jobs) {
    CAPTURE(j["variant"]);
    CHECK(j["state"] == "failed");
    CHECK(j["attempt"] == 1);
    CHECK(j["failure"]["class"] == "hash_mismatch");
    CHECK(j["failure"]["message"].get<std::string>().find("not in any git-tracked .nix file") !=
          std::string::npos);
    CHECK(j["fixes"].empty());
  }
  CHECK(recipe_text(d, "pytorch-python313-cpu-avx2") == computed_before);
  CHECK(recipe_text(d, "pytorch-python313-cpu-avx512") == untracked_before);
  CHECK(d.client_json({"fixes"})["fixes"].empty());
}

TEST_CASE("hashfix: with commit on the repair is committed and the tree is clean") {
  Daemon d("", "\n[hashfix]\ncommit = true\n");
  std::string content = "commit-" + d.nonce();
  d.add_recipe("pytorch-python313-cpu-avx2",
               recipe("pytorch-python313-cpu-avx2",
                      "  src = fetch { name = \"torch-src\"; content = \"" + content + "\"; hash = \"" +
                          hash_of("old", "sri") + "\"; };\n",
                      d.nonce()));
  commit_all(d);
  d.start();
  json jobs = build(d, "cpu-avx2");
  CHECK(jobs[0]["state"] == "succeeded");
  ProcessResult status = run_process({"/usr/bin/git", "-C", d.repo(), "status", "--porcelain"});
  CHECK(status.out.empty());
  ProcessResult last = run_process({"/usr/bin/git", "-C", d.repo(), "log", "-1", "--format=%s%n%b"});
  CHECK(last.out.starts_with("ptbuild: repair fixed-output hash of torch-src.drv"));
  CHECK(last.out.find(hash_of(content, "sri")) != std::string::npos);
  ProcessResult count = run_process({"/usr/bin/git", "-C", d.repo(), "rev-list", "--count", "HEAD"});
  CHECK(count.out == "2\n");
}

TEST_CASE("hashfix: two builds that meet the same wrong hash at once end with one correct patch") {
  Daemon d("max_parallel = 2\n");
  std::string content = "together-" + d.nonce();
  std::string wrong = hash_of("old together", "sri");
  ProcessResult waited = build_sharing(d, {"avx2", "avx512"}, content, wrong);
  REQUIRE(waited.exit_code == 0);
  json fixes = d.client_json({"fixes"})["fixes"];
  CHECK(fixes.size() == 2);  // each file once, whichever build repaired it
  for (const char* isa : {"avx2", "avx512"}) {
    std::string text = recipe_text(d, std::string("pytorch-python313-cpu-") + isa);
    CHECK(text.find(wrong) == std::string::npos);
    std::string good = hash_of(content, "sri");
    size_t at = text.find(good);
    CHECK(at != std::string::npos);
    CHECK(text.find(good, at + 1) == std::string::npos);
  }
}

TEST_CASE(
    "hashfix: an edit made to the recipe while a repair runs is kept, and the daemon answers meanwhile") {
  Daemon d;
  // nix, but `nix show-derivation` (which the repair asks; not the listing of the build's sources
  // before it, `show-derivation -r`) waits for the test's gate the first time.
  std::string nix = d.dir().write(
      "nix-gated", "#!/bin/sh\ncase \"$*\" in *\"show-derivation -r\"*) ;; *show-derivation*)\n  if [ ! -e " +
                       d.nonce() + "/show-started ]; then\n    touch " + d.nonce() +
                       "/show-started\n"
                       "    while [ ! -e " +
                       d.nonce() +
                       "/show-gate ]; do sleep 0.05; done\n"
                       "  fi;;\nesac\nexec /usr/bin/nix \"$@\"\n");
  std::filesystem::permissions(nix, std::filesystem::perms(0755));
  std::string config = read_file(d.config_path());
  config.replace(config.find("kind = \"nix\""), 12, "kind = \"nix\"\nprogram = \"" + nix + "\"");
  d.dir().write("ptbuild.toml", config);
  // A fake hash: the repair asks `nix show-derivation` which source it belongs to.
  std::string content = "torch-" + d.nonce();
  d.add_recipe("pytorch-python313-cpu-avx2", recipe("pytorch-python313-cpu-avx2",
                                                    "  src = fetch { name = \"torch-src\"; content = \"" +
                                                        content + "\"; hash = lib.fakeHash; };\n",
                                                    d.nonce()));
  commit_all(d);
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return std::filesystem::exists(d.dir() / "show-started"); }));
  // The repair is under way: the daemon still answers, and someone edits the recipe.
  CHECK(d.client({"status"}).exit_code == 0);
  CHECK(d.job("cpu-avx2")["state"] == "running");
  std::string path = d.repo() + "/.flox/pkgs/pytorch-python313-cpu-avx2.nix";
  std::string edited = read_file(path) + "# edited while the hash was repaired\n";
  d.dir().write("repo/.flox/pkgs/pytorch-python313-cpu-avx2.nix", edited);
  d.dir().write("show-gate", "");
  json job = json::parse(d.client({"wait", "cpu-avx2", "--json", "--timeout", "120s"}).out)["jobs"][0];
  CHECK(job["state"] == "succeeded");
  std::string text = read_file(path);
  CHECK(text.find("# edited while the hash was repaired") != std::string::npos);
  CHECK(text.find(hash_of(content, "sri")) != std::string::npos);
  CHECK(text.find("hash = lib.fakeHash") == std::string::npos);
}

TEST_CASE("hashfix: the sources come first - a wrong hash is repaired before any long dependency is built") {
  Daemon d("max_parallel = 2\n");
  std::string content = "sources-first-" + d.nonce();
  std::string wrong = hash_of("old sources", "sri");
  std::string events = d.nonce() + "/events";
  for (const char* isa : {"avx2", "avx512"}) {
    std::string name = std::string("pytorch-python313-cpu-") + isa;
    // A long dependency (magma, say) beside the source with the wrong pin: it notes when it starts.
    std::string slow =
        "  extra = [ (derivation { name = \"slow-" + std::string(isa) +
        "\"; system = builtins.currentSystem; builder = \"/bin/sh\"; PATH = \"/bin:/usr/bin\"; nonce = \"" +
        d.nonce() + "\"; args = [ \"-c\" \"echo $(date +%s%3N) >> " + events +
        "; sleep 2; echo done > $out\" ]; }) ];\n";
    d.add_recipe(name, recipe(name,
                              "  src = fetch { name = \"torch-src\"; content = \"" + content +
                                  "\"; hash = \"" + wrong + "\"; };\n" + slow,
                              d.nonce()));
  }
  commit_all(d);
  d.start();
  d.client_json({"queue", "all"});
  ProcessResult waited = d.client({"wait", "all", "--json", "--timeout", "120s"});
  INFO(d.log());
  REQUIRE(waited.exit_code == 0);
  json fixes = d.client_json({"fixes"})["fixes"];
  REQUIRE(fixes.size() == 2);
  double repaired = 0;
  for (const json& f : fixes) {
    auto at = ptbuild::parse_rfc3339(f["at"].get<std::string>());
    REQUIRE(at);
    repaired = std::max(repaired, std::chrono::duration<double>(at->time_since_epoch()).count());
  }
  // Every long dependency started after the recipes were repaired: none ran on a wrong pin.
  std::istringstream starts(read_file(events));
  int long_builds = 0;
  for (double ms; starts >> ms; ++long_builds) CHECK(ms / 1000 >= repaired);
  CHECK(long_builds == 2);
  for (const char* isa : {"avx2", "avx512"}) {
    std::string log = log_text(d.job(std::string("cpu-") + isa)["log_path"]);
    CHECK(log.find("its sources (fixed-output inputs) first") != std::string::npos);
    CHECK(log.find("hash mismatch") < log.find("slow-"));
  }
}

TEST_CASE("hashfix: kill -9 at any point of a committed repair loses neither the record nor the commit") {
  // 0 ms: as the recipe is replaced (before the commit, before the history); later: after the
  // commit, after the record, after the journal is gone.
  for (int delay_ms : {0, 1, 3, 10, 30, 100, 300}) {
    CAPTURE(delay_ms);
    Daemon d("", "\n[hashfix]\ncommit = true\n");
    std::string content = "killed-" + std::to_string(delay_ms) + d.nonce();
    d.add_recipe("pytorch-python313-cpu-avx2",
                 recipe("pytorch-python313-cpu-avx2",
                        "  src = fetch { name = \"torch-src\"; content = \"" + content + "\"; hash = \"" +
                            hash_of("old", "sri") + "\"; };\n",
                        d.nonce()));
    commit_all(d);
    std::string before = recipe_text(d, "pytorch-python313-cpu-avx2");
    d.start();
    d.client_json({"queue", "cpu-avx2"});
    REQUIRE(eventually([&] { return recipe_text(d, "pytorch-python313-cpu-avx2") != before; },
                       std::chrono::seconds(60), std::chrono::milliseconds(1)));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    d.signal(SIGKILL);
    d.wait_exit();

    d.start();
    REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
    json fixes = d.client_json({"fixes"})["fixes"];
    REQUIRE(fixes.size() == 1);  // "no hash has been repaired" before, while git had the commit
    CHECK(fixes[0]["new"] == hash_of(content, "sri"));
    CHECK(run_process({"/usr/bin/git", "-C", d.repo(), "status", "--porcelain"}).out.empty());
    CHECK(run_process({"/usr/bin/git", "-C", d.repo(), "rev-list", "--count", "HEAD"}).out == "2\n");
    CHECK(run_process({"/usr/bin/git", "-C", d.repo(), "log", "-1", "--format=%s"})
              .out.starts_with("ptbuild: repair fixed-output hash of torch-src.drv"));
    CHECK(std::filesystem::is_empty(d.state() + "/repairs"));  // every journal has done its work
  }
}
