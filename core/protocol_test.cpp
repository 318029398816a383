#include "core/protocol.h"

#include <set>

#include <doctest/doctest.h>

using namespace ptbuild::protocol;

TEST_CASE("requests parse - bad ones say what is wrong") {
  auto r = parse_request(R"({"id":7,"op":"queue","args":{"targets":["all"]}})");
  REQUIRE(std::holds_alternative<Request>(r));
  CHECK(std::get<Request>(r).id == 7);
  CHECK(std::get<Request>(r).op == "queue");
  CHECK(std::get<Request>(r).args["targets"][0] == "all");

  auto err = [](std::string_view line) { return std::get<RequestError>(parse_request(line)); };
  CHECK(err("garbage").code == code::kBadJson);
  CHECK(err("[1,2]").code == code::kBadRequest);
  CHECK(err(R"({"op":"matrix"})").message == "\"id\" must be an integer");
  CHECK(err(R"({"id":"1","op":"matrix"})").code == code::kBadRequest);
  CHECK(err(R"({"id":1,"op":5})").id == 1);
  CHECK(err(R"({"id":1,"op":"x","args":[1]})").message == "\"args\" must be an object");
  // 2^64-1 was echoed back as -1: refused, and echoed as sent.
  RequestError huge = err(R"({"id":18446744073709551615,"op":"status"})");
  CHECK(huge.message == "\"id\" must be at most 9223372036854775807");
  CHECK(huge.id.dump() == "18446744073709551615");
  CHECK(std::get<Request>(parse_request(R"({"id":9223372036854775807,"op":"status"})")).id == INT64_MAX);
}

TEST_CASE("typed arguments name the argument on a wrong type") {
  nlohmann::json args{{"targets", "all"}, {"priority", "high"}, {"force", 1}};
  CHECK_THROWS_AS(arg_strings(args, "targets"), ArgError);
  try {
    arg_int(args, "priority", 0);
    FAIL("no error");
  } catch (const ArgError& e) {
    CHECK(e.message == "argument \"priority\" must be an integer");
  }
  CHECK_THROWS_AS(arg_bool(args, "force"), ArgError);
  CHECK(arg_int(args, "missing", 5) == 5);
}

TEST_CASE("replies and hello carry the protocol fields") {
  CHECK(hello("ptbuildd")["protocol"] == kVersion);
  auto ok = ok_reply(3, {{"x", 1}});
  CHECK(ok["id"] == 3);
  CHECK(ok["ok"] == true);
  auto bad = error_reply(nullptr, code::kUnknownOp, "unknown op 'x'");
  CHECK(bad["ok"] == false);
  CHECK(bad["error"]["code"] == "unknown_op");
}

TEST_CASE("a reply made from a result already written as text is the reply made from the value") {
  nlohmann::json result = {{"jobs", {{{"id", 7}, {"variant", "sm90-avx512"}, {"log", "bad \xff byte"}}}},
                           {"scheduler", {{"running", 1}}}};
  for (int64_t id : {0, 1, 42, -3})
    CHECK(ok_reply_text(id, json_text(result)) == json_text(ok_reply(id, result)));
  // The bad byte is replaced, not a reason to fail the reply.
  CHECK(json_text(result).find("bad \xef\xbf\xbd byte") != std::string::npos);
}

TEST_CASE("a request nested deeper than kMaxDepth is refused before it is parsed, strings do not count") {
  std::string deep = "{\"id\":1,\"op\":\"status\",\"args\":{\"x\":" + std::string(100'000, '[') +
                     std::string(100'000, ']') + "}}";
  auto refused = parse_request(deep);
  REQUIRE(std::holds_alternative<RequestError>(refused));
  CHECK(std::get<RequestError>(refused).message.find("deeper than 64 levels") != std::string::npos);
  // 64 levels in all are fine; brackets inside strings are text.
  std::string ok = "{\"id\":1,\"op\":\"status\",\"args\":{\"x\":" + std::string(62, '[') +
                   std::string(62, ']') + ",\"reason\":\"" + std::string(1000, '[') + "\\\"]]\"}}";
  CHECK(std::holds_alternative<Request>(parse_request(ok)));
  CHECK(std::holds_alternative<RequestError>(parse_request(std::string(70, '['))));
}

TEST_CASE("op catalogue: each op once, found by name - ops that change things are marked") {
  std::set<std::string_view> names;
  for (const OpSpec& spec : op::kAll) CHECK(names.insert(spec.name).second);
  CHECK(find_op("status") == &op::kAll[1]);
  CHECK(find_op("queue")->changes_things);
  CHECK(find_op("log")->replies_later);
  CHECK(find_op("nosuch") == nullptr);
}
