// Logs that a 200 MB PyTorch build cannot break (issue: everything on disk as it comes, zstd):
// real Nix builds that print 100 MB, followers that stop reading, a daemon killed mid-build,
// and builds that yield the CPU to the daemon.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

constexpr size_t kMiB = 1024 * 1024;

// Prints ~100 MB of varied build lines as fast as it can (coreutils, no shell loop), then
// `after`, then waits for the gate, then `finally`.
std::string flood(const Daemon& d, const std::string& after, const std::string& finally) {
  return "seq 1 1100000 | sed 's|.*|[&/1100000] Building CXX object caffe2/CMakeFiles/torch_cpu.dir/aten/src/ATen/op_&.cpp.o|'\n"
         "echo '" +
         after + "'\n" + d.wait_for_gate() + finally;
}

bool log_has(const std::string& path, const std::string& text) {
  return log_text(path).find(text) != std::string::npos;
}

// A daemon building one flood (see flood()), queued; returns the job's log path.
std::string start_flood(Daemon& d, const std::string& after, const std::string& finally) {
  d.add_sh_recipe("pytorch-python313-cpu-avx2", flood(d, after, finally));
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  return d.job("cpu-avx2")["log_path"];
}

}  // namespace

TEST_CASE(
    "logs: a build that prints 100 MB then fails - all of it on disk as it comes, the final error kept") {
  Daemon d;
  std::string path =
      start_flood(d, "flood printed", "echo 'FATAL: ptbuild test, the last line says why'\nexit 1");
  CHECK(path.ends_with(".log.zst"));
  // While the build still runs, the file has everything it printed: far past 64 MiB of text.
  REQUIRE(eventually([&] { return log_has(path, "flood printed"); }, std::chrono::seconds(120)));
  std::string text = log_text(path);
  CHECK(text.size() > 64 * kMiB);
  CHECK(text.find("[1100000/1100000] Building CXX object") != std::string::npos);
  CHECK(std::filesystem::file_size(path) * 8 < text.size());  // compressed

  d.open_gate();
  json job = json::parse(d.client({"wait", "cpu-avx2", "--json", "--timeout", "2m"}).out)["jobs"][0];
  CHECK(job["state"] == "failed");
  CHECK(job["failure"]["excerpt"].get<std::string>().find("FATAL: ptbuild test, the last line says why") !=
        std::string::npos);
  ProcessResult tail = d.client({"log", "cpu-avx2", "--tail", "5"});
  CHECK(tail.exit_code == 0);
  CHECK(tail.out.find("FATAL: ptbuild test, the last line says why") != std::string::npos);
  CHECK(tail.out.size() < 4096);
  // The whole log through the daemon, as a client that reads it all.
  ProcessResult all = d.client({"log", "cpu-avx2"});
  CHECK(all.out.size() > 100 * 1000 * 1000);
  CHECK(all.out.find("[777777/1100000] Building CXX object") != std::string::npos);
}

TEST_CASE("logs: kill -9 of the daemon mid-build keeps what the build printed before the crash") {
  Daemon d;
  std::string path = start_flood(d, "printed before the crash", "echo 'after the restart'\nmkdir -p $out");
  // On disk by itself (the daemon flushes each second), without a reader asking for it.
  REQUIRE(eventually([&] { return log_has(path, "printed before the crash"); }, std::chrono::seconds(120)));
  d.signal(SIGKILL);
  d.wait_exit();
  std::string after_crash = log_text(path);
  CHECK(after_crash.find("printed before the crash") != std::string::npos);
  CHECK(after_crash.size() > 64 * kMiB);

  d.start();  // the job runs again (attempt 2) and appends to the same log
  REQUIRE(eventually([&] { return d.job("cpu-avx2")["attempt"] == 2; }));
  d.open_gate();
  // The client gives up after its own 3m, not the harness' default minute: attempt 2 floods the
  // log again first, which under ASan on a loaded machine took longer than a minute.
  RunOptions patient;
  patient.timeout = std::chrono::seconds(200);
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--json", "--timeout", "3m"}, patient);
  CHECK(waited.exit_code == 0);
  std::string text = log_text(path);
  CHECK(text.find("printed before the crash") < text.find("attempt 2"));
  CHECK(text.find("after the restart") != std::string::npos);
  CHECK(d.client({"log", "cpu-avx2", "--tail", "3"}).out.find("after the restart") != std::string::npos);
}

