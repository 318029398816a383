// No input crashes or stalls the daemon (docs/protocol.md).
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {
json expect_error(RawClient& c, const char* code) {
  auto reply = c.json_line();
  REQUIRE(reply);
  CHECK((*reply)["ok"] == false);
  CHECK((*reply)["error"]["code"] == code);
  CHECK_FALSE((*reply)["error"]["message"].get<std::string>().empty());
  return *reply;
}
}  // namespace

TEST_CASE("hello first - then answers by id") {
  Daemon d;
  d.start();
  RawClient c(d.socket());
  auto hello = c.json_line();
  REQUIRE(hello);
  CHECK((*hello)["hello"] == "ptbuildd");
  CHECK((*hello)["protocol"] == 1);
  CHECK((*hello)["version"].is_string());
  c.send_bytes("{\"hello\":\"ptbuild\",\"protocol\":1}\n{\"id\":41,\"op\":\"jobs\",\"args\":{}}\n");
  auto reply = c.json_line();
  REQUIRE(reply);
  CHECK((*reply)["id"] == 41);
  CHECK((*reply)["ok"] == true);
  CHECK((*reply)["result"]["jobs"].is_array());
}

TEST_CASE("garbage - wrong types - unknown ops and a 2 MiB line each get an error reply") {
  Daemon d;
  d.add_recipe("pytorch-python313-cpu-avx2");
  d.start();
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello

  c.send_bytes("this is not json\n");
  expect_error(c, "bad_json");
  c.send_bytes("[1,2,3]\n");
  expect_error(c, "bad_request");
  c.send_bytes("{\"id\":\"seven\",\"op\":\"jobs\"}\n");
  expect_error(c, "bad_request");
  c.send_bytes("{\"id\":2,\"op\":\"frobnicate\"}\n");
  CHECK(expect_error(c, "unknown_op")["id"] == 2);
  c.send_bytes("{\"id\":3,\"op\":\"queue\",\"args\":{\"targets\":\"cpu-avx2\"}}\n");
  CHECK(expect_error(c, "bad_request")["error"]["message"].get<std::string>().find("targets") !=
        std::string::npos);
  c.send_bytes("{\"id\":4,\"op\":\"jobs\",\"args\":{\"limit\":\"ten\"}}\n");
  expect_error(c, "bad_request");
  c.send_bytes("{\"id\":5,\"op\":\"show\",\"args\":{\"job\":[1]}}\n");
  expect_error(c, "bad_request");
  c.send_bytes("{\"id\":6,\"op\":\"jobs\",\"args\":{\"state\":\"exploded\"}}\n");
  expect_error(c, "bad_request");
  c.send_bytes(std::string("\xff\xfe\x00\x01", 4) + "\n");
  expect_error(c, "bad_json");

  // A 2 MiB line: refused once, then the same connection still works.
  c.send_bytes("{\"id\":7,\"op\":\"jobs\",\"args\":{\"pad\":\"" + std::string(2 * 1024 * 1024, 'x') +
               "\"}}\n");
  expect_error(c, "line_too_long");
  c.send_bytes("{\"id\":8,\"op\":\"jobs\"}\n");
  auto after = c.json_line();
  REQUIRE(after);
  CHECK((*after)["id"] == 8);
  CHECK((*after)["ok"] == true);

  // A client that leaves mid-line does not disturb anyone.
  {
    RawClient half(d.socket());
    half.send_bytes("{\"id\":1,\"op\":\"qu");
  }
  // A client that connects and never speaks does not block others.
  RawClient silent(d.socket());
  ProcessResult r = d.client({"queue", "cpu-avx2", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(json::parse(r.out)["jobs"][0]["new"] == true);
}

TEST_CASE(
    "a 200 KB line nesting args 100,000 deep is refused before it is parsed, and the daemon serves on") {
  Daemon d;
  d.start();
  RawClient c(d.socket());
  REQUIRE(c.json_line());  // hello
  std::string deep = "{\"id\":1,\"op\":\"status\",\"args\":{\"x\":" + std::string(100'000, '[') +
                     std::string(100'000, ']') + "}}\n";
  c.send_bytes(deep);
  CHECK(expect_error(c, "bad_request")["error"]["message"].get<std::string>().find("deeper than 64") !=
        std::string::npos);
  c.send_bytes("{\"id\":2,\"op\":\"status\",\"args\":{}}\n");
  auto reply = c.json_line();
  REQUIRE(reply);
  CHECK((*reply)["ok"] == true);
  CHECK(d.running());
}
