// The real daemon on a temp socket, driven by the real client.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {
void add_matrix(Daemon& d) {
  for (const char* n : {"pytorch-python313-cuda12_8-sm90-avx512", "pytorch-python313-cuda12_9-sm90-avx512",
                        "pytorch-python313-cuda13_0-sm90-avx512", "pytorch-python313-cuda13_1-sm90-avx512",
                        "pytorch-python313-cuda13_0-sm120-avx2", "pytorch-python313-cpu-avx2",
                        "pytorch-python313-darwin-mps", "cudatoolkit-13_0"})
    d.add_recipe(n);
  d.dir().write("repo/.flox/pkgs/lib/mkPyTorchCUDA.nix", "{ }: { }\n");
  d.dir().write("repo/.flox/pkgs/torchvision-python311-cuda12_8-sm61-avx/default.nix", "{ }: { }\n");
}

json find_variant(const json& matrix, const std::string& name) {
  for (const json& v : matrix["variants"])
    if (v["name"] == name) return v;
  return nullptr;
}
}  // namespace

TEST_CASE("matrix: the daemon scans the recipes and reports every variant's axes") {
  Daemon d;
  add_matrix(d);
  d.start();
  json m = d.client_json({"matrix"});
  CHECK(m["variants"].size() == 9);  // the helper under lib/ is not a package
  json v = find_variant(m, "pytorch-python313-cuda13_0-sm90-avx512");
  CHECK(v["repo"] == "pytorch");
  CHECK(v["family"] == "pytorch");
  CHECK(v["python"] == "3.13");
  CHECK(v["cuda"] == "13_0");
  CHECK(v["gpu_arch"] == "sm90");
  CHECK(v["isa"] == "avx512");
  CHECK(v["extra"].is_null());
  CHECK(v["platform"] == "x86_64-linux");
  CHECK(v["recipe"] == ".flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix");
  CHECK(v["last_job"].is_null());
  json tv = find_variant(m, "torchvision-python311-cuda12_8-sm61-avx");
  CHECK(tv["recipe"] == ".flox/pkgs/torchvision-python311-cuda12_8-sm61-avx/default.nix");
  json odd = find_variant(m, "cudatoolkit-13_0");
  CHECK(odd["family"].is_null());
  CHECK(odd["cuda"].is_null());
  CHECK(find_variant(m, "pytorch-python313-darwin-mps")["platform"] == "darwin");

  ProcessResult human = d.client({"matrix"});
  CHECK(human.exit_code == 0);
  CHECK(human.out.find("pytorch python3.13 cuda13_0") != std::string::npos);
  CHECK(human.out.find("sm120") != std::string::npos);
  CHECK(human.out.find("\x1b[") == std::string::npos);  // no colour when not on a terminal
}

