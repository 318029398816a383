// The real daemon building tiny real Nix recipes (docs/backends.md, docs/jobs.md).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include <doctest/doctest.h>

#include "core/text.h"
#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

// A build that takes `seconds` and produces an output.
std::string sleeper(int seconds) {
  return "echo '[1/2] Building CXX object c10/core/Allocator.cpp.o'\nsleep " + std::to_string(seconds) +
         "\necho '[2/2] Linking CXX shared library libtorch.so'\nmkdir -p $out\necho ok > $out/built";
}

// A build that waits until the test creates `<dir>/<gate>`.
std::string gated(const Daemon& d, const std::string& gate) {
  return "echo waiting-for-gate\nwhile [ ! -e " + d.nonce() + "/" + gate +
         " ]; do sleep 0.05; done\necho passed-gate\nmkdir -p $out";
}

void open_gate(Daemon& d, const std::string& gate) {
  d.dir().write(gate, "");
}

double seconds(const json& job, const char* key) {
  auto t = ptbuild::parse_rfc3339(job[key].get<std::string>());
  REQUIRE(t);
  return std::chrono::duration<double>(t->time_since_epoch()).count();
}

bool job_in_state(Daemon& d, const std::string& ref, const char* state) {
  ProcessResult r = d.client({"show", ref, "--json"});
  return r.exit_code == 0 && json::parse(r.out)["state"] == state;
}

bool log_contains(Daemon& d, const std::string& ref, const std::string& text) {
  ProcessResult r = d.client({"log", ref});
  return r.out.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("builds: never more than max_parallel at once with more jobs than slots") {
  Daemon d("max_parallel = 2\n");
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    names.push_back("pytorch-python313-cuda13_0-sm" + std::to_string(80 + i) + "-avx512");
    d.add_sh_recipe(names.back(), sleeper(1));
  }
  d.start();
  d.client_json({"queue", "all"});
  ProcessResult waited = d.client({"wait", "all", "--timeout", "3m", "--json"});
  REQUIRE(waited.exit_code == 0);
  json jobs = json::parse(waited.out)["jobs"];
  REQUIRE(jobs.size() == 5);
  // The jobs' own start and end times: at every start, how many were running?
  int most = 0;
  for (const json& a : jobs) {
    int at_once = 0;
    for (const json& b : jobs)
      if (seconds(b, "started_at") <= seconds(a, "started_at") &&
          seconds(a, "started_at") < seconds(b, "finished_at"))
        ++at_once;
    most = std::max(most, at_once);
  }
  CHECK(most == 2);
  for (const json& j : jobs) {
    CHECK(j["state"] == "succeeded");
    CHECK(j["attempt"] == 1);
    CHECK(j["progress"]["done"] == 2);
    std::string out = j["out_path"];
    CHECK(out.starts_with("/nix/store/"));
    CHECK(std::filesystem::read_symlink(d.state() + "/results/" + j["variant"].get<std::string>()) == out);
    CHECK(read_file(out + "/built") == "ok\n");
  }
}

TEST_CASE("builds: cancel leaves no process of the build alive - grandchildren included") {
  Daemon d("kill_grace = \"5s\"\n");
  d.add_sh_recipe(
      "pytorch-python313-cpu-avx2",
      "sh -c 'sleep 300; echo never' &\nsh -c 'sh -c \"sleep 301\"' &\necho started-grandchildren\nwait\nmkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return log_contains(d, "cpu-avx2", "started-grandchildren"); }));
  REQUIRE(pids_with_nonce(d.nonce()).size() >= 4);  // the builder, two shells, their sleeps
  json cancelled = d.client_json({"cancel", "cpu-avx2"});
  CHECK(cancelled["jobs"][0]["outcome"] == "stopping");
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--json"});
  CHECK(waited.exit_code == 1);  // the job did not succeed
  json job = json::parse(waited.out)["jobs"][0];
  CHECK(job["state"] == "cancelled");
  CHECK(job["failure"]["class"] == "cancelled");
  CHECK(eventually([&] { return pids_with_nonce(d.nonce()).empty(); }, std::chrono::seconds(10)));
}

TEST_CASE("builds: a silent build times out and leaves nothing behind") {
  Daemon d("max_silent = \"2s\"\nkill_grace = \"2s\"\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo configuring\nsleep 300 &\nwait\nmkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--json", "--timeout", "60s"});
  CHECK(waited.exit_code == 1);
  json job = json::parse(waited.out)["jobs"][0];
  CHECK(job["state"] == "failed");
  CHECK(job["failure"]["class"] == "timeout");
  CHECK(job["failure"]["message"].get<std::string>().find("max_silent") != std::string::npos);
  CHECK(eventually([&] { return pids_with_nonce(d.nonce()).empty(); }, std::chrono::seconds(10)));
}

