// Which queued build starts next: a pure function of the queue, so it is tested without
// processes, clocks or a database.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ptbuild {

struct QueuedBuild {
  int64_t id = 0;
  int priority = 0;
  std::string repo;
  std::string axes_key;          // see axes_key(): same key in two repos = same build target
  double expected_seconds = -1;  // from recorded builds; < 0 when unknown
};

struct PlanInput {
  std::vector<QueuedBuild> queued;  // those that may start now (not backing off after a failure)
  // (repo, axes key) pairs that still have a queued or running build job, with that job's id.
  std::map<std::pair<std::string, std::string>, int64_t> unfinished;
  std::map<std::string, std::string> after;  // repo -> the repo whose same-axes build goes first
  // (repo, axes key) pairs whose latest build failed or was cancelled, with that job's id: what
  // waits for them through `after` stays queued until a later build of them succeeds.
  std::map<std::pair<std::string, std::string>, int64_t> failed;
  bool longest_first = true;
};

// The dispatch order, best first. The rules, in this order:
//   1. priority: higher first;
//   2. `after`: a build whose upstream repo still has an unfinished build with the same axes
//      waits (it is left out); so does one whose upstream's latest build failed — it would build
//      against nothing — until a later build of it succeeds;
//   3. order: longest-first puts the longest expected build first, unknown durations before
//      known ones (a variant never built may be the longest, and its first build teaches us);
//      fifo keeps queue order;
//   4. the older job (smaller id) first.
struct Plan {
  std::vector<int64_t> order;                 // best first
  std::map<int64_t, int64_t> held_by;         // left out by rule 2: job id -> the upstream job it waits for
  std::map<int64_t, int64_t> held_by_failed;  // … the upstream's failed latest build
};
Plan plan_dispatch(const PlanInput& input);
inline std::vector<int64_t> dispatch_order(const PlanInput& input) {
  return plan_dispatch(input).order;
}

}  // namespace ptbuild