TEST_CASE(
    "logs: ten log -f followers that stop reading do not grow the daemon's memory, and catch up later") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", flood(d, "flood printed", "echo 'the end'\nmkdir -p $out"));
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  int64_t before = rss_kib(d.pid());
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 10; ++i) {
    stalled.push_back(std::make_unique<RawClient>(d.socket()));
    stalled.back()->send_bytes(
        "{\"hello\":\"ptbuild\",\"protocol\":1}\n{\"id\":1,\"op\":\"log\",\"args\":"
        "{\"job\":\"cpu-avx2\",\"follow\":true}}\n");
  }
  std::string path = d.job("cpu-avx2")["log_path"];
  int64_t most = 0;
  REQUIRE(eventually(
      [&] {
        most = std::max(most, rss_kib(d.pid()));
        return log_has(path, "flood printed");
      },
      std::chrono::seconds(120)));
  most = std::max(most, rss_kib(d.pid()));
  INFO("daemon RSS before " << before << " KiB, at most " << most << " KiB");
  // Each follower holds at most its window (1 MiB) and a chunk; 10 of them, and slack.
  if (kMemoryFiguresMeaningful) CHECK(most - before < 24 * 1024);
  CHECK(d.client({"status"}).exit_code == 0);

  d.open_gate();
  REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "2m"}).exit_code == 0);
  // One of them reads now: it gets the whole log, in order, then the job.
  RawClient& reader = *stalled.front();
  size_t bytes = 0;
  std::string last_text;
  std::optional<json> reply;
  while (auto line = reader.json_line(std::chrono::seconds(30))) {
    if (line->contains("event")) {
      last_text = (*line)["data"]["text"];
      bytes += last_text.size();
    } else if (line->contains("ok")) {
      reply = line;
      break;
    }
  }
  REQUIRE(reply);
  INFO(reply->dump());
  CHECK((*reply)["result"]["job"]["state"] == "succeeded");
  CHECK(bytes == log_text(path).size());
  CHECK(last_text.find("the end") != std::string::npos);
}

TEST_CASE("logs: builds run at a lower CPU and I/O priority than the daemon, and so do their children") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo started\n" + d.wait_for_gate() + "mkdir -p $out");
  d.start();
  int64_t id = d.client_json({"queue", "cpu-avx2"})["jobs"][0]["id"];
  std::vector<pid_t> nix, builder;
  REQUIRE(eventually([&] {
    nix = pids_with_env("PTBUILD_JOB=" + std::to_string(id));
    builder = pids_with_nonce(d.nonce());
    return !nix.empty() && !builder.empty();
  }));
  auto stat_field = [](pid_t pid, int field) {  // fields of /proc/PID/stat after the command name
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string value;
    for (int i = 3; i <= field; ++i) rest >> value;
    return value;
  };
  CHECK(stat_field(d.pid(), 19) == "0");
  for (pid_t pid : {nix.front(), builder.front()}) {
    CAPTURE(pid);
    CHECK(stat_field(pid, 19) == "10");  // nice
    CHECK(stat_field(pid, 41) == "5");   // SCHED_IDLE
    CHECK(run_process({"/usr/bin/ionice", "-p", std::to_string(pid)}).out == "best-effort: prio 7\n");
  }
  d.open_gate();
  CHECK(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
}