TEST_CASE("builds: kill -9 of the daemon mid-build loses nothing and the jobs finish after the restart") {
  Daemon d("max_parallel = 2\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", sleeper(4));
  d.add_sh_recipe("pytorch-python313-cpu-avx512", sleeper(4));
  d.add_sh_recipe("pytorch-python313-cpu-avx512bf16", sleeper(1));
  d.start();
  d.client_json({"queue", "all"});
  REQUIRE(eventually([&] {
    return job_in_state(d, "cpu-avx2", "running") && job_in_state(d, "cpu-avx512", "running") &&
           pids_with_nonce(d.nonce()).size() >= 2;
  }));
  std::vector<pid_t> old_builders = pids_with_nonce(d.nonce());
  d.signal(SIGKILL);
  REQUIRE(d.wait_exit() == 128 + SIGKILL);
  for (pid_t p : old_builders) CHECK(::kill(p, 0) == 0);  // the builds outlived the daemon

  d.start();
  // The restart killed what was left of the old builds before starting anything again.
  CHECK(eventually(
      [&] {
        std::vector<pid_t> now = pids_with_nonce(d.nonce());
        return std::none_of(old_builders.begin(), old_builders.end(),
                            [&](pid_t p) { return std::find(now.begin(), now.end(), p) != now.end(); });
      },
      std::chrono::seconds(10)));
  ProcessResult waited = d.client({"wait", "all", "--json", "--timeout", "3m"});
  REQUIRE(waited.exit_code == 0);
  json jobs = json::parse(waited.out)["jobs"];
  REQUIRE(jobs.size() == 3);  // no job lost, none doubled
  for (const json& j : jobs) {
    CHECK(j["state"] == "succeeded");
    if (j["variant"] == "pytorch-python313-cpu-avx512bf16") continue;  // it never ran before the crash
    CHECK(j["attempt"] == 2);
    std::string log = log_text(j["log_path"]);
    CHECK(log.find("attempt 1") != std::string::npos);  // the first attempt's log is kept
    CHECK(log.find("attempt 2") != std::string::npos);
  }
  CHECK(d.client_json({"jobs"})["jobs"].size() == 3);
}

TEST_CASE("builds: a graceful stop puts running builds back in the queue") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", gated(d, "go"));
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return log_contains(d, "cpu-avx2", "waiting-for-gate"); }));
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(pids_with_nonce(d.nonce()).empty());
  open_gate(d, "go");
  d.start();
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--json", "--timeout", "60s"});
  REQUIRE(waited.exit_code == 0);
  CHECK(json::parse(waited.out)["jobs"][0]["attempt"] == 2);
}