TEST_CASE("queue: dedupe - ambiguity - unknown targets and what status/jobs/show then say") {
  Daemon d;
  add_matrix(d);
  d.start();
  d.client_json({"pause"});  // these jobs are only looked at, not built

  json q = d.client_json({"queue", "cpu-avx2", "sm120-*", "--priority", "5", "--reason", "first try"});
  REQUIRE(q["jobs"].size() == 2);
  for (const json& j : q["jobs"]) {
    CHECK(j["state"] == "queued");
    CHECK(j["new"] == true);
  }
  CHECK(q["jobs"][0]["variant"] == "pytorch-python313-cpu-avx2");  // in name order
  CHECK(q["jobs"][1]["variant"] == "pytorch-python313-cuda13_0-sm120-avx2");
  int64_t cpu_id = q["jobs"][0]["id"];

  // Queueing again returns the queued job.
  json again = d.client_json({"queue", "pytorch-python313-cpu-avx2"});
  CHECK(again["jobs"][0]["id"] == cpu_id);
  CHECK(again["jobs"][0]["new"] == false);
  // In words: the state once, and whether the job was already there.
  ProcessResult human = d.client({"queue", "cpu-avx2"});
  CHECK(human.out.find("queued  queued") == std::string::npos);
  CHECK(human.out.find("#" + std::to_string(cpu_id)) != std::string::npos);
  CHECK(human.out.find("(an existing job)") != std::string::npos);

  // An ambiguous alias lists the candidates and queues nothing.
  ProcessResult amb = d.client({"queue", "sm90-avx512", "cpu-avx2"});
  CHECK(amb.exit_code == 2);
  for (const char* cuda : {"cuda12_8", "cuda12_9", "cuda13_0", "cuda13_1"})
    CHECK(amb.err.find(std::string("pytorch-python313-") + cuda + "-sm90-avx512") != std::string::npos);
  ProcessResult unknown = d.client({"queue", "sm75-avx2", "--json"});
  CHECK(unknown.exit_code == 2);
  CHECK(json::parse(unknown.out)["error"]["code"] == "unknown_target");
  CHECK(unknown.err.find("sm75-avx2") != std::string::npos);

  json jobs = d.client_json({"jobs"});
  CHECK(jobs["jobs"].size() == 2);
  json status = d.client_json({"status"});
  CHECK(status["jobs"].size() == 2);
  json only = d.client_json({"status", "cpu-avx2"});
  REQUIRE(only["jobs"].size() == 1);
  CHECK(only["jobs"][0]["variant"] == "pytorch-python313-cpu-avx2");

  json shown = d.client_json({"show", std::to_string(cpu_id)});
  for (const char* key :
       {"id", "variant", "repo", "kind", "state", "priority", "reason", "attempt", "created_at", "started_at",
        "finished_at", "exit_code", "progress", "failure", "fixes", "verify", "out_path", "log_path"})
    CHECK_MESSAGE(shown.contains(key), key);
  CHECK(shown["priority"] == 5);
  CHECK(shown["reason"] == "first try");
  CHECK(shown["kind"] == "build");
  CHECK(shown["log_path"] == d.state() + "/logs/" + std::to_string(cpu_id) + ".log.zst");
  CHECK(shown["created_at"].get<std::string>().ends_with("Z"));
  CHECK(d.client_json({"show", "pytorch-python313-cpu-avx2"})["id"] == cpu_id);
  ProcessResult missing = d.client({"show", "999"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("no job 999") != std::string::npos);

  json matrix = d.client_json({"matrix"});
  CHECK(find_variant(matrix, "pytorch-python313-cpu-avx2")["last_state"] == "queued");
  CHECK(find_variant(matrix, "pytorch-python313-cpu-avx2")["last_job"] == cpu_id);

  ProcessResult table = d.client({"status"});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("pytorch-python313-cpu-avx2") != std::string::npos);
  CHECK(table.out.find("STATE") != std::string::npos);
}

TEST_CASE("default_cuda decides an ambiguous alias") {
  Daemon d("", "default_cuda = \"13_0\"\n");
  add_matrix(d);
  d.start();
  json q = d.client_json({"queue", "sm90-avx512"});
  REQUIRE(q["jobs"].size() == 1);
  CHECK(q["jobs"][0]["variant"] == "pytorch-python313-cuda13_0-sm90-avx512");
}

TEST_CASE("the client says which socket it could not reach - exit 3") {
  TempDir dir;
  ProcessResult r = run_process({build_dir() + "/ptbuild", "--socket", dir / "nope.sock", "status"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(dir / "nope.sock") != std::string::npos);
  RunOptions env_socket;
  env_socket.env["PTBUILD_SOCKET"] = dir / "env.sock";
  r = run_process({build_dir() + "/ptbuild", "status", "--json"}, env_socket);
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(dir / "env.sock") != std::string::npos);
  CHECK(json::parse(r.out)["error"]["code"] == "unreachable");
}

TEST_CASE("bad usage is exit 2 with help - --help works everywhere") {
  std::string ptbuild = build_dir() + "/ptbuild";
  CHECK(run_process({ptbuild, "frobnicate"}).exit_code == 2);
  CHECK(run_process({ptbuild}).exit_code == 2);
  CHECK(run_process({ptbuild, "queue", "--priority"}).exit_code == 2);
  ProcessResult bad_prio =
      run_process({ptbuild, "--socket", "/nonexistent", "queue", "x", "--priority", "high"});
  CHECK(bad_prio.exit_code == 2);
  CHECK(bad_prio.err.find("--priority needs a whole number") != std::string::npos);
  for (const char* cmd : {"queue", "status", "jobs", "show", "matrix"}) {
    ProcessResult h = run_process({ptbuild, cmd, "--help"});
    CHECK(h.exit_code == 0);
    CHECK(h.out.find(std::string("usage: ptbuild ") + cmd) != std::string::npos);
  }
  ProcessResult top = run_process({ptbuild, "--help"});
  CHECK(top.exit_code == 0);
  CHECK(top.out.find("commands:") != std::string::npos);
  CHECK(run_process({build_dir() + "/ptbuildd", "--help"}).exit_code == 0);
  CHECK(run_process({build_dir() + "/ptbuildd", "--bogus"}).exit_code == 2);
}

