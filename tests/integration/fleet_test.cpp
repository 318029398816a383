// One matrix over many machines (docs/fleet.md), for real: builders are sshd's in network namespaces
// of their own, each with an empty /nix, reached by the real Nix over ssh-ng://.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/netns_builder.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

// A recipe for `system` needing `features`; its build notes when it starts and ends on which
// builder (the builder's /nix/builder-name) in `events`, which every builder can write (only /nix
// is theirs alone), sleeps, and leaves the builder's name as its output.
// With `together` > 1 it first waits (at most 30 s) until that many builds have started on its
// builder, so that builds meant to overlap do overlap however slowly this machine starts them.
std::string fleet_recipe(const Daemon& d, const std::string& name, const std::string& system,
                         const std::vector<std::string>& features, int seconds, int together = 1) {
  std::string list;
  for (const auto& f : features) list += " \"" + f + "\"";
  std::string events = d.nonce() + "/events";
  return "{ }:\nderivation {\n  name = \"" + name + "\";\n  system = \"" + system +
         "\";\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n  nonce = \"" + d.nonce() +
         "\";\n  requiredSystemFeatures = [" + list + " ];\n  args = [ \"-c\" ''\n" +
         "    on=$(cat /nix/builder-name)\n"
         "    echo \"start " +
         name + " $on\" >> " + events +
         "\n"
         "    echo building " +
         name +
         " on $on\n"
         "    i=0; while [ $(grep -c \"^start .* $on\\$\" " +
         events + ") -lt " + std::to_string(together) +
         " ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
         "    sleep " +
         std::to_string(seconds) +
         "\n"
         "    echo \"end " +
         name + " $on\" >> " + events +
         "\n"
         "    echo $on > $out\n  '' ];\n}\n";
}

struct Interval {
  std::string builder;
  int start = 0, end = 0;  // positions in the events file
};

// variant -> where it ran, from the events file; and the most builds each builder ran at once.
std::map<std::string, Interval> runs(const Daemon& d, std::map<std::string, int>& most_at_once) {
  std::istringstream in(read_file(d.nonce() + "/events"));
  std::map<std::string, Interval> out;
  std::map<std::string, int> now;
  int pos = 0;
  for (std::string word, name, on; in >> word >> name >> on; ++pos) {
    if (word == "start") {
      out[name] = {on, pos, -1};
      most_at_once[on] = std::max(most_at_once[on], ++now[on]);
    } else {
      out[name].end = pos;
      --now[on];
    }
  }
  return out;
}

// Says why and returns true where the kernel forbids what the builders need (asked once).
bool namespaces_unavailable() {
  static const std::string why = NetnsBuilder::unavailable();
  if (!why.empty()) MESSAGE("skipped: " << why);
  return !why.empty();
}

json builder_named(Daemon& d, const std::string& name) {
  json all = d.client_json({"builders"});
  for (const json& b : all["builders"])
    if (b["name"] == name) return b;
  return nullptr;
}

}  // namespace

