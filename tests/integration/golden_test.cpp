// Every op's reply for one fixed scenario, compared byte for byte with tests/golden/replies.jsonl:
// the JSON on the wire is a contract (docs/protocol.md), whatever builds it inside. What changes
// from run to run (times, the temp folder, store hashes) is replaced by a placeholder first.
//   PTBUILD_UPDATE_GOLDEN=1 build/integration_tests -tc='replies:*'   records the file again
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using json = nlohmann::json;

namespace {

class Recorder {
 public:
  explicit Recorder(Daemon& d) : d_(d), client_(d.socket()) { REQUIRE(client_.json_line()); }

  // Sends one request; records every line that answers it (events first, then the reply). A
  // stream that never replies (watch) is read for `events` events once `meanwhile` has run.
  void ask(const std::string& op, json args = json::object(), int events = -1,
           const std::function<void()>& meanwhile = {}) {
    json request{{"id", ++id_}, {"op", op}, {"args", std::move(args)}};
    client_.send_bytes(request.dump() + "\n");
    if (meanwhile) meanwhile();
    json answer = json::array();
    while (events != 0) {
      auto line = client_.json_line(std::chrono::seconds(120));
      CAPTURE(request.dump());
      REQUIRE(line);
      // Progress is reported once a second: only the last report is the same in every run.
      if (!answer.empty() && answer.back().value("event", "") == "progress") answer.erase(answer.size() - 1);
      answer.push_back(*line);
      if (!line->contains("event")) break;
      --events;
    }
    out_ += normalize(json{{"request", request}, {"answer", answer}}).dump() + "\n";
  }
  const std::string& text() const { return out_; }

 private:
  json normalize(json j) const {
    // What a build used and what a machine has differ from run to run and machine to machine, and
    // a builder's are there once first read: left out (their shape is core/replies_test's).
    if (j.is_object()) {
      for (auto& [key, item] : j.items()) item = key == "resources" ? json(nullptr) : normalize(item);
      return j;
    }
    if (j.is_array()) {
      for (auto& item : j) item = normalize(item);
      return j;
    }
    if (!j.is_string()) return j;
    std::string s = j.get<std::string>();
    for (size_t at; (at = s.find(d_.dir().path())) != std::string::npos;)
      s.replace(at, d_.dir().path().size(), "<tmp>");
    static const std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");
    static const std::regex store(R"(/nix/store/[0-9a-z]{32})");
    s = std::regex_replace(s, time, "<time>");
    s = std::regex_replace(s, store, "/nix/store/<hash>");
    return s;
  }

  Daemon& d_;
  RawClient client_;
  int64_t id_ = 0;
  std::string out_;
};

}  // namespace

TEST_CASE("replies: every op answers a fixed scenario with the JSON recorded in tests/golden") {
  Daemon d;
  d.add_sh_recipe("pytorch-python313-cpu-avx2",
                  "echo '[1/2] Building CXX object a.o'\necho built\nmkdir -p $out");
  d.add_sh_recipe(
      "pytorch-python313-cuda12_8-sm90-avx512",
      "echo '-- USE_CUDA : OFF'\necho 'CMake Error: Could NOT find CUDA (missing: CUDA_NVCC_EXECUTABLE)'\nexit 1");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512vnni", d.wait_for_gate() + "mkdir -p $out");
  d.start();
  // The builder's probe (a tiny build) decides first whether it is up: recorded once it has.
  REQUIRE(eventually([&] { return d.client_json({"builders"})["builders"][0]["state"] == "up"; }));
  Recorder r(d);

  r.ask("matrix");
  r.ask("pause");  // what is queued stays queued while its replies are recorded
  r.ask("queue", {{"targets", {"cpu-avx2", "sm90-avx512"}}, {"priority", 2}, {"reason", "golden"}});
  r.ask("queue", {{"targets", {"cpu-avx2"}}});  // already queued: not new
  r.ask("status");
  r.ask("resume");
  r.ask("wait", {{"jobs", {1, 2}}});
  r.ask("show", {{"job", 2}});
  r.ask("show", {{"job", "cpu-avx2"}});
  r.ask("log", {{"job", 1}, {"tail", 2}});
  r.ask("jobs", {{"limit", 10}});
  r.ask("jobs", {{"state", "failed"}});
  r.ask("fixes");
  r.ask("builders");
  r.ask("pause");
  r.ask("queue", {{"targets", {"cpu-avx512"}}});
  r.ask("status");
  r.ask("status", {{"targets", {"cpu-avx2"}}});
  r.ask("cancel", {{"jobs", {3}}});
  r.ask("cancel", {{"jobs", {"cpu-avx2"}}});
  r.ask("retry", {{"jobs", {2}}});
  r.ask("set_builder", {{"name", "local"}, {"enabled", false}});
  r.ask("set_builder", {{"name", "local"}, {"enabled", true}});
  r.ask("resume");
  r.ask("wait", {{"jobs", {4}}});
  r.ask("publish", {{"targets", {"cpu-avx2"}}});
  r.ask("pause");
  r.ask("nightly", {{"targets", {"cpu-avx2", "cpu-avx512"}}});
  // Errors have their shape too.
  r.ask("show", {{"job", 99}});
  r.ask("queue", {{"targets", {"sm75-*"}}});
  r.ask("jobs", {{"limit", 0}});
  r.ask("retry", {{"jobs", {5}}});
  r.ask("no_such_op");
  r.ask("watch", json::object(), 1, [&] { d.client_json({"cancel", "5"}); });
  // drain answers while a build runs (with nothing running, the daemon is gone at once).
  d.client_json({"queue", "cpu-avx512vnni"});
  r.ask("resume");
  REQUIRE(eventually([&] { return d.job("cpu-avx512vnni")["state"] == "running"; }));
  r.ask("drain");
  d.open_gate();

  std::string golden = source_dir() + "/tests/golden/replies.jsonl";
  if (std::getenv("PTBUILD_UPDATE_GOLDEN")) {
    std::ofstream(golden, std::ios::binary | std::ios::trunc) << r.text();
    MESSAGE("recorded " << golden);
  }
  std::ifstream in(golden, std::ios::binary);
  REQUIRE_MESSAGE(in, "no " << golden << " (PTBUILD_UPDATE_GOLDEN=1 records it)");
  std::stringstream expected;
  expected << in.rdbuf();
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::istringstream lines_in(text);
    for (std::string l; std::getline(lines_in, l);) out.push_back(l);
    return out;
  };
  std::vector<std::string> want = lines(expected.str()), got = lines(r.text());
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(want.size(), got.size()); ++i) {
    CAPTURE(i + 1);
    CHECK(got[i] == want[i]);
  }
}