TEST_CASE("--check-config prints the effective config or names the key and line") {
  TempDir dir;
  std::string ptbuildd = build_dir() + "/ptbuildd";
  dir.write("good.toml", "[daemon]\nmax_parallel = 3\n");
  ProcessResult ok = run_process({ptbuildd, "--config", dir / "good.toml", "--check-config"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("max_parallel = 3") != std::string::npos);
  CHECK(ok.out.find("build_timeout = '6h'") != std::string::npos);

  dir.write("bad.toml", "[daemon]\nmax_parallel = 3\nbuild_timeout = \"6 hours\"\n");
  ProcessResult bad = run_process({ptbuildd, "--config", dir / "bad.toml", "--check-config"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find(dir / "bad.toml:3: daemon.build_timeout: bad duration \"6 hours\"") !=
        std::string::npos);

  // Lookup order: $PTBUILD_CONFIG, then ./ptbuild.toml.
  RunOptions via_env;
  via_env.env["PTBUILD_CONFIG"] = dir / "good.toml";
  CHECK(run_process({ptbuildd, "--check-config"}, via_env).out.find("max_parallel = 3") != std::string::npos);
  dir.write("cwd/ptbuild.toml", "[daemon]\nmax_parallel = 7\n");
  RunOptions in_cwd;
  in_cwd.cwd = dir / "cwd";
  in_cwd.env["PTBUILD_CONFIG"] = "";
  CHECK(run_process({ptbuildd, "--check-config"}, in_cwd).out.find("max_parallel = 7") != std::string::npos);
  // The commented example that ships with ptbuild is itself a valid config.
  CHECK(run_process({ptbuildd, "--config", source_dir() + "/config/ptbuildd.toml", "--check-config"})
            .exit_code == 0);
  ProcessResult missing = run_process({ptbuildd, "--config", dir / "none.toml", "--check-config"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("none.toml") != std::string::npos);
}

TEST_CASE("SIGHUP rescans the recipes - SIGTERM stops cleanly and the jobs survive a restart") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.start();
  CHECK(d.client_json({"matrix"})["variants"].size() == 1);
  d.client_json({"pause"});
  d.client_json({"queue", "cpu-avx2"});

  d.add_recipe("pytorch-python313-cpu-avx512");
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("STATUS=reloaded"));
  CHECK(d.client_json({"matrix"})["variants"].size() == 2);

  d.signal(SIGTERM);
  CHECK(d.wait_notify("STOPPING=1"));  // systemd hears of the stop
  CHECK(d.wait_exit() == 0);
  CHECK_FALSE(std::filesystem::exists(d.socket()));  // a clean stop removes its socket

  d.start();
  json jobs = d.client_json({"jobs"});
  REQUIRE(jobs["jobs"].size() == 1);
  CHECK(jobs["jobs"][0]["variant"] == "pytorch-python313-cpu-avx2");
}

TEST_CASE("a second daemon on the same state folder is refused") {
  Daemon d;
  d.start();
  ProcessResult second = run_process({build_dir() + "/ptbuildd", "--config", d.config_path()});
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("already running") != std::string::npos);
  CHECK(second.err.starts_with("["));  // a timestamp on a terminal or in a file
  // Under systemd (JOURNAL_STREAM set) the journal gets each line's syslog level instead.
  RunOptions journal;
  journal.env["JOURNAL_STREAM"] = "8:12345";
  ProcessResult journald = run_process({build_dir() + "/ptbuildd", "--config", d.config_path()}, journal);
  CHECK(journald.exit_code == 1);
  CHECK(journald.err.starts_with("<2>another ptbuildd is already running"));
  CHECK(d.client({"status"}).exit_code == 0);
}

TEST_CASE("a database from a newer ptbuild stops the daemon with a clear message") {
  Daemon d;
  std::filesystem::create_directories(d.state());
  ProcessResult made =
      run_process({"/usr/bin/sqlite3", d.state() + "/ptbuild.db", "PRAGMA user_version = 99;"});
  REQUIRE(made.exit_code == 0);
  ProcessResult r = run_process({build_dir() + "/ptbuildd", "--config", d.config_path()});
  CHECK(r.exit_code == 78);  // an operator must act: systemd does not restart it
  CHECK(r.err.find("schema version 99") != std::string::npos);
}

