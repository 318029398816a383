// Fault injection with the real daemon: crashes, a full disk, a build deaf to SIGTERM, a locked
// database, a crowd of clients, clients that leave in the middle.
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {
std::string sqlite(const Daemon& d, const std::string& query) {
  return run_process({"/usr/bin/sqlite3", d.state() + "/ptbuild.db", query}).out;
}
}  // namespace

TEST_CASE(
    "faults: kill -9 again and again during builds and queueing - nothing lost and every job ends once") {
  Daemon d("max_parallel = 2\n");
  std::vector<std::string> names;
  for (const char* isa : {"avx2", "avx512", "avx512bf16", "avx512vnni"})
    for (const char* kind : {"cpu", "cuda13_0-sm90"}) {
      names.push_back(std::string("pytorch-python313-") + kind + "-" + isa);
      d.add_sh_recipe(names.back(), "echo '[1/2] compiling'\nsleep 1\necho '[2/2] linking'\nmkdir $out");
    }
  std::mt19937 rng(7);
  std::set<int64_t> ids;
  for (int round = 0; round < 5; ++round) {
    d.start();
    // Queue traffic while builds run: some new variants, some already queued or running.
    for (int k = 0; k < 3; ++k) {
      ProcessResult q = d.client({"queue", names[rng() % names.size()], "--json"});
      REQUIRE(q.exit_code == 0);
      ids.insert(json::parse(q.out)["jobs"][0]["id"].get<int64_t>());
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(200 + rng() % 800));  // the fault's moment, not an assertion
    d.signal(SIGKILL);
    REQUIRE(d.wait_exit() == 128 + SIGKILL);
  }
  d.start();
  ProcessResult waited = d.client({"wait", "all", "--json", "--timeout", "3m"});
  REQUIRE(waited.exit_code == 0);
  json jobs = d.client_json({"jobs", "--limit", "1000"})["jobs"];
  CHECK(jobs.size() == ids.size());  // every job the clients were told about, no other
  for (const json& j : jobs) {
    CHECK(ids.count(j["id"].get<int64_t>()));
    CHECK(j["state"] == "succeeded");
  }
  // Each job ended exactly once: one terminal event, and its events follow each other.
  std::string terminal =
      sqlite(d,
             "SELECT job_id, count(*) FROM job_events WHERE to_state IN ('succeeded','failed','cancelled') "
             "GROUP BY job_id HAVING count(*) != 1");
  CHECK(terminal.empty());
  std::string broken = sqlite(d,
                              "SELECT e.id FROM job_events e JOIN job_events p ON p.job_id = e.job_id AND "
                              "p.id = (SELECT max(id) FROM job_events WHERE job_id = e.job_id AND id < e.id) "
                              "WHERE e.from_state IS NOT p.to_state");
  CHECK(broken.empty());
}

TEST_CASE("faults: a full disk under the logs fails the build with disk_full and the daemon keeps serving") {
  Daemon d;
  // Output that compresses no better than random bytes: 64 KiB of disk cannot hold its log.
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "head -c 400000 /dev/urandom | base64\nmkdir $out");
  std::filesystem::create_directories(d.state() + "/logs");
  if (::mount("tmpfs", (d.state() + "/logs").c_str(), "tmpfs", 0, "size=64k") != 0) {
    MESSAGE("cannot mount a small tmpfs here (needs root): skipped");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{d.state() + "/logs"};
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  json job = json::parse(d.client({"wait", "cpu-avx2", "--json", "--timeout", "60s"}).out)["jobs"][0];
  CHECK(job["state"] == "failed");
  CHECK(job["failure"]["class"] == "disk_full");
  CHECK(job["failure"]["message"].get<std::string>().find("No space left on device") != std::string::npos);
  CHECK(d.client({"status"}).exit_code == 0);
  CHECK(d.client_json({"matrix"})["variants"].size() == 1);
}

TEST_CASE("faults: a build that ignores SIGTERM is killed after kill_grace with everything it started") {
  Daemon d("kill_grace = \"1s\"\n");
  // A backend program deaf to SIGTERM, with a child that is deaf too; it answers the daemon's
  // probe build at start as a working Nix would, and has no sources to list first.
  std::string deaf = d.dir().write("deaf-nix",
                                   "#!/bin/sh\ncase \"$*\" in *ptbuild-builder-probe*) exit 0;; "
                                   "*\" eval \"*) exit 1;; esac\n"
                                   "trap '' TERM\nsh -c \"trap '' TERM; sleep 300\" &\necho started\nwait\n");
  std::filesystem::permissions(deaf, std::filesystem::perms(0755));
  std::string config = read_file(d.config_path());
  config.replace(config.find("kind = \"nix\""), 12, "kind = \"nix\"\nprogram = \"" + deaf + "\"");
  d.dir().write("ptbuild.toml", config);
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.start();
  int64_t id = d.client_json({"queue", "cpu-avx2"})["jobs"][0]["id"];
  std::string marker = "PTBUILD_JOB=" + std::to_string(id);
  REQUIRE(eventually([&] { return pids_with_env(marker).size() >= 3; }));
  d.client_json({"cancel", std::to_string(id)});
  json job = json::parse(d.client({"wait", std::to_string(id), "--json", "--timeout", "30s"}).out)["jobs"][0];
  CHECK(job["state"] == "cancelled");
  CHECK(job["exit_code"] == 128 + SIGKILL);
  CHECK(eventually([&] { return pids_with_env(marker).empty(); }, std::chrono::seconds(10)));
  CHECK(d.log().find("still alive 1s after SIGTERM: SIGKILL") != std::string::npos);
}