TEST_CASE("builds: log -f receives lines while the build runs and ends when it ends") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", gated(d, "go"));
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello
  c.send_bytes(R"({"id":1,"op":"log","args":{"job":"cpu-avx2","follow":true}})"
               "\n");
  std::string seen;
  while (seen.find("waiting-for-gate") == std::string::npos) {
    auto msg = c.json_line(std::chrono::seconds(60));
    REQUIRE(msg);
    REQUIRE((*msg)["event"] == "log");  // no final reply while the build waits
    seen += (*msg)["data"]["text"].get<std::string>();
  }
  open_gate(d, "go");
  json final;
  while (true) {
    auto msg = c.json_line(std::chrono::seconds(60));
    REQUIRE(msg);
    if (!msg->contains("event")) {
      final = *msg;
      break;
    }
    seen += (*msg)["data"]["text"].get<std::string>();
  }
  CHECK(seen.find("passed-gate") != std::string::npos);
  CHECK(final["ok"] == true);
  CHECK(final["result"]["job"]["state"] == "succeeded");

  ProcessResult tail = d.client({"log", "cpu-avx2", "--tail", "1"});
  CHECK(tail.exit_code == 0);
  CHECK(std::count(tail.out.begin(), tail.out.end(), '\n') == 1);
  ProcessResult follow_done = d.client({"log", "-f", "cpu-avx2"});
  CHECK(follow_done.exit_code == 0);
  CHECK(follow_done.out.find("passed-gate") != std::string::npos);
}

TEST_CASE("builds: priority decides who starts next when a slot frees up") {
  Daemon d("max_parallel = 1\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", gated(d, "go"));
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512bf16", "mkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return job_in_state(d, "cpu-avx2", "running"); }));
  d.client_json({"queue", "cpu-avx512"});
  d.client_json({"queue", "cpu-avx512bf16", "--priority", "5"});
  // Dedupe: the same variant again is the same queued job.
  CHECK(d.client_json({"queue", "cpu-avx512"})["jobs"][0]["new"] == false);
  open_gate(d, "go");
  REQUIRE(d.client({"wait", "all", "--timeout", "60s"}).exit_code == 0);
  CHECK(seconds(d.job("cpu-avx512bf16"), "started_at") <= seconds(d.job("cpu-avx512"), "started_at"));
  CHECK(d.client_json({"jobs"})["jobs"].size() == 3);
}

TEST_CASE("builds: a torchvision variant waits for the pytorch variant of the same axes") {
  Daemon d("max_parallel = 2\n",
           "\n[[repo]]\nname = \"torchvision\"\npath = \"vision\"\nafter = \"pytorch\"\n");
  d.add_sh_recipe("pytorch-python313-cuda13_0-sm90-avx512", sleeper(2));
  d.dir().write("vision/.flox/pkgs/torchvision-python313-cuda13_0-sm90-avx512.nix",
                sh_recipe("torchvision-python313-cuda13_0-sm90-avx512", "mkdir $out", d.nonce()));
  d.start();
  d.client_json({"pause"});  // queue both before either may start
  d.client_json({"queue", "torchvision-*", "--priority", "9"});
  d.client_json({"queue", "pytorch-*"});
  d.client_json({"resume"});
  REQUIRE(d.client({"wait", "all", "--timeout", "60s"}).exit_code == 0);
  json tv = d.job("torchvision-python313-cuda13_0-sm90-avx512");
  json pt = d.job("pytorch-python313-cuda13_0-sm90-avx512");
  CHECK(tv["repo"] == "torchvision");
  CHECK(seconds(tv, "started_at") >= seconds(pt, "finished_at"));
}