namespace {
// A group and users made for one test (groupadd/useradd), removed after it.
struct TestUsers {
  std::string group = "ptbuild-t-admins";
  std::string member = "ptbuild-t-member", outsider = "ptbuild-t-outsider";
  bool made = false;
  TestUsers() {
    remove();
    made = run_process({"/usr/sbin/groupadd", group}).exit_code == 0 &&
           run_process({"/usr/sbin/useradd", "-M", "-N", "-g", group, member}).exit_code == 0 &&
           run_process({"/usr/sbin/useradd", "-M", "-U", outsider}).exit_code == 0;
  }
  ~TestUsers() { remove(); }
  void remove() {
    run_process({"/usr/sbin/userdel", member});
    run_process({"/usr/sbin/userdel", outsider});
    run_process({"/usr/sbin/groupdel", outsider});
    run_process({"/usr/sbin/groupdel", group});
  }
  RunOptions as(const std::string& name) const {
    passwd* pw = ::getpwnam(name.c_str());
    REQUIRE(pw);
    return {.as_uid = pw->pw_uid, .as_gid = pw->pw_gid};
  }
};
}  // namespace

TEST_CASE(
    "the socket is 0660 with the admin group: a member may change things, others are refused and told why") {
  if (::geteuid() != 0) {
    MESSAGE("not root: the users of this test cannot be made");
    return;
  }
  TestUsers users;
  REQUIRE(users.made);
  Daemon d("admin_group = \"" + users.group + "\"\n");
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.start();
  struct stat st {};
  REQUIRE(::stat(d.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(st.st_gid == ::getgrnam(users.group.c_str())->gr_gid);
  ::chmod(d.dir().path().c_str(), 0755);
  ::chmod((d.dir() / "run").c_str(), 0755);

  RunOptions member = users.as(users.member);
  CHECK(d.client({"status", "--json"}, member).exit_code == 0);
  CHECK(d.client({"pause"}, member).exit_code == 0);
  ProcessResult queued = d.client({"queue", "cpu-avx2", "--json"}, member);
  CHECK(queued.exit_code == 0);
  int64_t id = json::parse(queued.out)["jobs"][0]["id"];
  CHECK(d.client({"cancel", std::to_string(id)}, member).exit_code == 0);
  CHECK(d.client({"resume"}, member).exit_code == 0);

  ProcessResult outsider = d.client({"status"}, users.as(users.outsider));
  CHECK(outsider.exit_code == 3);
  CHECK(outsider.err.find("Permission denied") != std::string::npos);
  CHECK(outsider.err.find("members of its admin group '" + users.group + "'") != std::string::npos);
  CHECK(d.job(std::to_string(id))["state"] == "cancelled");
}

TEST_CASE("folders: an existing socket folder keeps its mode, a state folder of another user is refused") {
  TempDir shared;
  ::chmod(shared.path().c_str(), 01777);  // like /tmp
  Daemon d;
  std::string config = read_file(d.config_path());
  const std::string old_socket = "socket = \"run/ptbuildd.sock\"";
  config.replace(config.find(old_socket), old_socket.size(),
                 "socket = \"" + shared.path() + "/ptbuildd.sock\"");
  d.dir().write("ptbuild.toml", config);
  d.start();
  struct stat st {};
  REQUIRE(::stat(shared.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01777);
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);

  if (::geteuid() != 0) return;
  REQUIRE(::chown(d.state().c_str(), 65534, 65534) == 0);
  ProcessResult r = run_process({build_dir() + "/ptbuildd", "--config", d.config_path()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("the state folder " + d.state() + " belongs to nobody") != std::string::npos);
}

TEST_CASE("hostile names and silent daemons: escape codes are not printed raw, -- ends options, no hang") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.add_recipe(
      "pytorch-python313-cpu-avx2\x1b]0;owned\x07\x1b[2J");  // a file name that would drive the terminal
  d.start();
  for (std::vector<std::string> args :
       {std::vector<std::string>{"matrix"}, {"queue", "all"}, {"status"}, {"jobs"}}) {
    ProcessResult r = d.client(args);
    CAPTURE(args.front());
    CHECK(r.out.find('\x1b') == std::string::npos);
    CHECK(r.err.find('\x1b') == std::string::npos);
  }
  CHECK(d.client({"matrix"}).out.find("\\x1b[2J") != std::string::npos);  // shown, not obeyed
  // "--" ends the options: what follows is a target even if it starts with "-".
  ProcessResult dashes = d.client({"queue", "--priority", "3", "--", "cpu-avx2"});
  CHECK(dashes.exit_code == 0);
  ProcessResult dash_target = d.client({"queue", "--", "--force"});
  CHECK(dash_target.exit_code == 2);
  CHECK(dash_target.err.find("'--force'") != std::string::npos);

  // Something that accepts connections and never answers: the client gives up and says so.
  TempDir dir;
  int silent = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir / "silent.sock";
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(silent, 8) == 0);
  ProcessResult hung = run_process({build_dir() + "/ptbuild", "--socket", path, "status"},
                                   {.env = {{"PTBUILD_TIMEOUT", "2"}}, .timeout = std::chrono::seconds(30)});
  ::close(silent);
  CHECK(hung.exit_code == 3);
  CHECK(hung.err.find("no answer from " + path + " within 2 s") != std::string::npos);
}

TEST_CASE(
    "daemon: the matrix follows the repo without a SIGHUP - a new recipe appears, a deleted one vanishes") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir $out");
  d.commit_recipes();
  d.start();
  auto tracked = [&](const std::string& name) {
    json matrix = d.client_json({"matrix"});
    for (const json& v : matrix["variants"])
      if (v["name"] == name) return v["tracked"];
    return json("absent");
  };
  auto names = [&] {
    std::set<std::string> out;
    json matrix = d.client_json({"matrix"});
    for (const json& v : matrix["variants"]) out.insert(v["name"].get<std::string>());
    return out;
  };
  REQUIRE(names() == std::set<std::string>{"pytorch-python313-cpu-avx2", "pytorch-python313-cpu-avx512"});
  d.add_sh_recipe("pytorch-python313-cuda13_0-sm90-avx512", "mkdir $out");
  std::filesystem::remove(d.repo() + "/.flox/pkgs/pytorch-python313-cpu-avx2.nix");
  CHECK(eventually(
      [&] {
        return names() == std::set<std::string>{"pytorch-python313-cpu-avx512",
                                                "pytorch-python313-cuda13_0-sm90-avx512"};
      },
      std::chrono::seconds(30)));
  CHECK(d.log().find("the recipes changed on disk: the matrix follows") != std::string::npos);
  // The new recipe is not in git yet: marked, because flox would refuse it.
  CHECK(eventually([&] { return tracked("pytorch-python313-cuda13_0-sm90-avx512") == false; },
                   std::chrono::seconds(30)));
  CHECK(tracked("pytorch-python313-cpu-avx512") == true);
  CHECK(d.client({"matrix"}).out.find("! recipe not tracked by git (flox refuses it)") != std::string::npos);
  // The new one builds like any other.
  d.client_json({"queue", "sm90-avx512"});
  CHECK(d.client({"wait", "sm90-avx512", "--timeout", "60s"}).exit_code == 0);
}

