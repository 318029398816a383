// The dashboard and metrics (docs/web.md) with the real daemon, real Nix builds, promtool and a real
// headless Chromium.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/web_client.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

const std::string kWeb = "\n[web]\nlisten = \"127.0.0.1:0\"\n";

uint16_t start_with_web(Daemon& d) {
  d.start();
  uint16_t port = 0;
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
  return port;
}

// What the socket answers for `op` with `args`.
json socket_result(Daemon& d, const std::string& op, const json& args = json::object()) {
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello
  c.send_bytes(json{{"id", 1}, {"op", op}, {"args", args}}.dump() + "\n");
  auto reply = c.json_line();
  REQUIRE(reply);
  return (*reply)["result"];
}

std::string gate(const Daemon& d, const std::string& name) {
  return "while [ ! -e " + d.nonce() + "/" + name + " ]; do sleep 0.05; done\n";
}
void open_gate(const Daemon& d, const std::string& name) {
  std::ofstream(d.nonce() + "/" + name) << "";
}

}  // namespace

TEST_CASE(
    "web: /api/<op> answers what the socket answers - nothing that changes things - bad requests get their status") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo built\nmkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512",
                  "echo 'c++: fatal error: Killed signal terminated program cc1plus'\nexit 1");
  uint16_t port = start_with_web(d);
  d.client_json({"queue", "cpu-avx2", "cpu-avx512"});
  REQUIRE(d.client({"wait", "cpu-avx2", "cpu-avx512"}).exit_code != 0);  // one fails

  for (auto [target, op, args] : {std::tuple{"/api/matrix", "matrix", json::object()},
                                  std::tuple{"/api/jobs?limit=10", "jobs", json{{"limit", 10}}},
                                  std::tuple{"/api/jobs?state=failed", "jobs", json{{"state", "failed"}}},
                                  std::tuple{"/api/show?job=1", "show", json{{"job", 1}}},
                                  std::tuple{"/api/show?job=cpu-avx2", "show", json{{"job", "cpu-avx2"}}},
                                  std::tuple{"/api/status", "status", json::object()},
                                  std::tuple{"/api/fixes", "fixes", json::object()}}) {
    INFO(target);
    HttpResponse r = http_get(port, target);
    CHECK(r.status == 200);
    CHECK(r.headers["content-type"] == "application/json");
    CHECK(json::parse(r.body) == socket_result(d, op, args));
  }

  // Nothing that changes anything is served, whatever the method.
  size_t jobs_before = d.client_json({"jobs"})["jobs"].size();
  HttpResponse queue = http_get(port, "/api/queue?targets=cpu-avx2");
  CHECK(queue.status == 403);
  CHECK(queue.body.find("changes things") != std::string::npos);
  HttpResponse post = http_raw(
      port,
      "POST /api/queue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  CHECK(post.status == 405);
  CHECK(post.headers["allow"] == "GET, HEAD");
  CHECK(http_get(port, "/api/cancel?jobs=1").status == 403);
  CHECK(d.client_json({"jobs"})["jobs"].size() == jobs_before);
  CHECK(d.job("cpu-avx2")["state"] == "succeeded");

  HttpResponse missing = http_get(port, "/api/show?job=999");
  CHECK(missing.status == 404);
  CHECK(json::parse(missing.body)["error"]["code"] == "not_found");
  CHECK(http_get(port, "/api/jobs?state=sleepy").status == 400);
  CHECK(http_get(port, "/nothing/here").status == 404);
  CHECK(http_get(port, "/api/../metrics").status == 400);
  CHECK(http_get(port, "/api/log?job=1").status == 400);  // answers with events: /events/log
  HttpResponse huge =
      http_raw(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(huge.status == 431);
  CHECK(http_raw(port, "NONSENSE\r\n\r\n").status == 400);
  HttpResponse body = http_raw(
      port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'b'));
  CHECK(body.status == 413);

  // The page and its parts; HEAD has the length and no body.
  HttpResponse page = http_get(port, "/");
  CHECK(page.status == 200);
  CHECK(page.headers["content-type"] == "text/html; charset=utf-8");
  CHECK(page.body.find("<script src=\"/app.js\"") != std::string::npos);
  CHECK(http_get(port, "/app.js").headers["content-type"] == "text/javascript; charset=utf-8");
  HttpResponse head =
      http_raw(port, "HEAD /app.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(std::stoul(head.headers["content-length"]) > 100);
  CHECK(head.body.empty());
  // Keep-alive: two requests on one connection, two answers.
  HttpResponse two = http_raw(
      port,
      "GET /api/fixes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/fixes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(two.status == 200);
  CHECK(two.body.find("HTTP/1.1 200 OK") != std::string::npos);
  // The daemon is still fine after all that.
  CHECK(d.client({"status"}).exit_code == 0);
}

TEST_CASE(
    "web: the dashboard port taken - the daemon builds on and says why there is no page - an empty listen turns it off") {
  Daemon first("", kWeb);
  uint16_t port = start_with_web(first);
  Daemon second("", "\n[web]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  second.add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  second.start();
  CHECK(second.log().find("web dashboard off: cannot listen on 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
  second.client_json({"queue", "cpu-avx2"});
  CHECK(second.client({"wait", "cpu-avx2"}).exit_code == 0);
  Daemon off;  // the harness writes listen = ""
  off.start();
  CHECK(off.log().find("web dashboard") == std::string::npos);
}

TEST_CASE(
    "web: /metrics passes promtool and counts jobs, failures by class, repairs, builders and log bytes") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo built\nmkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512",
                  "echo 'c++: fatal error: Killed signal terminated program cc1plus'\nexit 1");
  d.add_fake_hash_recipe("pytorch-python313-cuda13_0-sm90-avx512");
  d.commit_recipes();
  uint16_t port = start_with_web(d);
  d.client_json({"queue", "cpu-avx2", "cpu-avx512", "sm90-avx512"});
  d.client({"wait", "cpu-avx2", "cpu-avx512", "sm90-avx512"});
  HttpResponse r = http_get(port, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
  INFO(r.body);
  if (::access("/usr/bin/promtool", X_OK) == 0) {
    TempDir dir;
    std::ofstream(dir / "metrics") << r.body;
    ProcessResult check = run_process({"/bin/sh", "-c", "promtool check metrics < " + (dir / "metrics")});
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
  } else {
    MESSAGE("promtool not installed (Debian's prometheus package): the format is not checked by it");
  }
  auto has = [&](const std::string& line) { CHECK(r.body.find("\n" + line + "\n") != std::string::npos); };
  has("ptbuild_jobs{state=\"succeeded\"} 2");
  has("ptbuild_jobs{state=\"failed\"} 1");
  has("ptbuild_jobs{state=\"queued\"} 0");
  has("ptbuild_failures_total{class=\"out_of_memory\"} 1");
  has("ptbuild_hash_repairs_total 1");
  has("ptbuild_builder_slots{builder=\"local\"} 2");
  has("ptbuild_builder_up{builder=\"local\"} 1");
  has("ptbuild_build_duration_seconds_count{family=\"pytorch\"} 3");
  // What the builds' cgroups measured, as a histogram a family.
  has("# TYPE ptbuild_build_peak_memory_bytes histogram");
  CHECK(r.body.find("\nptbuild_build_peak_memory_bytes_count{family=\"pytorch\"} ") != std::string::npos);
  size_t at = r.body.find("\nptbuild_log_bytes_written_total ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoull(r.body.substr(at + 33)) > 0);
}

TEST_CASE(
    "web: event streams follow a build's log live and end with its reply - refusals come in the protocol's words") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "echo 'first line'\n" + gate(d, "gate") + "echo 'second line'\nmkdir -p $out");
  uint16_t port = start_with_web(d);
  EventStream watch(port, "/events/watch");
  CHECK(watch.status() == 200);
  d.client_json({"queue", "cpu-avx2"});
  json started = json::parse(watch.next());
  CHECK(started["event"] == "job");
  CHECK(started["data"]["state"] == "running");

  EventStream log(port, "/events/log?job=1&follow=true");
  std::string seen;
  while (seen.find("first line") == std::string::npos) {
    std::string e = log.next();
    REQUIRE(!e.empty());
    seen += json::parse(e)["data"].value("text", "");
  }
  open_gate(d, "gate");
  json last;
  while (true) {
    std::string e = log.next();
    REQUIRE(!e.empty());
    last = json::parse(e);
    if (last.contains("ok")) break;
    seen += last["data"].value("text", "");
  }
  CHECK(seen.find("second line") != std::string::npos);
  CHECK(last["result"]["job"]["state"] == "succeeded");
  CHECK(log.next(std::chrono::seconds(5)).empty());  // the stream ended with the reply
  json ended = json::parse(watch.next());
  CHECK(ended["data"]["state"] == "succeeded");

  // Refused streams say why in the protocol's words.
  EventStream bad(port, "/events/log?job=999");
  CHECK(json::parse(bad.next())["error"]["code"] == "not_found");
}

TEST_CASE("web: 20 pages that never read a flooding build's log hold bounded memory - the daemon serves on") {
  Daemon d("", kWeb);
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "seq 1 1500000 | sed 's|.*|[&/1500000] Building CXX object torch_cpu.dir/op_&.cpp.o|'\n"
                  "echo 'flood printed'\n" +
                      gate(d, "gate") + "mkdir -p $out");
  uint16_t port = start_with_web(d);
  int64_t before = rss_kib(d.pid());
  d.client_json({"queue", "cpu-avx2"});
  REQUIRE(eventually([&] { return d.job("cpu-avx2")["state"] == "running"; }));
  std::vector<std::unique_ptr<EventStream>> stalled;
  for (int i = 0; i < 20; ++i)
    stalled.push_back(std::make_unique<EventStream>(port, "/events/log?job=1&follow=true"));
  // The build prints ~110 MB while 20 pages read nothing: each holds at most the log window.
  auto tail_of_live_log = [&] {
    std::ifstream in(d.state() + "/logs/1.live.log");
    in.seekg(0, std::ios::end);
    in.seekg(std::max<std::streamoff>(0, static_cast<std::streamoff>(in.tellg()) - 200));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  REQUIRE(eventually([&] { return tail_of_live_log().find("flood printed") != std::string::npos; },
                     std::chrono::seconds(240)));
  int64_t after = rss_kib(d.pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB");
  if (kMemoryFiguresMeaningful) CHECK(after - before < 48 * 1024);  // 20 x 1 MiB window, not 20 x 110 MB
  CHECK(d.client({"status"}).exit_code == 0);
  CHECK(http_get(port, "/metrics").status == 200);
  stalled.clear();
  open_gate(d, "gate");
  CHECK(d.client({"wait", "cpu-avx2"}).exit_code == 0);
}