TEST_CASE("faults: a database locked by another process - writes wait - then fail cleanly - then work") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.add_recipe("pytorch-python313-cpu-avx512");
  d.start();
  d.client_json({"pause"});
  auto lock_for = [&](int seconds) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string script = "(echo 'BEGIN EXCLUSIVE;'; sleep " + std::to_string(seconds) +
                           "; echo 'COMMIT;') | /usr/bin/sqlite3 -cmd '.timeout 5000' " + d.state() +
                           "/ptbuild.db";
      ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
      _exit(127);
    }
    return pid;
  };
  // Locked once another writer is refused at once.
  auto locked = [&] {
    ProcessResult r = run_process(
        {"/usr/bin/sqlite3", "-cmd", ".timeout 0", d.state() + "/ptbuild.db", "BEGIN IMMEDIATE; ROLLBACK;"});
    return r.exit_code != 0 && r.err.find("locked") != std::string::npos;
  };
  // Shorter than the daemon's patience: the write waits and succeeds.
  pid_t short_lock = lock_for(2);
  REQUIRE(eventually(locked, std::chrono::seconds(10)));
  ProcessResult q = d.client({"queue", "cpu-avx2", "--json"});
  CHECK(q.exit_code == 0);
  ::waitpid(short_lock, nullptr, 0);
  // Longer: the write gives up with a clear error; the daemon lives on and nothing is half-written.
  pid_t long_lock = lock_for(8);
  REQUIRE(eventually(locked, std::chrono::seconds(10)));
  ProcessResult refused = d.client({"queue", "cpu-avx512", "--json"});
  CHECK(refused.exit_code != 0);
  CHECK_MESSAGE(refused.err.find("locked") != std::string::npos, refused.err);
  ::waitpid(long_lock, nullptr, 0);
  CHECK(d.client({"status"}).exit_code == 0);
  json jobs = d.client_json({"jobs"})["jobs"];
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["state"] == "queued");
}

TEST_CASE("faults: 100 clients queueing the same target at once make exactly one job") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.start();
  d.client_json({"pause"});
  std::vector<std::thread> clients;
  std::vector<ProcessResult> results(100);
  for (int i = 0; i < 100; ++i)
    clients.emplace_back([&, i] { results[i] = d.client({"queue", "cpu-avx2", "--json"}); });
  for (auto& t : clients) t.join();
  int fresh = 0;
  std::set<int64_t> ids;
  for (const ProcessResult& r : results) {
    REQUIRE(r.exit_code == 0);
    json j = json::parse(r.out)["jobs"][0];
    fresh += j["new"].get<bool>();
    ids.insert(j["id"].get<int64_t>());
  }
  CHECK(fresh == 1);
  CHECK(ids.size() == 1);
  CHECK(d.client_json({"jobs"})["jobs"].size() == 1);
}

TEST_CASE("faults: a client that leaves in the middle of log -f disturbs nothing") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo first\nwhile [ ! -e " + d.nonce() +
                                                    "/go ]; do sleep 0.05; done\necho second\nmkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  {
    RawClient c(d.socket());
    REQUIRE(c.json_line());
    c.send_bytes(R"({"id":1,"op":"log","args":{"job":"cpu-avx2","follow":true}})"
                 "\n");
    REQUIRE(c.json_line(std::chrono::seconds(30)));  // a log event: it is following
  }                                                  // gone
  d.dir().write("go", "");
  json job = json::parse(d.client({"wait", "cpu-avx2", "--json", "--timeout", "60s"}).out)["jobs"][0];
  CHECK(job["state"] == "succeeded");
  CHECK(log_text(job["log_path"]).find("second") != std::string::npos);
}

namespace {
int64_t cpu_ticks(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  int64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i >= 14) ticks += std::stoll(field);  // utime + stime
  return ticks;
}
size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// What the daemon is doing, for a failure's report: its state and where it sleeps, its
// descriptors and their limit, and its log.
std::string process_report(pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  std::string out;
  std::istringstream status(read_file(proc + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("State:") || line.starts_with("Threads:")) out += line + "\n";
  out += "wchan: " + read_file(proc + "/wchan") + "\n";
  std::istringstream limits(read_file(proc + "/limits"));
  for (std::string line; std::getline(limits, line);)
    if (line.starts_with("Max open files")) out += line + "\n";
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(proc + "/fd", ec))
    out +=
        fd.path().filename().string() + " -> " + std::filesystem::read_symlink(fd.path(), ec).string() + "\n";
  return out;
}
}  // namespace

