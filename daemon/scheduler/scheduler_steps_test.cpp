// The scheduler's steps after a build, with a fake runner: hash repair and verification.
#include "daemon/scheduler/scheduler_fixture.h"

using namespace ptbuild;
using namespace std::chrono_literals;
using ptbuild::testing::FakeRunner;
using ptbuild::testing::Fixture;
using ptbuild::testing::log_text;

namespace {
std::string sri(uint8_t fill) {
  return format_hash(Hash{HashAlgo::sha256, std::vector<uint8_t>(32, fill)}, HashSpelling::sri);
}

std::string mismatch(const std::string& drv_name, const std::string& specified, const std::string& got) {
  return "error: hash mismatch in fixed-output derivation '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-" +
         drv_name + ".drv':\n         specified: " + specified + "\n            got:    " + got + "\n";
}

// The fixture's repo as a git checkout with one recipe pinning two sources.
void make_repo(Fixture& f, const std::string& recipe_text) {
  std::string repo = f.dir / "pytorch";
  f.dir.write("pytorch/.flox/pkgs/a-python313-cpu-avx2.nix", recipe_text);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"init", "-q"},
        {"add", "-A"},
        {"-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "r"}}) {
    args.insert(args.begin(), {"git", "-C", repo});
    REQUIRE(run_command(args, repo).ok());
  }
}
}  // namespace

TEST_CASE("scheduler: a hash that mismatches again after its repair fails as not reproducible") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  make_repo(f, "{ }: { src = { name = \"torch-src\"; hash = \"" + sri(1) + "\"; }; }\n");
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.finish_live(mismatch("torch-src", sri(1), sri(2)), 1);
  CHECK(testing::read_file(f.dir / "pytorch/.flox/pkgs/a-python313-cpu-avx2.nix").find(sri(2)) !=
        std::string::npos);
  REQUIRE(f.runner.live().size() == 1);  // built again, same job
  CHECK(f.store.job(id)->attempt == 2);
  f.finish_live(mismatch("torch-src", sri(2), sri(3)), 1);
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.failure->failure_class == "hash_mismatch");
  CHECK(j.failure->message.find("not reproducible") != std::string::npos);
  CHECK(testing::read_file(f.dir / "pytorch/.flox/pkgs/a-python313-cpu-avx2.nix").find(sri(3)) ==
        std::string::npos);
}

TEST_CASE("scheduler: hash repairs stop at hashfix.max_rounds") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  f.config.hashfix.max_rounds = 1;
  make_repo(f, "{ }: {\n  a = { name = \"src-a\"; hash = \"" + sri(1) +
                   "\"; };\n  b = { name = \"src-b\"; hash = \"" + sri(4) + "\"; };\n}\n");
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.finish_live(mismatch("src-a", sri(1), sri(2)), 1);
  REQUIRE(f.runner.live().size() == 1);
  f.finish_live(mismatch("src-b", sri(4), sri(5)), 1);
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.failure->message.find("gave up after 1 hash repair rounds (hashfix.max_rounds)") !=
        std::string::npos);
  REQUIRE(j.fixes_json.find(sri(2)) != std::string::npos);  // the first round's repair is on record
}

TEST_CASE("scheduler: with hashfix off a mismatch simply fails the job") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  f.config.hashfix.enabled = false;
  make_repo(f, "{ }: { src = { name = \"torch-src\"; hash = \"" + sri(1) + "\"; }; }\n");
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.finish_live(mismatch("torch-src", sri(1), sri(2)), 1);
  CHECK(f.state(id) == JobState::failed);
  CHECK(testing::read_file(f.dir / "pytorch/.flox/pkgs/a-python313-cpu-avx2.nix").find(sri(1)) !=
        std::string::npos);
}

TEST_CASE("scheduler: a successful build counts only once its probe agrees with its name") {
  Fixture f(
      {{"pytorch-python313-cuda13_0-sm90-avx512", "pytorch"}, {"pytorch-python313-cpu-avx2", "pytorch"}});
  f.config.verify.enabled = true;
  int64_t gpu = f.queue("pytorch-python313-cuda13_0-sm90-avx512");
  f.scheduler.poke();
  f.settle();
  f.runner.live()[0]->exit(0);
  f.settle();
  REQUIRE(f.runner.live().size() == 1);  // now the probe runs
  auto probe = f.runner.live()[0];
  CHECK(probe->command.argv == std::vector<std::string>{"python3", f.dir / "probe.py"});
  CHECK(std::filesystem::exists(f.dir / "probe.py"));
  CHECK(f.state(gpu) == JobState::running);
  probe->output(
      "{\"torch_version\": \"2.10.0\", \"cuda_version\": null, \"arch_flags\": [], \"cuda_available\": false}\n");
  probe->exit(0);
  f.settle();
  Job j = *f.store.job(gpu);
  CHECK(j.state == JobState::failed);
  CHECK(j.failure->failure_class == "verify_failed");
  CHECK(j.failure->message.find("expected CUDA 13.0, found a CPU-only torch") != std::string::npos);
  REQUIRE(j.verify_json);
  CHECK(nlohmann::json::parse(*j.verify_json)["ok"] == false);
  CHECK(j.out_path);  // the artifact stays inspectable
  CHECK(log_text(j.log_path).find("=== ptbuild: verifying") != std::string::npos);

  // A CPU variant whose probe agrees succeeds; with publish.auto a publish job follows.
  f.config.publish.auto_publish = true;
  f.config.publish.store = "file:///srv/cache";
  int64_t cpu = f.queue("pytorch-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.runner.live()[0]->exit(0);
  f.settle();
  f.finish_live("{\"torch_version\": \"2.10.0\", \"cuda_version\": null, \"arch_flags\": []}\n", 0);
  Job ok = *f.store.job(cpu);
  CHECK(ok.state == JobState::succeeded);
  CHECK(nlohmann::json::parse(*ok.verify_json)["ok"] == true);
  REQUIRE(f.runner.live().size() == 1);  // the publish job, started without a build slot
  const auto& publish = f.runner.live()[0]->command.argv;
  // nix copy into the file:// cache, its provenance copied beside it (docs/provenance.md).
  REQUIRE(publish.size() == 9);
  CHECK(publish[0] == "/bin/sh");
  CHECK(publish[2].find("copy --to \"$store\" \"$out\"") != std::string::npos);
  CHECK(std::vector<std::string>(publish.begin() + 4, publish.end()) ==
        std::vector<std::string>{
            "nix", "", "file:///srv/cache", *ok.out_path,
            f.dir /
                ("provenance/" + std::filesystem::path(*ok.out_path).filename().string() + ".intoto.json")});
  f.runner.live()[0]->exit(0);
  f.settle();
  Job published = *f.store.latest_job("pytorch-python313-cpu-avx2", JobKind::publish);
  CHECK(published.state == JobState::succeeded);
  CHECK(published.reason == "publish.auto after build #" + std::to_string(cpu));
}

TEST_CASE("scheduler: a probe that prints no facts fails verification and says what it printed") {
  Fixture f({{"pytorch-python313-cpu-avx2", "pytorch"}});
  f.config.verify.enabled = true;
  int64_t id = f.queue("pytorch-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.runner.live()[0]->exit(0);
  f.settle();
  f.finish_live(
      "Traceback (most recent call last):\nImportError: libcudart.so.13: cannot open shared object file\n",
      1);
  Job j = *f.store.job(id);
  CHECK(j.failure->failure_class == "verify_failed");
  CHECK(j.failure->message.find("libcudart.so.13") != std::string::npos);
}
