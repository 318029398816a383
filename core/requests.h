// One typed request per op of docs/protocol.md that takes arguments: the client builds them, the daemon
// (socket and HTTP alike) reads them, and both go through the same to/from JSON here. A wrong
// argument is an ArgError that names it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild::protocol {

// A job as people name it: its id, or a target that stands for one variant's job.
using JobRef = std::variant<int64_t, std::string>;
// "17" and "#17" are ids; anything else a target. Digits past the largest id are an ArgError,
// never a target of that name.
JobRef parse_job_ref(const std::string& text);
std::string describe(const JobRef& ref);  // "#17", or the target

// The ranges of the integer arguments; the client refuses the same values before sending.
inline constexpr int64_t kMaxPriority = 1'000'000;
inline constexpr int64_t kMaxListing = 1'000'000;  // jobs --limit
// The most jobs one reply carries: a longer listing comes in pages, each naming where the next
// begins (JobsReply::next_before), so no reply outgrows what a client may hold unread.
inline constexpr int64_t kJobsPage = 1'000;
inline constexpr int64_t kMaxTail = 1'000'000'000;  // log --tail, lines

struct QueueRequest {
  std::vector<std::string> targets;  // at least one
  int priority = 0;
  bool force = false;
  std::string reason = "queued by hand";
};
struct StatusRequest {
  std::vector<std::string> targets;  // none: every variant
};
struct JobsRequest {
  std::string state;  // "" for any
  int64_t limit = 50;
  int64_t before = 0;   // only jobs with a smaller id (a page's next_before); 0: from the newest
  std::string variant;  // only this variant's jobs ("" for any)
};
struct ShowRequest {
  JobRef job;
};
struct LogRequest {
  JobRef job;
  int64_t tail = 0;  // 0: the whole log
  bool follow = false;
};
struct JobsByRefRequest {    // wait, cancel, retry
  std::vector<JobRef> jobs;  // at least one
};
struct PublishRequest {
  std::vector<std::string> targets;  // at least one
  bool force = false;
};
struct NightlyRequest {
  std::vector<std::string> targets;  // none: the config's nightly.targets
};
struct GcRequest {  // gc [--dry-run] [--builder NAME]
  bool dry_run = false;
  std::string builder;  // "" or the local builder: the store of this machine
};
struct ChangesRequest {  // changes JOB|VARIANT [--since JOB]
  JobRef job;
  int64_t since = 0;  // 0: the variant's last good build before it
};
struct BisectRequest {  // bisect VARIANT [--good REV] [--bad REV]
  std::string variant;
  std::string good, bad;  // "": the defaults (docs/bisect.md)
};
struct BisectCancelRequest {  // bisect cancel [VARIANT]
  std::string variant;        // "": every running bisection
};
struct SetBuilderRequest {  // builders disable|enable NAME
  std::string name;
  bool enabled = true;
};

nlohmann::json to_args(const QueueRequest& r);
nlohmann::json to_args(const GcRequest& r);
nlohmann::json to_args(const StatusRequest& r);
nlohmann::json to_args(const JobsRequest& r);
nlohmann::json to_args(const ShowRequest& r);
nlohmann::json to_args(const LogRequest& r);
nlohmann::json to_args(const JobsByRefRequest& r);
nlohmann::json to_args(const PublishRequest& r);
nlohmann::json to_args(const NightlyRequest& r);
nlohmann::json to_args(const SetBuilderRequest& r);
nlohmann::json to_args(const ChangesRequest& r);
nlohmann::json to_args(const BisectRequest& r);
nlohmann::json to_args(const BisectCancelRequest& r);

// Reading a request's "args"; throws ArgError.
template <class Request>
Request from_args(const nlohmann::json& args);

}  // namespace ptbuild::protocol