TEST_CASE("fleet: builds land only on builders that fit, never more than their slots, outputs come home") {
  if (namespaces_unavailable()) return;
  TempDir space;
  // big: only builds that need big-parallel (mandatory); small: two slots, no features; arm:
  // aarch64-linux (its Nix takes that platform, and /bin/sh runs the test's builds).
  NetnsBuilder big(space, "big", 11), small(space, "small", 12),
      arm(space, "arm", 13, "extra-platforms = aarch64-linux");
  Daemon d("builder_backoff = \"2s\"\n", big.config(1, {"x86_64-linux"}, {"big-parallel"}, {"big-parallel"}) +
                                             small.config(2, {"x86_64-linux"}) +
                                             arm.config(1, {"aarch64-linux"}));
  std::vector<std::string> plain{"pytorch-python313-cpu-avx512", "pytorch-python313-cpu-avx512bf16",
                                 "pytorch-python313-cpu-avx512vnni"};
  for (const std::string& v : plain) d.add_recipe(v, fleet_recipe(d, v, "x86_64-linux", {}, 1, 2));
  d.add_recipe("pytorch-python313-cpu-avx2",
               fleet_recipe(d, "pytorch-python313-cpu-avx2", "x86_64-linux", {"big-parallel"}, 1));
  d.add_recipe("pytorch-python313-cpu-armv8_2",
               fleet_recipe(d, "pytorch-python313-cpu-armv8_2", "aarch64-linux", {}, 1));
  d.add_recipe("pytorch-python313-darwin-mps",
               fleet_recipe(d, "pytorch-python313-darwin-mps", "aarch64-darwin", {}, 1));
  d.start();
  ProcessResult check =
      run_process({build_dir() + "/ptbuildd", "--config", d.config_path(), "--check-config"});
  CHECK(check.out.find("name = 'arm'") != std::string::npos);

  d.client_json({"queue", "all"});
  std::vector<std::string> buildable = plain;
  buildable.insert(buildable.end(), {"pytorch-python313-cpu-avx2", "pytorch-python313-cpu-armv8_2"});
  std::vector<std::string> wait_args{"wait", "--timeout", "3m"};
  wait_args.insert(wait_args.end(), buildable.begin(), buildable.end());
  ProcessResult waited = d.client(wait_args);
  INFO("daemon log:\n" << d.log());
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);

  std::map<std::string, int> most;
  std::map<std::string, Interval> where = runs(d, most);
  CHECK(where["pytorch-python313-cpu-avx2"].builder == "big");
  CHECK(where["pytorch-python313-cpu-armv8_2"].builder == "arm");
  for (const std::string& v : plain)
    CHECK_MESSAGE(where[v].builder == "small", v);  // big takes only big-parallel
  CHECK(most["small"] == 2);                        // three builds, two slots: two at once, never three
  CHECK(most["big"] == 1);
  for (const std::string& v : buildable) {
    json job = d.job(v);
    CHECK(job["builder"] == where[v].builder);
    // The output was built there and copied into the daemon's store, behind its GC root.
    std::string out = job["out_path"];
    CHECK(out.starts_with("/nix/store/"));
    CHECK(read_file(out) == where[v].builder + "\n");
    CHECK(log_text(job["log_path"]).find("attempt 1 on " + where[v].builder) != std::string::npos);
  }

  // Nobody builds for aarch64-darwin: the job says so instead of waiting silently.
  json mps = d.job("pytorch-python313-darwin-mps");
  CHECK(mps["state"] == "queued");
  CHECK(mps["waiting"] == "no builder for aarch64-darwin: none of the configured builders can ever take it");
  ProcessResult why = d.client({"why", "pytorch-python313-darwin-mps"});
  CHECK(why.out.find("waiting: no builder for aarch64-darwin") != std::string::npos);

  json builders = d.client_json({"builders"})["builders"];
  REQUIRE(builders.size() == 3);
  CHECK(builder_named(d, "small")["done"] == 3);
  CHECK(builder_named(d, "small")["state"] == "up");
  CHECK(builder_named(d, "big")["mandatory_features"] == json::array({"big-parallel"}));
  ProcessResult table = d.client({"builders"});
  CHECK(table.out.find("0/2") != std::string::npos);
}

