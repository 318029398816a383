// Regression tests for the second hardening round (docs/RELIABILITY.md): each provokes a finding
// with the real daemon, real Nix, real HTTP, and checks what a user would.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/netns_builder.h"
#include "tests/support/web_client.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

const std::string kWeb = "\n[web]\nlisten = \"127.0.0.1:0\"\nhosts = [\"ptbuild.lan\"]\n";

uint16_t start_with_web(Daemon& d) {
  d.start();
  uint16_t port = 0;
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
  return port;
}

HttpResponse get_as(uint16_t port, const std::string& target, const std::string& host) {
  return http_raw(port, "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
}

// The socket's answer to one raw request line.
json raw_reply(Daemon& d, const std::string& line) {
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello
  c.send_bytes(line + "\n");
  auto reply = c.json_line();
  REQUIRE(reply);
  return *reply;
}

}  // namespace

TEST_CASE("hardening: a page of another site rebound to 127.0.0.1 gets 421, not the jobs (DNS rebinding)") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo built\nmkdir -p $out");
  uint16_t port = start_with_web(d);
  d.client_json({"queue", "cpu-avx2"});

  HttpResponse rebound = get_as(port, "/api/jobs", "attacker.example:" + std::to_string(port));
  CHECK(rebound.status == 421);
  CHECK(rebound.body.find("attacker.example") != std::string::npos);
  CHECK(rebound.body.find("cpu-avx2") == std::string::npos);
  CHECK(get_as(port, "/metrics", "attacker.example").status == 421);
  CHECK(http_raw(port, "GET /api/jobs HTTP/1.1\r\nConnection: close\r\n\r\n").status == 421);  // no Host

  for (std::string host :
       {"127.0.0.1:" + std::to_string(port), std::string("localhost"), std::string("ptbuild.lan")}) {
    CAPTURE(host);
    HttpResponse ok = get_as(port, "/api/jobs", host);
    CHECK(ok.status == 200);
    CHECK(ok.body.find("cpu-avx2") != std::string::npos);
  }
}

TEST_CASE("hardening: HEAD of an event stream answers its headers and ends") {
  Daemon d("", kWeb);
  uint16_t port = start_with_web(d);
  // It streamed forever before: this read only returns once the server closes.
  HttpResponse head =
      http_raw(port, "HEAD /events/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", std::chrono::seconds(10));
  CHECK(head.status == 200);
  CHECK(head.headers["content-type"] == "text/event-stream");
  CHECK(head.body.empty());
}

TEST_CASE("hardening: a reload that turns the dashboard off closes it - one that turns it on opens it") {
  Daemon d("", kWeb);
  uint16_t port = start_with_web(d);
  REQUIRE(http_get(port, "/api/status").status == 200);

  auto rewrite_listen = [&](const std::string& from, const std::string& to) {
    std::ifstream in(d.config_path());
    std::stringstream text;
    text << in.rdbuf();
    std::string config = text.str();
    size_t at = config.find(from);
    REQUIRE(at != std::string::npos);
    config.replace(at, from.size(), to);
    std::ofstream(d.config_path()) << config;
  };
  rewrite_listen("listen = \"127.0.0.1:0\"", "listen = \"\"");
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("reloaded"));
  CHECK_THROWS_WITH(http_get(port, "/api/status"),
                    doctest::Contains("cannot connect"));  // it answered before
  CHECK(d.log().find("reload: web dashboard off") != std::string::npos);

  rewrite_listen("listen = \"\"", "listen = \"127.0.0.1:0\"");
  std::string before = d.log();
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("reloaded"));
  uint16_t again = 0;
  REQUIRE(eventually([&] { return (again = dashboard_port(d.log().substr(before.size()))) != 0; }));
  CHECK(http_get(again, "/api/status").status == 200);
}

