// Every reply the golden scenario recorded (tests/golden/replies.jsonl) reads into its type and is
// written back the same: the types carry every field the wire has, and nothing else.
#include "core/replies.h"

#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

using namespace ptbuild;
using json = nlohmann::json;

namespace {

// The reply type of each op, written back from what it read.
json round_trip(const std::string& op, const json& result) {
  using namespace protocol;
  if (op == "queue" || op == "retry" || op == "publish") return to_json(reply_from<QueueReply>(result));
  if (op == "status") return to_json(reply_from<StatusReply>(result));
  if (op == "jobs" || op == "wait") return to_json(reply_from<JobsReply>(result));
  if (op == "show") return to_json(JobView{reply_from<Job>(result)});
  if (op == "matrix") return to_json(reply_from<MatrixReply>(result));
  if (op == "cancel") return to_json(reply_from<CancelReply>(result));
  if (op == "fixes") return to_json(reply_from<FixesReply>(result));
  if (op == "builders" || op == "set_builder") return to_json(reply_from<BuildersReply>(result));
  if (op == "pause" || op == "resume") return to_json(reply_from<PauseReply>(result));
  if (op == "drain") return to_json(reply_from<DrainReply>(result));
  if (op == "nightly") return to_json(reply_from<NightlyReply>(result));
  if (op == "log") return to_json(reply_from<LogReply>(result));
  FAIL("no reply type for op " << op);
  return {};
}

json event_round_trip(const std::string& event, const json& data) {
  using namespace protocol;
  if (event == "log") return to_json(reply_from<LogText>(data));
  if (event == "progress") return to_json(reply_from<NightlyProgress>(data));
  if (event == "job") return to_json(JobView{reply_from<Job>(data)});
  FAIL("no type for event " << event);
  return {};
}

}  // namespace

TEST_CASE("replies: every recorded reply and event reads into its type and writes back unchanged") {
  std::ifstream in(std::string(PTBUILD_SOURCE_DIR) + "/tests/golden/replies.jsonl");
  REQUIRE(in);
  std::map<std::string, int> seen;
  for (std::string line; std::getline(in, line);) {
    json entry = json::parse(line);
    std::string op = entry["request"]["op"];
    for (const json& answer : entry["answer"]) {
      CAPTURE(answer.dump().substr(0, 200));
      if (answer.contains("event")) {
        CHECK(event_round_trip(answer["event"], answer["data"]) == answer["data"]);
        ++seen[answer["event"].get<std::string>()];
      } else if (answer.value("ok", false)) {
        CHECK(round_trip(op, answer["result"]) == answer["result"]);
        ++seen[op];
      }
    }
  }
  for (const char* op : {"queue", "retry", "status", "jobs", "wait", "show", "matrix", "cancel", "fixes",
                         "builders", "set_builder", "pause", "resume", "drain", "nightly", "log", "job"}) {
    std::string name = op;
    CAPTURE(name);
    CHECK(seen[name] > 0);
  }
}

TEST_CASE("replies: the nightly's progress event reads and writes back") {
  json data{{"evaluated", 3}, {"total", 237}};
  CHECK(protocol::to_json(protocol::reply_from<protocol::NightlyProgress>(data)) == data);
}

TEST_CASE("replies: a reply that does not fit its type says what is wrong") {
  CHECK_THROWS_AS(protocol::reply_from<protocol::QueueReply>(json{{"jobs", {{{"id", "seven"}}}}}),
                  protocol::ReplyError);
  CHECK_THROWS_AS(protocol::reply_from<protocol::JobsReply>(json::object()), protocol::ReplyError);
  try {
    protocol::reply_from<protocol::JobsReply>(
        json{{"jobs", {{{"id", 1}, {"variant", "v"}, {"kind", "build"}, {"state", "lost"}}}}});
    FAIL("an unknown state was read");
  } catch (const protocol::ReplyError& e) {
    CHECK(e.message == "unknown job state 'lost'");
  }
}