TEST_CASE("fleet: a builder lost mid-build loses no job, rests, and comes back after its back-off") {
  if (namespaces_unavailable()) return;
  TempDir space;
  NetnsBuilder first(space, "first", 21), second(space, "second", 22), ghost(space, "ghost", 23, "", false);
  Daemon d("builder_backoff = \"3s\"\n", first.config(1, {"x86_64-linux"}) +
                                             second.config(1, {"x86_64-linux"}) +
                                             ghost.config(1, {"x86_64-linux"}));
  const std::string v = "pytorch-python313-cpu-avx512";
  d.add_recipe(v, fleet_recipe(d, v, "x86_64-linux", {}, 6));
  d.start();
  INFO("daemon log:\n" << d.log());

  // Unreachable at start: the probe takes it down before any job could be sent there.
  REQUIRE(eventually(
      [&] { return builder_named(d, "ghost")["state"].get<std::string>().starts_with("down until"); },
      std::chrono::seconds(30)));
  CHECK(builder_named(d, "ghost")["state"].get<std::string>().find("cannot be reached") != std::string::npos);

  // Both real builders are up (probed) before the job goes out: it lands on the first.
  REQUIRE(eventually(
      [&] {
        return builder_named(d, "first")["state"] == "up" && builder_named(d, "second")["state"] == "up";
      },
      std::chrono::seconds(30)));
  d.client_json({"queue", v});
  REQUIRE(eventually([&] { return read_file(d.nonce() + "/events").find("start " + v) != std::string::npos; },
                     std::chrono::seconds(60)));
  std::string lost_on = d.job(v)["builder"];
  NetnsBuilder& lost = lost_on == "first" ? first : second;
  std::string other = lost_on == "first" ? "second" : "first";
  lost.kill_all();

  ProcessResult waited = d.client({"wait", v, "--timeout", "2m", "--json"});
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  json job = d.job(v);
  CHECK(job["state"] == "succeeded");
  CHECK(job["builder"] == other);
  CHECK(job["attempt"] == 2);  // the lost attempt is not a failure of the variant
  CHECK(read_file(job["out_path"].get<std::string>()) == other + "\n");
  std::string log = log_text(job["log_path"]);
  CHECK(log.find("attempt 1 on " + lost_on) != std::string::npos);
  CHECK(log.find("builder " + lost_on + " cannot build") != std::string::npos);
  CHECK(log.find("attempt 2 on " + other) != std::string::npos);
  json down = builder_named(d, lost_on);
  CHECK(down["state"].get<std::string>().starts_with("down until"));

  // Its machine comes back; after the back-off a probe finds it and it takes builds again.
  lost.start();
  REQUIRE(eventually([&] { return builder_named(d, lost_on)["state"] == "up"; }, std::chrono::seconds(60)));

  // An operator can take a builder out and put it back.
  CHECK(d.client({"builders", "disable", other}).exit_code == 0);
  CHECK(builder_named(d, other)["state"] == "disabled");
  ProcessResult unknown = d.client({"builders", "disable", "nosuch"});
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.err.find("no builder named 'nosuch'") != std::string::npos);
  CHECK(d.client({"builders", "enable", other}).exit_code == 0);
  CHECK(builder_named(d, other)["state"] == "up");
}

TEST_CASE("fleet: the flox backend builds on the chosen builder too, through flox's environment") {
  if (namespaces_unavailable()) return;
  TempDir space;
  NetnsBuilder remote(space, "remote", 31);
  Daemon d("", remote.config(1, {"x86_64-linux"}, {"big-parallel"}));
  std::string config = read_file(d.config_path());
  config.replace(config.find("kind = \"nix\""), 12,
                 "kind = \"flox\"\nprogram = \"" + source_dir() + "/tests/flox-double/flox\"");
  d.dir().write("ptbuild.toml", config);
  d.dir().write("repo/.flox/env/manifest.toml", "version = 1\n");
  const std::string v = "pytorch-python313-cpu-avx2";
  d.add_recipe(v, fleet_recipe(d, v, "x86_64-linux", {"big-parallel"}, 0));
  RunOptions in_repo;
  in_repo.cwd = d.repo();
  REQUIRE(run_process({"/usr/bin/git", "init", "-q"}, in_repo).exit_code == 0);
  REQUIRE(run_process({"/usr/bin/git", "add", "."}, in_repo).exit_code == 0);
  d.start();
  INFO("daemon log:\n" << d.log());
  d.client_json({"queue", v});
  ProcessResult waited = d.client({"wait", v, "--timeout", "2m"});
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  json job = d.job(v);
  CHECK(job["builder"] == "remote");
  CHECK(read_file(job["out_path"].get<std::string>()) == "remote\n");  // built there, copied home
  std::string log = log_text(job["log_path"]);
  CHECK(log.find("Building " + v + " in Nix expression mode") != std::string::npos);
  CHECK(log.find("on 'ssh-ng://root@" + remote.address() + "'") !=
        std::string::npos);  // Nix's own word for it
}