TEST_CASE(
    "builds: when the pytorch variant fails its torchvision stays queued - held, not failed - and builds once pytorch succeeds") {
  Daemon d("max_parallel = 2\n",
           "\n[[repo]]\nname = \"torchvision\"\npath = \"vision\"\nafter = \"pytorch\"\n");
  const std::string pt = "pytorch-python313-cuda13_0-sm90-avx512",
                    tv = "torchvision-python313-cuda13_0-sm90-avx512";
  d.add_sh_recipe(pt, "echo 'foo.cpp:3:1: error: expected ; before }'\nexit 2");
  d.dir().write("vision/.flox/pkgs/" + tv + ".nix", sh_recipe(tv, "mkdir $out", d.nonce()));
  d.start();
  d.client_json({"pause"});
  d.client_json({"queue", pt, tv});
  d.client_json({"resume"});
  REQUIRE(d.client({"wait", pt, "--timeout", "60s"}).exit_code == 1);
  int64_t failed = d.job(pt)["id"];
  std::string held =
      "after #" + std::to_string(failed) + " failed: starts when a build of " + pt + " succeeds";
  REQUIRE(eventually([&] { return d.job(tv)["waiting"] == held; }));
  CHECK(d.job(tv)["state"] == "queued");  // not built against nothing, not failed
  CHECK(d.client({"why", tv}).out.find(held) != std::string::npos);

  // Cancelling the upstream's next build says what happens to what waits for it.
  d.client_json({"pause"});
  d.client_json({"queue", pt});
  json cancelled = d.client_json({"cancel", pt})["jobs"][0];
  CHECK(cancelled["outcome"].get<std::string>().find(
            "#" + std::to_string(d.job(tv)["id"].get<int64_t>()) + " " + tv +
            " waits for it and stays queued until a build of " + pt + " succeeds") != std::string::npos);
  d.client_json({"resume"});

  // Fixed and built: the held job starts by itself.
  d.add_sh_recipe(pt, "mkdir $out");
  d.client_json({"queue", pt});
  REQUIRE(d.client({"wait", pt, "--timeout", "60s"}).exit_code == 0);
  REQUIRE(d.client({"wait", tv, "--timeout", "60s"}).exit_code == 0);
  CHECK(seconds(d.job(tv), "started_at") >= seconds(d.job(pt), "finished_at"));
}

TEST_CASE("builds: a failed build is diagnosed - wait says so - retry builds it again") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo 'foo.cpp:3:1: error: expected ; before }' >&2\nexit 2");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--json"});
  CHECK(waited.exit_code == 1);
  json failed = json::parse(waited.out)["jobs"][0];
  CHECK(failed["state"] == "failed");
  CHECK(failed["exit_code"] == 1);
  CHECK(failed["failure"]["class"] == "builder_failed");
  CHECK(failed["failure"]["message"].get<std::string>().find("foo.cpp:3:1: error") != std::string::npos);

  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir $out");
  json retried = d.client_json({"retry", std::to_string(failed["id"].get<int64_t>())});
  CHECK(retried["jobs"][0]["new"] == true);
  CHECK(d.client({"wait", "cpu-avx2"}).exit_code == 0);
  CHECK(d.job("cpu-avx2")["reason"] == "retry of #" + std::to_string(failed["id"].get<int64_t>()));
  ProcessResult again = d.client({"retry", "cpu-avx2"});
  CHECK(again.exit_code == 0);
}

TEST_CASE("builds: drain starts nothing new and the daemon exits when the running build ends") {
  Daemon d("max_parallel = 1\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", gated(d, "go"));
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return job_in_state(d, "cpu-avx2", "running"); }));
  d.client_json({"queue", "cpu-avx512"});
  CHECK(d.client({"drain"}).exit_code == 0);
  CHECK(d.running());
  open_gate(d, "go");
  CHECK(d.wait_exit() == 0);
  ProcessResult states = run_process({"/usr/bin/sqlite3", d.state() + "/ptbuild.db",
                                      "SELECT v.name || ' ' || j.state FROM jobs j JOIN variants v "
                                      "ON v.id = j.variant_id ORDER BY j.id"});
  CHECK(states.out == "pytorch-python313-cpu-avx2 succeeded\npytorch-python313-cpu-avx512 queued\n");
}