TEST_CASE("hardening: numbers out of range are refused with the range, on the command line and the socket") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo line\nmkdir -p $out");
  d.start();

  // 3000000000 was stored as -1294967296, the lowest priority.
  ProcessResult priority = d.client({"queue", "cpu-avx2", "--priority", "3000000000"});
  CHECK(priority.exit_code == 2);
  CHECK(priority.err.find("--priority must be between -1000000 and 1000000, got 3000000000") !=
        std::string::npos);
  CHECK(d.client_json({"jobs"})["jobs"].empty());  // nothing was queued
  json raw = raw_reply(d, R"({"id":1,"op":"queue","args":{"targets":["cpu-avx2"],"priority":3000000000}})");
  CHECK(raw["error"]["code"] == "bad_request");
  CHECK(raw["error"]["message"] ==
        "argument \"priority\" must be between -1000000 and 1000000, got 3000000000");

  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code == 0);
  // tail -5 returned the whole log.
  CHECK(d.client({"log", "cpu-avx2", "--tail", "-5"}).exit_code == 2);
  json tail = raw_reply(d, R"({"id":2,"op":"log","args":{"job":1,"tail":-5}})");
  CHECK(tail["error"]["message"] == "argument \"tail\" must be between 0 and 1000000000, got -5");

  // Request id 2^64-1 was echoed as -1.
  json huge = raw_reply(d, R"({"id":18446744073709551615,"op":"status"})");
  CHECK(huge["id"].dump() == "18446744073709551615");
  CHECK(huge["error"]["code"] == "bad_request");

  // The largest id is looked up as an id, not as a variant of that name.
  ProcessResult largest = d.client({"show", "9223372036854775807"});
  CHECK(largest.exit_code != 0);
  CHECK(largest.err.find("no job 9223372036854775807") != std::string::npos);
  ProcessResult past = d.client({"show", "99999999999999999999"});
  CHECK(past.exit_code == 2);
  CHECK(past.err.find("is past the largest id") != std::string::npos);
}

TEST_CASE("hardening: the builds a builder did survive a restart of the daemon") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "exit 1");
  d.start();
  d.client_json({"queue", "cpu-avx2", "cpu-avx512"});
  d.client({"wait", "cpu-avx2", "cpu-avx512", "--timeout", "60s"});
  auto done_of_local = [&] {
    json builders = d.client_json({"builders"});
    for (const json& b : builders["builders"])
      if (b["name"] == "local") return b["done"].get<int>();
    return -1;
  };
  CHECK(done_of_local() == 2);
  d.signal(SIGTERM);
  REQUIRE(d.wait_exit() == 0);
  d.start();
  CHECK(done_of_local() == 2);  // was 0
}

TEST_CASE("hardening: a recipe named in Latin-1 leaves /metrics valid for promtool") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.add_sh_recipe("caf\xe9-python313-cpu-avx2", "mkdir -p $out");  // "café" in Latin-1: not UTF-8
  uint16_t port = start_with_web(d);
  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "60s"});
  HttpResponse r = http_get(port, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("caf\xe9") == std::string::npos);
  CHECK(r.body.find("caf\xef\xbf\xbd") != std::string::npos);
  REQUIRE(::access("/usr/bin/promtool", X_OK) ==
          0);  // Debian's prometheus: the README's test command installs it
  TempDir dir;
  std::ofstream(dir / "metrics") << r.body;
  ProcessResult check = run_process({"/bin/sh", "-c", "promtool check metrics < " + (dir / "metrics")});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

TEST_CASE("hardening: a recipe's own 'Permission denied' under /nix is the recipe's failure, once") {
  Daemon d;
  // setuptools' words, printed by the build: Nix shows them as "name> error: …".
  d.add_sh_recipe(
      "pytorch-python313-cpu-avx2",
      "echo \"error: could not create '/nix/store/0000-numpy-2.1.0/lib/_build': Permission denied\" "
      ">&2\nexit 1");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.start();
  d.client_json({"queue", "cpu-avx2", "cpu-avx512"});
  d.client({"wait", "cpu-avx2", "cpu-avx512", "--timeout", "60s"});
  json job = d.job("cpu-avx2");
  CHECK(job["state"] == "failed");
  CHECK(job["attempt"] == 1);  // retried without limit before (attempt 9 after 3 minutes)
  CHECK(job["failure"]["class"] != "nix_setup");
  CHECK(d.job("cpu-avx512")["state"] == "succeeded");
  json builders = d.client_json({"builders"});
  CHECK(builders["builders"][0]["state"] == "up");  // it was taken down for the recipe's words
}