TEST_CASE("fleet: a GPU variant is verified on the builder with its GPU - the artifact is copied there") {
  if (namespaces_unavailable()) return;
  TempDir space;
  // cpu builds; gpu has an sm90 GPU and takes no builds (its feature is mandatory).
  NetnsBuilder cpu(space, "cpu", 41), gpu(space, "gpu", 42);
  Daemon d("", cpu.config(1, {"x86_64-linux"}, {"big-parallel"}) +
                   gpu.config(1, {"x86_64-linux"}, {"cuda", "gpu-sm90"}, {"gpu-sm90"}) +
                   "\n[verify]\nenabled = true\n");
  // The artifact's python answers the probe as torch would: CUDA works only where the GPU is
  // (the builder named gpu), and it says where it ran.
  const std::string v = "pytorch-python313-cuda13_0-sm90-avx512";
  std::string artifact =
      "mkdir -p $out/bin\ncat > $out/bin/python3 <<'PY'\n#!/bin/sh\non=$(cat /nix/builder-name 2>/dev/null || echo here)\n"
      "if [ \"$on\" = gpu ]; then avail=true; else avail=false; fi\n"
      "echo \"{\\\"torch_version\\\": \\\"2.10.0\\\", \\\"cuda_version\\\": \\\"13.0\\\", \\\"arch_flags\\\": [\\\"sm_90\\\"], "
      "\\\"cuda_available\\\": $avail, \\\"device_capability\\\": \\\"9.0\\\", \\\"tensor_ok\\\": true, \\\"device_name\\\": \\\"$on\\\"}\"\n"
      "PY\nchmod +x $out/bin/python3";
  d.add_recipe(v, sh_recipe(v, artifact, d.nonce()));
  d.start();
  INFO("daemon log:\n" << d.log());
  d.client_json({"queue", v});
  ProcessResult waited = d.client({"wait", v, "--timeout", "2m"});
  json job = d.job(v);
  INFO("job: " << job.dump(2));
  REQUIRE(waited.exit_code == 0);
  CHECK(job["builder"] == "cpu");
  CHECK(job["verify"]["ok"] == true);
  CHECK(job["verify"]["facts"]["device_name"] == "gpu");  // the probe ran on the GPU builder
  CHECK(job["verify"]["facts"]["cuda_available"] == true);
  CHECK(log_text(job["log_path"]).find("on builder gpu (gpu-sm90)") != std::string::npos);

  // The same GPU builder whose CUDA does not work fails the job: it was the place to check.
  gpu.kill_all();
  gpu.start();  // an empty store again; the artifact is copied anew
  std::string broken = artifact;
  broken.replace(broken.find("avail=true"), 10, "avail=false");
  const std::string w = "pytorch-python313-cuda13_0-sm90-avx2";
  d.add_recipe(w, sh_recipe(w, broken, d.nonce()));
  d.signal(SIGHUP);  // the new recipe joins the matrix
  REQUIRE(d.wait_notify("reloaded"));
  d.client_json({"queue", w});
  d.client({"wait", w, "--timeout", "2m"});
  json failed = d.job(w);
  CHECK(failed["state"] == "failed");
  CHECK(failed["failure"]["class"] == "verify_failed");
  CHECK(
      failed["failure"]["message"].get<std::string>().find(
          "expected CUDA to work on builder gpu (it has gpu-sm90), found torch.cuda.is_available() false") !=
      std::string::npos);

  // The GPU builder is lost: that is not the artifact's fault. The builder rests and the artifact
  // is checked here instead (its compiled facts only, no GPU here).
  gpu.kill_all();
  const std::string x = "pytorch-python313-cuda13_0-sm90-avx512bf16";
  d.add_recipe(x, sh_recipe(x, artifact, d.nonce()));
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("reloaded"));
  d.client_json({"queue", x});
  REQUIRE(d.client({"wait", x, "--timeout", "2m"}).exit_code == 0);
  json here = d.job(x);
  CHECK(here["verify"]["ok"] == true);
  CHECK(here["verify"]["facts"]["device_name"] == "here");
  CHECK(log_text(here["log_path"]).find("builder gpu the probe could not run there") != std::string::npos);
  CHECK(builder_named(d, "gpu")["state"].get<std::string>().starts_with("down until"));
}