TEST_CASE("builds: the flox backend runs flox build in the repo - untracked recipes are refused") {
  Daemon d("", "");
  std::string flox = source_dir() + "/tests/flox-double/flox";
  std::string config = read_file(d.config_path());
  config.replace(config.find("kind = \"nix\""), 12, "kind = \"flox\"\nprogram = \"" + flox + "\"");
  d.dir().write("ptbuild.toml", config);
  d.dir().write("repo/.flox/env/manifest.toml", "version = 1\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo '[1/1] Building'\nmkdir $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  RunOptions in_repo;
  in_repo.cwd = d.repo();
  REQUIRE(run_process({"/usr/bin/git", "init", "-q"}, in_repo).exit_code == 0);
  REQUIRE(
      run_process({"/usr/bin/git", "add", ".flox/pkgs/pytorch-python313-cpu-avx2.nix", ".flox/env"}, in_repo)
          .exit_code == 0);
  d.start();
  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "60s"});
  json built = d.job("cpu-avx2");
  CHECK(built["state"] == "succeeded");
  CHECK(built["out_path"] ==
        std::filesystem::read_symlink(d.repo() + "/result-pytorch-python313-cpu-avx2").string());
  std::string log = log_text(built["log_path"]);
  CHECK(log.find("Building pytorch-python313-cpu-avx2 in Nix expression mode") != std::string::npos);
  CHECK(log.find("Completed build of pytorch-python313-cpu-avx2 in Nix expression mode") !=
        std::string::npos);
  CHECK(log.find("⚡︎ Built output: ./result-pytorch-python313-cpu-avx2") != std::string::npos);
  json refused = d.job("cpu-avx512");
  CHECK(refused["state"] == "failed");
  CHECK(refused["failure"]["class"] == "eval_error");
  CHECK(refused["failure"]["message"].get<std::string>().find(
            "The Nix expression for 'pytorch-python313-cpu-avx512' does not appear to be tracked by git.") !=
        std::string::npos);
}

TEST_CASE("builds: watch pushes each job's start and end as it happens") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir $out");
  d.start();
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello
  c.send_bytes(R"({"id":9,"op":"watch","args":{}})"
               "\n");
  d.client_json({"queue", "cpu-avx2"});
  std::vector<std::string> states;
  while (states.size() < 2) {
    auto msg = c.json_line(std::chrono::seconds(60));
    REQUIRE(msg);
    CHECK((*msg)["id"] == 9);
    CHECK((*msg)["event"] == "job");
    states.push_back((*msg)["data"]["state"]);
  }
  CHECK(states == std::vector<std::string>{"running", "succeeded"});
}

TEST_CASE("builds: a download that still fails once the retries are spent says so - with Nix's final error") {
  Daemon d("retries = 0\n");
  std::string url = "'https://github.com/NixOS/nixpkgs/archive/9f0c42f8.tar.gz'";
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo \"warning: error: unable to download " + url +
                                                    ": Couldn't resolve host name (6); retrying in 324 ms\"\n"
                                                    "echo \"error: unable to download " +
                                                    url + ": Couldn't resolve host name (6)\"\nexit 1");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code != 0);
  json job = d.job("cpu-avx2");
  CHECK(job["state"] == "failed");
  CHECK(job["failure"]["class"] == "network");
  std::string message = job["failure"]["message"];
  CHECK(message.find("error: unable to download") != std::string::npos);
  CHECK(message.find("retrying in") == std::string::npos);
  std::string hint = job["failure"]["hint"];
  CHECK(hint.find("retries are off (daemon.retries = 0)") != std::string::npos);
  CHECK(hint.find("ptbuild retry " + std::to_string(job["id"].get<int64_t>())) != std::string::npos);
}

