#include "core/requests.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/protocol.h"

using namespace ptbuild::protocol;

namespace {
// What reading `args` as a `Request` says is wrong with them ("no error" when nothing is).
template <class Request>
std::string message(Request, const nlohmann::json& args) {
  try {
    (void)from_args<Request>(args);
  } catch (const ArgError& e) {
    return e.message;
  }
  return "no error";
}
}  // namespace

TEST_CASE("typed requests go to JSON and back unchanged - wrong arguments are named") {
  QueueRequest q{{"sm90-avx512", "cpu-*"}, 5, true, "nightly"};
  QueueRequest back = from_args<QueueRequest>(to_args(q));
  CHECK(back.targets == q.targets);
  CHECK(back.priority == 5);
  CHECK(back.force);
  CHECK(back.reason == "nightly");
  CHECK(from_args<QueueRequest>(nlohmann::json{{"targets", {"all"}}}).reason == "queued by hand");

  LogRequest l{parse_job_ref("#17"), 200, true};
  LogRequest lb = from_args<LogRequest>(to_args(l));
  CHECK(std::get<int64_t>(lb.job) == 17);
  CHECK(lb.tail == 200);
  CHECK(lb.follow);
  JobsByRefRequest refs{{parse_job_ref("3"), parse_job_ref("sm90-avx512")}};
  JobsByRefRequest rb = from_args<JobsByRefRequest>(to_args(refs));
  CHECK(std::get<int64_t>(rb.jobs[0]) == 3);
  CHECK(std::get<std::string>(rb.jobs[1]) == "sm90-avx512");
  CHECK(describe(rb.jobs[0]) == "#3");
  CHECK(from_args<JobsRequest>(to_args(JobsRequest{"failed", 10})).state == "failed");

  CHECK(message(QueueRequest{}, nlohmann::json::object()) ==
        "argument \"targets\" must name at least one target");
  CHECK(message(QueueRequest{}, {{"targets", {"all"}}, {"priority", "high"}}) ==
        "argument \"priority\" must be an integer");
  CHECK(message(ShowRequest{}, nlohmann::json::object()) == "argument \"job\" is required");
  CHECK(message(ShowRequest{}, {{"job", true}}) == "a job must be named by its id or by a variant");
  CHECK(message(JobsByRefRequest{}, {{"jobs", nlohmann::json::array()}}).find("non-empty array") !=
        std::string::npos);
  CHECK(message(JobsRequest{}, {{"limit", 0}}) == "argument \"limit\" must be between 1 and 1000000, got 0");
}

TEST_CASE("requests: numbers out of range are refused with the range, never wrapped") {
  // 3000000000 was stored as -1294967296, the lowest priority.
  CHECK(message(QueueRequest{}, {{"targets", {"all"}}, {"priority", 3000000000LL}}) ==
        "argument \"priority\" must be between -1000000 and 1000000, got 3000000000");
  CHECK(message(QueueRequest{}, {{"targets", {"all"}}, {"priority", -1000000}}) == "no error");
  // tail=-5 returned the whole log.
  CHECK(message(LogRequest{}, {{"job", 1}, {"tail", -5}}) ==
        "argument \"tail\" must be between 0 and 1000000000, got -5");
  CHECK(message(JobsRequest{}, {{"limit", 18446744073709551615ULL}}) ==
        "argument \"limit\" must be between 1 and 1000000, got 18446744073709551615");
  CHECK(message(ShowRequest{}, {{"job", 18446744073709551615ULL}})
            .find("argument \"job\" must be between 1 and") == 0);
  CHECK(message(ShowRequest{}, {{"job", 0}}).find("argument \"job\" must be between 1 and") == 0);

  // The largest id is an id (it was looked up as a variant of that name); digits past it are an error.
  CHECK(std::get<int64_t>(parse_job_ref("9223372036854775807")) == INT64_MAX);
  CHECK(std::get<int64_t>(from_args<ShowRequest>({{"job", "9223372036854775807"}}).job) == INT64_MAX);
  CHECK(message(ShowRequest{}, {{"job", "99999999999999999999"}}) ==
        "job id 99999999999999999999 is past the largest id, 9223372036854775807");
  CHECK(std::get<std::string>(parse_job_ref("sm90-avx512")) == "sm90-avx512");
}