TEST_CASE("fleet: a wrong hash met on one builder is repaired for the jobs of every builder") {
  if (namespaces_unavailable()) return;
  TempDir space;
  NetnsBuilder one(space, "one", 51), two(space, "two", 52);
  Daemon d("", one.config(1, {"x86_64-linux"}) + two.config(1, {"x86_64-linux"}));
  std::vector<std::string> variants{"pytorch-python313-cpu-avx2", "pytorch-python313-cpu-avx512",
                                    "pytorch-python313-cpu-avx512bf16"};
  for (const std::string& v : variants) d.add_fake_hash_recipe(v);  // one source, one wrong pin in each
  d.commit_recipes();
  d.start();
  INFO("daemon log:\n" << d.log());
  d.client_json({"queue", "all"});
  ProcessResult waited = d.client({"wait", "all", "--timeout", "3m"});
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  // The first two jobs started at once, one on each machine; whichever met the wrong hash, one
  // repair served every job of both: none needed more than the one attempt that met it.
  std::set<std::string> started_on;
  for (const std::string& v : variants) {
    json job = d.job(v);
    CHECK(job["state"] == "succeeded");
    CHECK(job["attempt"].get<int>() <= 2);
    std::string log = log_text(job["log_path"]);
    for (std::string b : {"one", "two"})
      if (log.find("attempt 1 on " + b) != std::string::npos) started_on.insert(b);
  }
  CHECK(started_on == std::set<std::string>{"one", "two"});
  json fixes = d.client_json({"fixes"})["fixes"];
  std::set<std::string> files;
  for (const json& f : fixes) files.insert(f["file"].get<std::string>());
  CHECK(files.size() == 3);  // every recipe repaired, whichever builder met the wrong hash
}

TEST_CASE("fleet: a remote builder below its min_free has its own store collected over its ssh") {
  if (namespaces_unavailable()) return;
  TempDir space;
  NetnsBuilder remote(space, "gcbox", 21);
  Daemon d("builder_backoff = \"2s\"\n", remote.config(1, {"x86_64-linux"}));
  const std::string variant = "pytorch-python313-cpu-avx2";
  d.add_recipe(variant, fleet_recipe(d, variant, "x86_64-linux", {}, 0));
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE_MESSAGE(d.client({"wait", "cpu-avx2", "--timeout", "3m"}).exit_code == 0, d.log());
  std::string out = d.job("cpu-avx2")["out_path"];
  // Built there: the output is in the builder's own store, unrooted, and copied home.
  std::string store = remote.uri() + "?ssh-key=" + remote.ssh_key() +
                      "&base64-ssh-public-host-key=" + remote.public_host_key();
  auto on_builder = [&] {
    return run_process({"/usr/bin/nix", "--extra-experimental-features", "nix-command", "path-info",
                        "--store", store, out})
               .exit_code == 0;
  };
  REQUIRE(on_builder());
  // Its figures were read over the same ssh, from its own /proc and its own store's file system.
  REQUIRE(eventually([&] { return !builder_named(d, "gcbox")["resources"].is_null(); },
                     std::chrono::seconds(60)));
  json facts = builder_named(d, "gcbox")["resources"];
  CHECK(facts["memory_total"].get<uint64_t>() > 0);
  CHECK(facts["cores"].get<int>() >= 1);
  CHECK(facts["store_size"].get<uint64_t>() > 0);  // its /nix is a tmpfs of its own

  // Its disk is "full" now: a reload raises min_free above anything, and the daemon collects
  // that builder's store with its own Nix.
  std::ifstream in(d.config_path());
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  std::string name_line = "name = \"gcbox\"\n";
  size_t at = config.find(name_line);
  REQUIRE(at != std::string::npos);
  config.insert(at + name_line.size(), "min_free = \"1000TiB\"\n");
  std::ofstream(d.config_path()) << config;
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("reloaded"));
  REQUIRE_MESSAGE(eventually([&] { return d.log().find("builder gcbox: gc freed") != std::string::npos; },
                             std::chrono::seconds(90)),
                  d.log());
  CHECK(d.log().find("builder gcbox: ") != std::string::npos);
  CHECK_FALSE(on_builder());
  CHECK(read_file(out) == "gcbox\n");  // home, behind its GC root, it stays
  // Nothing new starts there while it stays below, and the job says why.
  d.client_json({"queue", "cpu-avx2"});
  CHECK(eventually([&] {
    json j = d.job("cpu-avx2");
    return j["waiting"].is_string() && j["waiting"].get<std::string>().starts_with("disk: gcbox has ");
  }));
}