TEST_CASE(
    "status: asked again and again within a second, it shows every change at once - queue, pause, cancel, resume") {
  Daemon d;
  add_matrix(d);
  d.start();
  // An unfiltered `status` is served again while nothing it shows has changed: each change below
  // comes within the same second as the answer before it, and must show in the next one.
  auto status = [&] { return d.client_json({"status"}); };
  auto job_state = [](const json& s, int64_t id) {
    for (const json& j : s["jobs"])
      if (j["id"] == id) return j["state"].get<std::string>();
    return std::string("absent");
  };
  d.client_json({"pause"});
  CHECK(status()["scheduler"]["paused"] == true);
  CHECK(status() == status());  // nothing changed: the same answer
  int64_t id = d.client_json({"queue", "cpu-avx2"})["jobs"][0]["id"];
  json s = status();
  CHECK(job_state(s, id) == "queued");
  for (const json& j : s["jobs"])
    if (j["id"] == id) CHECK(j["waiting"].get<std::string>().find("paused") != std::string::npos);
  d.client_json({"cancel", std::to_string(id)});
  CHECK(job_state(status(), id) == "cancelled");
  d.client_json({"resume"});
  CHECK(status()["scheduler"]["paused"] == false);
  // Filtered by target, the same jobs as the whole status shows for them.
  CHECK(job_state(d.client_json({"status", "cpu-avx2"}), id) == "cancelled");
}
