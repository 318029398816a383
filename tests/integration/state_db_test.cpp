// The state database when it cannot be used (docs/concepts.md, docs/jobs.md): read-only, damaged, locked or
// on a full disk at start each end in one line that names the file and what to do; while running, a write
// that fails loses no job.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

ProcessResult start_daemon(Daemon& d, const RunOptions& o = {}) {
  RunOptions with_nix = o;
  for (const auto& [k, v] : nix_test_env()) with_nix.env[k] = v;
  return run_process({build_dir() + "/ptbuildd", "--config", d.config_path()}, with_nix);
}

// The daemon's stderr ends in one critical line; returns it.
std::string last_line(const std::string& err) {
  std::string text = err.substr(0, err.find_last_not_of('\n') + 1);
  return text.substr(text.rfind('\n') + 1);
}

}  // namespace

TEST_CASE("state database: a read-only ptbuild.db is refused at start with what to do (exit 78, no abort)") {
  REQUIRE(::getuid() == 0);
  Daemon d;
  d.run_once();
  // The daemon's user (nobody here) owns its folders but may not write the database file.
  for (const char* p : {"state", "state/logs", "state/results", "state/ptbuildd.lock", "run"})
    REQUIRE(::chown((d.dir() / p).c_str(), 65534, 65534) == 0);
  REQUIRE(::chmod((d.state() + "/ptbuild.db").c_str(), 0644) == 0);
  ProcessResult r = start_daemon(d, {.as_uid = 65534, .as_gid = 65534, .timeout = std::chrono::seconds(20)});
  INFO(r.err);
  CHECK(r.exit_code == 78);
  std::string line = last_line(r.err);
  CHECK(line.find(d.state() + "/ptbuild.db") != std::string::npos);
  CHECK(line.find("readonly") != std::string::npos);
  CHECK(line.find("must be able to write") != std::string::npos);
  CHECK(r.err.find("terminate called") == std::string::npos);
}