TEST_CASE(
    "hardening: a machine failure that follows one job is failed as the recipe's, and blames no one else") {
  Daemon d("builder_backoff = \"1s\"\n");
  // Words that are the machine's (a full disk) each time this recipe runs, whatever the disk has.
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo 'write error: No space left on device' >&2\nexit 1");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--timeout", "120s"});
  INFO(d.log());
  CHECK(waited.exit_code != 0);
  json job = d.job("cpu-avx2");
  CHECK(job["state"] == "failed");
  CHECK(job["attempt"] == 3);  // bounded: three tries on the one builder
  CHECK(job["failure"]["class"] == "builder_failed");
  CHECK(job["failure"]["message"].get<std::string>().starts_with("disk_full at every attempt"));
  CHECK(job["failure"]["hint"].get<std::string>().find("followed the job") != std::string::npos);
  // Another job builds on the same builder afterwards.
  d.client_json({"queue", "cpu-avx512"});
  CHECK(d.client({"wait", "cpu-avx512", "--timeout", "60s"}).exit_code == 0);
}

TEST_CASE(
    "hardening: a builder that claims a system it cannot build is taken down, and the job builds elsewhere") {
  if (std::string why = NetnsBuilder::unavailable(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  TempDir space;
  // liar: an x86 Nix that says it builds aarch64-linux; arm: one that does (extra-platforms).
  NetnsBuilder liar(space, "liar", 21), arm(space, "arm", 22, "extra-platforms = aarch64-linux");
  Daemon d("builder_backoff = \"2s\"\n",
           liar.config(1, {"aarch64-linux"}) + arm.config(1, {"aarch64-linux"}));
  auto recipe = [&](const std::string& name) {
    return "{ }:\nderivation {\n  name = \"" + name +
           "\";\n  system = \"aarch64-linux\";\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n  nonce = \"" +
           d.nonce() + "\";\n  args = [ \"-c\" \"cat /nix/builder-name > $out\" ];\n}\n";
  };
  d.add_recipe("pytorch-python313-cpu-armv8_2", recipe("one"));
  d.add_recipe("pytorch-python313-cpu-armv9", recipe("two"));
  d.start();
  d.client_json({"queue", "cpu-armv8_2", "cpu-armv9"});
  ProcessResult waited = d.client({"wait", "cpu-armv8_2", "cpu-armv9", "--timeout", "3m"});
  INFO(d.log());
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  for (const char* v : {"cpu-armv8_2", "cpu-armv9"}) {
    json job = d.job(v);
    CHECK(job["builder"] == "arm");
    CHECK(read_file(job["out_path"]) == "arm\n");
    CHECK(job["failure"].is_null());  // never a failure of the variant
  }
  json builders = d.client_json({"builders"});
  for (const json& b : builders["builders"]) {
    if (b["name"] != "liar") continue;
    CHECK(b["state"] != "up");
    std::string error = b["last_error"];
    bool named =
        error.find("claims aarch64-linux but its Nix builds only x86_64-linux") != std::string::npos ||
        error.find("but I am a 'x86_64-linux'") != std::string::npos;
    CHECK_MESSAGE(named, error);
  }
}

TEST_CASE("hardening: a listing longer than a page comes in pages, on the socket and over HTTP") {
  Daemon d("", kWeb);
  d.run_once();
  // 2,499 more jobs in the history, as months of nightlies leave.
  ProcessResult insert = run_process(
      {"/usr/bin/sqlite3", d.state() + "/ptbuild.db",
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2499) "
       "INSERT INTO jobs (variant_id, kind, state, created_at) "
       "SELECT (SELECT variant_id FROM jobs LIMIT 1), 'build', 'cancelled', '2026-01-01T00:00:00.000Z' FROM n;"});
  REQUIRE_MESSAGE(insert.exit_code == 0, insert.err);
  uint16_t port = 0;
  size_t first_run = d.log().size();
  d.start();
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log().substr(first_run))) != 0; }));

  // One reply never carries more than a page; it says where the next begins.
  json page = raw_reply(d, R"({"id":1,"op":"jobs","args":{"limit":1000000}})")["result"];
  CHECK(page["jobs"].size() == 1000);
  CHECK(page["next_before"] == page["jobs"][999]["id"]);
  json web = json::parse(http_get(port, "/api/jobs?limit=1000000").body);
  CHECK(web["jobs"].size() == 1000);
  CHECK(web["next_before"] == page["next_before"]);
  json small = raw_reply(d, R"({"id":2,"op":"jobs","args":{"limit":10}})")["result"];
  CHECK(small["jobs"].size() == 10);
  CHECK_FALSE(small.contains("next_before"));

  // The client walks the pages: every job once, newest first ("closed the connection" before).
  json all = d.client_json({"jobs", "--limit", "1000000"});
  REQUIRE(all["jobs"].size() == 2500);
  for (size_t i = 1; i < all["jobs"].size(); ++i)
    REQUIRE(all["jobs"][i]["id"].get<int64_t>() < all["jobs"][i - 1]["id"].get<int64_t>());
  CHECK(d.client_json({"jobs", "--limit", "1500"})["jobs"].size() == 1500);
  ProcessResult table = d.client({"jobs", "--limit", "1200"});
  CHECK(table.exit_code == 0);
  CHECK(std::count(table.out.begin(), table.out.end(), '\n') >= 1200);
}