TEST_CASE("builds: what the operator said survives a restart - pause, drain, and a job's retry back-off") {
  Daemon d("retry_backoff = \"1h\"\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "echo 'curl: (6) Could not resolve host: download.pytorch.org'\nexit 1");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  // A network failure: queued again, to retry in an hour.
  REQUIRE(eventually([&] {
    json j = d.job("cpu-avx2");
    return j["state"] == "queued" && j["attempt"] == 1 &&
           j["waiting"].get<std::string>().starts_with("back-off until");
  }));
  std::string waiting = d.job("cpu-avx2")["waiting"];
  d.client_json({"pause"});
  d.client_json({"queue", "cpu-avx512"});
  d.signal(SIGTERM);
  REQUIRE(d.wait_exit() == 0);

  d.start();
  // Nothing starts: the daemon is still paused, and the back-off still runs.
  json status = d.client_json({"status", "--json"});
  CHECK(status["scheduler"]["paused"] == true);
  CHECK(d.job("cpu-avx512")["waiting"] == "paused");
  CHECK(d.job("cpu-avx512")["attempt"] == 0);
  CHECK(d.client({"resume"}).exit_code == 0);
  REQUIRE(d.client({"wait", "cpu-avx512", "--timeout", "60s"}).exit_code == 0);
  json backing_off = d.job("cpu-avx2");
  CHECK(backing_off["state"] == "queued");
  CHECK(backing_off["attempt"] == 1);
  CHECK(backing_off["waiting"].get<std::string>().substr(0, 40) == waiting.substr(0, 40));

  // A crash in the middle of a drain: the next start still starts nothing.
  d.add_sh_recipe("pytorch-python313-cpu-avx512bf16", d.wait_for_gate() + "mkdir -p $out");
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("reloaded"));
  d.client_json({"queue", "cpu-avx512bf16"});
  REQUIRE(eventually([&] { return d.job("cpu-avx512bf16")["state"] == "running"; }));
  d.client_json({"drain"});
  d.signal(SIGKILL);
  d.wait_exit();
  d.start();
  CHECK(d.client_json({"status", "--json"})["scheduler"]["draining"] == true);
  CHECK(d.job("cpu-avx512bf16")["state"] == "queued");
  CHECK(d.job("cpu-avx512bf16")["waiting"] == "draining");
  d.open_gate();
  CHECK(d.client({"resume"}).exit_code == 0);
  CHECK(d.client({"wait", "cpu-avx512bf16", "--timeout", "60s"}).exit_code == 0);
}

TEST_CASE(
    "builds: a repo missing at start (not mounted yet) fails nothing: its jobs wait and build when it is back") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.start();
  d.client_json({"pause"});
  d.client_json({"queue", "cpu-avx2"});
  d.signal(SIGTERM);
  REQUIRE(d.wait_exit() == 0);
  std::filesystem::rename(d.repo(), d.dir() / "repo-unmounted");
  ProcessResult check =
      run_process({build_dir() + "/ptbuildd", "--config", d.config_path(), "--check-config"});
  CHECK(check.exit_code == 0);
  CHECK(check.err.find("repo 'pytorch': " + d.repo() + "/.flox/pkgs does not exist (yet)") !=
        std::string::npos);

  d.start();
  d.client_json({"resume"});
  REQUIRE(eventually([&] { return d.job("1")["waiting"].is_string(); }));
  json job = d.job("1");
  CHECK(job["state"] == "queued");
  CHECK(job["waiting"].get<std::string>().starts_with("repo pytorch is missing (" + d.repo() + ")"));
  std::filesystem::rename(d.dir() / "repo-unmounted", d.repo());  // mounted at last
  ProcessResult waited = d.client({"wait", "1", "--timeout", "60s", "--json"});
  CHECK(waited.exit_code == 0);
  CHECK(json::parse(waited.out)["jobs"][0]["state"] == "succeeded");
}

TEST_CASE("builds: status shows a running build's progress as its output moves - asked again and again") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "echo '[3/10] Building CXX object a.o'\n" + d.wait_for_gate() +
                      "echo '[7/10] Building CXX object b.o'\n" + d.wait_for_gate("gate2") + "mkdir -p $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  auto progress = [&]() -> json {
    json status = d.client_json({"status"});
    for (const json& j : status["jobs"])
      if (j["state"] == "running") return j["progress"];
    return nullptr;
  };
  CHECK(eventually([&] { return progress() == json{{"done", 3}, {"total", 10}}; }));
  d.open_gate();
  CHECK(eventually([&] { return progress() == json{{"done", 7}, {"total", 10}}; }));
  d.open_gate("gate2");
  CHECK(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  CHECK(d.client_json({"status"})["jobs"][0]["progress"] == json{{"done", 7}, {"total", 10}});
}