TEST_CASE("state database: a damaged ptbuild.db is refused at start, not written further") {
  Daemon d;
  d.run_once();
  std::string db = d.state() + "/ptbuild.db";
  SUBCASE("damage in the middle of the file") {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);  // the whole second page, a table's
    std::string junk(4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  SUBCASE("a file that is not a database at all") {
    std::ofstream(db, std::ios::binary | std::ios::trunc) << std::string(8192, 'x');
  }
  auto before = std::filesystem::last_write_time(db);
  ProcessResult r = start_daemon(d, {.timeout = std::chrono::seconds(20)});
  INFO(r.err);
  CHECK(r.exit_code == 78);
  std::string line = last_line(r.err);
  CHECK(line.find(db) != std::string::npos);
  CHECK(line.find("is damaged") != std::string::npos);
  CHECK(line.find(".recover") != std::string::npos);
  CHECK(std::filesystem::last_write_time(db) == before);
}

TEST_CASE(
    "state database: locked by another process at start: a clear line, exit 1 so that systemd tries again") {
  Daemon d;
  d.run_once();
  std::string db = d.state() + "/ptbuild.db";
  // An sqlite3 shell holding the write lock longer than the daemon waits (5 s).
  pid_t holder = ::fork();
  if (holder == 0) {
    ::setpgid(0, 0);  // the shell and its sqlite3 are killed together
    // Its own busy timeout: the probe below may hold the lock for a moment when it begins.
    std::string script = "(echo 'BEGIN EXCLUSIVE;'; sleep 30) | /usr/bin/sqlite3 -cmd '.timeout 10000' " + db;
    ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
    _exit(127);
  }
  REQUIRE(eventually([&] {
    return run_process({"/usr/bin/sqlite3", "-cmd", ".timeout 0", db, "BEGIN IMMEDIATE; ROLLBACK;"})
               .exit_code != 0;
  }));
  ProcessResult r = start_daemon(d);
  ::kill(-holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  CHECK(r.exit_code == 1);
  std::string line = last_line(r.err);
  CHECK(line.find(db) != std::string::npos);
  CHECK(line.find("another process holds a lock") != std::string::npos);
  // Once the lock is gone, the daemon starts with its history.
  d.start();
  CHECK(d.job("cpu-avx2")["state"] == "succeeded");
}

TEST_CASE("state database: a full disk at start and while running - no crash, no job lost") {
  REQUIRE(::getuid() == 0);
  Daemon d;
  std::filesystem::create_directories(d.state());
  if (::mount("tmpfs", d.state().c_str(), "tmpfs", 0, "size=1m") != 0) {
    MESSAGE("cannot mount a small tmpfs here (needs root): skipped");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{d.state()};
  auto fill = [&] {
    std::ofstream f(d.state() + "/filler", std::ios::binary);
    std::string block(64 * 1024, 'f');
    for (int i = 0; i < 64 && f.write(block.data(), static_cast<std::streamsize>(block.size())); ++i)
      f.flush();
  };
  auto make_room = [&] { std::filesystem::remove(d.state() + "/filler"); };

  for (const char* p : {"logs", "results"}) std::filesystem::create_directories(d.state() + "/" + p);
  // The logs on a disk of their own, with room: a build's live log is space reserved while it
  // runs and freed when it ends, which would make room on a shared disk just before the outcome
  // is written. Here the database's disk is the full one.
  REQUIRE(::mount("tmpfs", (d.state() + "/logs").c_str(), "tmpfs", 0, "size=16m") == 0);
  Unmount unmount_logs{d.state() + "/logs"};
  fill();
  ProcessResult refused = start_daemon(d);
  CHECK(refused.exit_code == 1);
  CHECK(last_line(refused.err).find("is full") != std::string::npos);
  make_room();

  // While running: a build ends while the disk is full; the daemon keeps serving and the job
  // ends once there is room again.
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "while [ ! -e " + d.nonce() + "/go ]; do sleep 0.05; done\nmkdir -p $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  // Its builder runs (the job is running from the moment its sources are listed, before that).
  REQUIRE(eventually([&] { return !pids_with_nonce(d.nonce()).empty(); }));
  fill();
  d.dir().write("go", "");
  REQUIRE(eventually([&] { return d.log().find("cannot record that it succeeded") != std::string::npos; }));
  CHECK(d.client({"status"}).exit_code == 0);
  make_room();
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--timeout", "60s", "--json"});
  CHECK(waited.exit_code == 0);
  CHECK(json::parse(waited.out)["jobs"][0]["state"] == "succeeded");
  CHECK(d.running());
}

TEST_CASE(
    "state database: lost between two runs, its ids start again - no new job writes into an old job's log") {
  Daemon d;
  d.run_once();
  std::string old_log = log_text(d.state() + "/logs/1.log.zst");
  REQUIRE(old_log.find("attempt 1") != std::string::npos);
  for (const char* f : {"ptbuild.db", "ptbuild.db-wal", "ptbuild.db-shm"})
    std::filesystem::remove(d.state() + "/" + f);
  // And a symlink planted where the next log would go, pointing at a file that must stay as it is.
  std::string victim = d.dir().write("victim.txt", "precious\n");
  std::filesystem::create_directories(d.state() + "/logs");
  std::filesystem::rename(d.state() + "/logs/1.log.zst", d.state() + "/logs/1.log.zst.kept");
  std::filesystem::create_symlink(victim, d.state() + "/logs/1.log.zst");
  d.start();
  json job = d.client_json({"queue", "cpu-avx2"})["jobs"][0];
  CHECK(job["id"] == 1);
  REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  CHECK(read_file(victim) == "precious\n");
  std::string log = d.state() + "/logs/1.log.zst";
  CHECK_FALSE(std::filesystem::is_symlink(log));
  CHECK(log_text(log).find("attempt 1") != std::string::npos);
  CHECK(d.log().find("moved to " + log + ".stale-") != std::string::npos);
}

TEST_CASE(
    "state database: deleted while the daemon runs, it is written back - replaced, the daemon stops and says why") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.start();
  d.client_json({"pause"});
  d.client_json({"queue", "cpu-avx2"});
  std::string db = d.state() + "/ptbuild.db";
  for (const char* f : {"", "-wal", "-shm"}) std::filesystem::remove(db + f);
  REQUIRE(eventually(
      [&] { return d.log().find("was deleted while ptbuildd ran; written back") != std::string::npos; }));
  CHECK(std::filesystem::exists(db));
  CHECK(d.client_json({"queue", "cpu-avx512"})["jobs"][0]["id"] == 2);  // ids go on
  d.signal(SIGTERM);
  REQUIRE(d.wait_exit() == 0);
  d.start();
  CHECK(d.job("1")["variant"] == "pytorch-python313-cpu-avx2");
  CHECK(d.job("2")["variant"] == "pytorch-python313-cpu-avx512");

  // Another database put in its place (a restore under the running daemon).
  TempDir other;
  REQUIRE(run_process({"/usr/bin/sqlite3", other / "ptbuild.db", "CREATE TABLE t(x);"}).exit_code == 0);
  std::filesystem::rename(other / "ptbuild.db", db);
  CHECK(d.wait_exit() == 78);
  CHECK(d.log().find(db + " was replaced by another file while ptbuildd ran; stopping") != std::string::npos);
}
