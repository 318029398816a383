#include "daemon/scheduler/plan.h"

#include <algorithm>

namespace ptbuild {

Plan plan_dispatch(const PlanInput& in) {
  Plan plan;
  std::vector<const QueuedBuild*> ready;
  for (const QueuedBuild& q : in.queued) {
    if (auto upstream = in.after.find(q.repo); upstream != in.after.end()) {
      if (auto held = in.unfinished.find({upstream->second, q.axes_key}); held != in.unfinished.end()) {
        plan.held_by[q.id] = held->second;
        continue;
      }
      if (auto failed = in.failed.find({upstream->second, q.axes_key}); failed != in.failed.end()) {
        plan.held_by_failed[q.id] = failed->second;
        continue;
      }
    }
    ready.push_back(&q);
  }
  std::sort(ready.begin(), ready.end(), [&](const QueuedBuild* a, const QueuedBuild* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    if (in.longest_first) {
      bool a_unknown = a->expected_seconds < 0, b_unknown = b->expected_seconds < 0;
      if (a_unknown != b_unknown) return a_unknown;
      if (a->expected_seconds != b->expected_seconds) return a->expected_seconds > b->expected_seconds;
    }
    return a->id < b->id;
  });
  for (const QueuedBuild* q : ready) plan.order.push_back(q->id);
  return plan;
}

}  // namespace ptbuild