namespace {
// The processes `pid` started that still run, and its open descriptors.
int children_of(pid_t pid) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;  // not a process
    std::string stat = read_proc_file(entry.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == pid && state != "Z") ++n;
  }
  return n;
}
int descriptors_of(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}
}  // namespace

TEST_CASE("hardening: a thousand builders are probed a few at a time, after the socket listens") {
  TempDir files;
  std::string machines;
  for (int i = 0; i < 1000; ++i)  // loopback addresses nobody listens on: each probe fails at once
    machines += "ssh-ng://root@127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250) +
                " x86_64-linux - 1\n";
  std::string machines_file = files.write("machines", machines);
  Daemon d("builders_file = \"" + machines_file + "\"\nbuilder_backoff = \"1s\"\n");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  d.start();
  CHECK(d.client({"status"}).exit_code == 0);  // the socket first (it came after 1,000 probes)
  int most_children = 0, most_fds = 0;
  for (int sample = 0; sample < 60; ++sample) {  // 6 s: the first round and the ones after back-off
    most_children = std::max(most_children, children_of(d.pid()));
    most_fds = std::max(most_fds, descriptors_of(d.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  MESSAGE("most processes at once: " << most_children << ", most descriptors: " << most_fds);
  CHECK(most_children <= 16 + 2);  // 1,000 `nix store ping` at once before (1,924 descriptors)
  CHECK(most_fds < 200);
  CHECK(d.client_json({"builders"})["builders"].size() >= 1000);
  CHECK(d.log().find("Too many open files") == std::string::npos);
  CHECK(d.client({"status"}).exit_code == 0);
}

TEST_CASE("hardening: floods of idle event streams and trickled headers never keep a fresh page out") {
  rlimit nofile{4096, 4096};
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &nofile) == 0);
  Daemon d("", kWeb);
  uint16_t port = start_with_web(d);
  // 260 pages watching, never reading (they took all 256 connections before: every new one was reset).
  std::vector<std::unique_ptr<EventStream>> watchers;
  for (int i = 0; i < 260; ++i) watchers.push_back(std::make_unique<EventStream>(port, "/events/watch"));
  // 300 connections that send half a request and then nothing (slowloris: 1 in 38 probes passed).
  std::vector<int> trickling;
  for (int i = 0; i < 300; ++i) {
    trickling.push_back(connect_loopback(port));
    send_all(trickling.back(), "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  }
  int answered = 0;
  for (int probe = 0; probe < 20; ++probe) answered += http_get(port, "/api/status").status == 200;
  CHECK(answered == 20);
  CHECK(http_get(port, "/").status == 200);  // the page itself
  CHECK(d.client({"status"}).exit_code == 0);
  for (int fd : trickling) ::close(fd);
}

TEST_CASE("hardening: a builder frozen mid-build is taken down and the job builds elsewhere, not failed") {
  if (std::string why = NetnsBuilder::unavailable(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  TempDir space;
  NetnsBuilder first(space, "first", 23), second(space, "second", 24);
  Daemon d("max_silent = \"4s\"\nbuilder_backoff = \"10m\"\n",
           first.config(1, {"x86_64-linux"}) + second.config(1, {"x86_64-linux"}));
  // Speaks every second for 20 s, then leaves the name of the builder it ran on.
  std::string started = d.nonce() + "/started";
  d.add_recipe(
      "pytorch-python313-cpu-avx2",
      "{ }:\nderivation {\n  name = \"chatty\";\n  system = \"x86_64-linux\";\n  builder = \"/bin/sh\";\n"
      "  PATH = \"/bin:/usr/bin\";\n  args = [ \"-c\" ''\n    cat /nix/builder-name > " +
          started +
          "\n    i=0; while [ $i -lt 20 ]; do echo tick $i; sleep 1; i=$((i+1)); done\n"
          "    cat /nix/builder-name > $out\n  '' ];\n}\n");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return !read_file(started).empty(); }, std::chrono::seconds(120)));
  std::string frozen_name = read_file(started);
  frozen_name.pop_back();
  NetnsBuilder& frozen = frozen_name == "first" ? first : second;
  frozen.signal_all(SIGSTOP);  // it failed as `timeout` before, and the next job went there too
  ProcessResult waited = d.client({"wait", "cpu-avx2", "--timeout", "3m"});
  frozen.signal_all(SIGCONT);
  INFO(d.log());
  REQUIRE_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  json job = d.job("cpu-avx2");
  std::string other = frozen_name == "first" ? "second" : "first";
  CHECK(job["builder"] == other);
  CHECK(job["attempt"] == 2);
  CHECK(read_file(job["out_path"]) == other + "\n");
  json builders = d.client_json({"builders"})["builders"];
  auto lost =
      std::find_if(builders.begin(), builders.end(), [&](const json& b) { return b["name"] == frozen_name; });
  REQUIRE_MESSAGE(lost != builders.end(), builders.dump());
  CHECK((*lost)["state"] != "up");
  CHECK((*lost)["last_error"].get<std::string>().find("stopped answering") != std::string::npos);
  CHECK(log_text(job["log_path"]).find("stopped answering") != std::string::npos);
}

namespace {
// A connection to the dashboard from `source` (another loopback address: another client).
int connect_from(const char* source, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &from.sin_addr);
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  return fd;
}
// Whether the server has closed `fd` (what it sent is read and dropped), waiting up to `ms`.
bool closed_by_server(int fd, int ms) {
  char buffer[4096];
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 50);
  }
}
}  // namespace

TEST_CASE("hardening: one client address takes at most 64 connections, and only its own are closed") {
  Daemon d("", kWeb);
  uint16_t port = start_with_web(d);
  int mine = connect_from("127.0.0.1", port);  // a page that was there first
  send_all(mine, "GET /events/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::vector<int> flood;
  for (int i = 0; i < 70; ++i) {
    flood.push_back(connect_from("127.0.0.2", port));
    send_all(flood.back(), "GET /events/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  }
  int open = 0;
  for (int fd : flood) open += !closed_by_server(fd, 300);
  CHECK(open == 64);                         // its oldest six were closed for its newest
  CHECK_FALSE(closed_by_server(mine, 300));  // the other client's stream is untouched
  CHECK(http_get(port, "/api/status").status == 200);
  for (int fd : flood) ::close(fd);
  ::close(mine);
}