TEST_CASE(
    "logs: tail -f follows a running build's plain copy beside its zstd log - it goes when the build ends") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo 'first line'\n" + d.wait_for_gate() +
                                                    "echo 'second line'\n" + d.wait_for_gate("gate2") +
                                                    "mkdir -p $out");
  d.start();
  int64_t id = d.client_json({"queue", "cpu-avx2"})["jobs"][0]["id"];
  std::string live = d.state() + "/logs/" + std::to_string(id) + ".live.log";
  REQUIRE(eventually([&] { return std::filesystem::exists(live); }));
  std::string followed = d.dir() / "followed.txt";
  pid_t tail = ::fork();
  if (tail == 0) {
    std::string cmd = "exec /usr/bin/tail -n +1 -f " + live + " > " + followed;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  CHECK(eventually([&] { return read_file(followed).find("first line") != std::string::npos; }));
  d.open_gate();
  CHECK(eventually([&] { return read_file(followed).find("second line") != std::string::npos; }));
  ::kill(tail, SIGKILL);
  ::waitpid(tail, nullptr, 0);
  d.open_gate("gate2");
  CHECK(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(live));
  CHECK(eventually(
      [&] { return !std::filesystem::exists(live + ".ended"); }));  // removed right after, by an rm
  CHECK(log_text(d.job("cpu-avx2")["log_path"]).find("second line") != std::string::npos);
}

TEST_CASE(
    "logs: with daemon.live_log = false a running build keeps no plain text on disk - its log and log --tail still have every line") {
  Daemon d("live_log = false\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "seq 1 700000\necho 'first line'\n" + d.wait_for_gate() +
                                                    "echo 'second line'\nmkdir -p $out");
  d.start();
  int64_t id = d.client_json({"queue", "cpu-avx2"})["jobs"][0]["id"];
  REQUIRE(eventually([&] {
    return d.client({"log", "cpu-avx2", "--tail", "5"}).out.find("first line") != std::string::npos;
  }));
  // The build appends to its live file, and what the daemon has taken from it is punched out:
  // ~5 MB printed, at most the last megabyte step still on disk.
  struct stat st {};
  REQUIRE(::stat((d.state() + "/logs/" + std::to_string(id) + ".live.log").c_str(), &st) == 0);
  CHECK(st.st_size > 4 * static_cast<off_t>(kMiB));
  CHECK(st.st_blocks * 512 <= 2 * static_cast<off_t>(kMiB));
  d.open_gate();
  CHECK(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  std::string text = log_text(d.job("cpu-avx2")["log_path"]);
  for (const char* line : {"> 1\n", "> 350000\n", "> 700000\n"})  // as Nix's -L prefixes them
    CHECK(text.find(line) < text.find("first line"));
  CHECK(text.find("first line") < text.find("second line"));
  CHECK(text.find("second line") != std::string::npos);
}

TEST_CASE(
    "logs: after a crash, a build whose log already shows its failure is diagnosed from the disk, not rebuilt") {
  Daemon d;
  d.add_sh_recipe(
      "pytorch-python313-cuda13_0-sm90-avx512",
      "echo '-- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR)'\necho '--   USE_CUDA : OFF'\n" +
          d.wait_for_gate() + "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "echo 'a build with nothing wrong so far'\n" + d.wait_for_gate() + "mkdir -p $out");
  d.start();
  d.client_json({"queue", "all"});
  std::string gpu_log = d.job("sm90-avx512")["log_path"], cpu_log = d.job("cpu-avx2")["log_path"];
  REQUIRE(
      eventually([&] { return log_has(gpu_log, "USE_CUDA : OFF") && log_has(cpu_log, "nothing wrong"); }));
  d.signal(SIGKILL);
  d.wait_exit();
  d.start();
  json gpu = d.job("sm90-avx512");
  CHECK(gpu["state"] == "failed");
  CHECK(gpu["attempt"] == 1);
  CHECK(gpu["failure"]["class"] == "cuda_not_found");
  CHECK(gpu["failure"]["message"].get<std::string>().find("read from its log after ptbuildd restarted") !=
        std::string::npos);
  // A log that settles nothing: that build runs again.
  REQUIRE(eventually([&] { return d.job("cpu-avx2")["attempt"] == 2; }));
  d.open_gate();
  CHECK(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
}