TEST_CASE("faults: out of file descriptors the daemon waits instead of spinning, and serves again") {
  // The daemon starts with room for 64 descriptors: its own take ~20, clients the rest.
  Daemon d;
  d.max_open_files = 64;
  d.start();
  INFO("the daemon:\n" << process_report(d.pid()) << "its log:\n" << d.log());  // when a check fails
  // The probe build at start holds descriptors of its own for a moment: let it end first.
  REQUIRE(eventually([&] { return d.log().find("builder local: the probe build") != std::string::npos; }));
  // One client after another until the daemon runs out: each is either greeted, or left waiting
  // while the daemon says why (at most 100; how many fit depends on what the daemon holds).
  auto accept_failed = [&] { return d.log().find("accept failed") != std::string::npos; };
  std::vector<std::unique_ptr<RawClient>> crowd;
  for (int i = 0; i < 100 && !accept_failed(); ++i) {
    crowd.push_back(std::make_unique<RawClient>(d.socket()));
    INFO("client " << crowd.size() << " was neither greeted nor refused");
    REQUIRE(
        eventually([&] { return accept_failed() || crowd.back()->line(std::chrono::seconds(0)).has_value(); },
                   std::chrono::seconds(15)));
  }
  REQUIRE(accept_failed());
  CHECK(crowd.size() > 10);
  CHECK(d.log().find("accept failed: Too many open files; waiting before accepting again") !=
        std::string::npos);
  int64_t before = cpu_ticks(d.pid());
  std::this_thread::sleep_for(
      std::chrono::seconds(2));  // an interval to measure the CPU over, not a wait for an event
  int64_t used = cpu_ticks(d.pid()) - before;
  CHECK(used < 20);  // spinning would take ~200 ticks of these 2 s
  CHECK(count_of(d.log(), "accept failed") == 1);
  crowd.clear();  // their descriptors are free again: the daemon's next try takes the waiting one
  CHECK(eventually([&] { return d.client({"status"}).exit_code == 0; }));
  CHECK(d.log().find("accepting connections again") != std::string::npos);
}

TEST_CASE(
    "faults: 20,000 clients that watch and leave cost no memory - 1,100 at once are capped with a reason") {
  Daemon d;
  d.start();
  std::string hello = "{\"hello\":\"ptbuild\",\"protocol\":1}\n{\"id\":1,\"op\":\"watch\",\"args\":{}}\n";
  auto cycles = [&](int n) {
    for (int i = 0; i < n; ++i) {
      RawClient c(d.socket());
      c.send_bytes(hello);
    }
    REQUIRE(d.client({"status"}).exit_code == 0);  // the daemon has read them all
  };
  cycles(2000);  // warm up: allocator pools, first-time structures
  int64_t before = rss_kib(d.pid());
  cycles(20000);
  int64_t after = rss_kib(d.pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB");
  if (kMemoryFiguresMeaningful) CHECK(after - before < 4 * 1024);  // ~1.1 KB each would be ~22 MB

  rlimit nofile{8192, 8192};
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &nofile) == 0);
  REQUIRE(
      run_process({"/usr/bin/prlimit", "--pid", std::to_string(d.pid()), "--nofile=8192:8192"}).exit_code ==
      0);
  std::vector<std::unique_ptr<RawClient>> crowd;
  for (int i = 0; i < 1100; ++i) crowd.push_back(std::make_unique<RawClient>(d.socket()));
  int refused = 0, greeted = 0;
  for (auto& c : crowd) {
    auto first = c->json_line(std::chrono::seconds(10));
    if (!first) continue;
    if (first->contains("hello"))
      ++greeted;
    else if ((*first)["error"]["code"] == "busy")
      ++refused;
  }
  CHECK(greeted == 1024);
  CHECK(refused == 1100 - 1024);
  crowd.clear();
  ProcessResult r = d.client({"status"});
  CHECK(r.exit_code == 0);
}

TEST_CASE(
    "faults: 150 clients that ask for a log and never read share one output budget - the daemon stays small") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "seq 1 900000\nmkdir -p $out");  // ~6 MB of log
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  rlimit nofile{4096, 4096};
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &nofile) == 0);
  REQUIRE(
      run_process({"/usr/bin/prlimit", "--pid", std::to_string(d.pid()), "--nofile=4096:4096"}).exit_code ==
      0);
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 150; ++i) {
    stalled.push_back(std::make_unique<RawClient>(d.socket()));
    stalled.back()->send_bytes(
        "{\"hello\":\"ptbuild\",\"protocol\":1}\n{\"id\":1,\"op\":\"log\",\"args\":{\"job\":\"cpu-avx2\"}}\n");
  }
  REQUIRE(eventually(
      [&] { return d.log().find("for all clients); closing its connection") != std::string::npos; }));
  if (kMemoryFiguresMeaningful) CHECK(rss_kib(d.pid()) < 256 * 1024);  // 150 × 6 MB would be 900 MB
  CHECK(d.client({"status"}).exit_code == 0);
}
