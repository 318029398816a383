// Regression tests for the second hardening round (docs/RELIABILITY.md): each provokes a finding
// with the real daemon, real Nix, real HTTP, and checks what a user would.
#include <csignal>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
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

TEST_CASE("hardening: a reload that turns the dashboard off closes it; one that turns it on opens it") {
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
