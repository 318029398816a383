#include "daemon/scheduler/plan.h"

#include <algorithm>

namespace ptbuild {

std::vector<int64_t> dispatch_order(const PlanInput& in) {
  std::vector<const QueuedBuild*> ready;
  for (const QueuedBuild& q : in.queued) {
    auto upstream = in.after.find(q.repo);
    if (upstream != in.after.end() && in.unfinished.count({upstream->second, q.axes_key})) continue;
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
  std::vector<int64_t> order;
  for (const QueuedBuild* q : ready) order.push_back(q->id);
  return order;
}

}  // namespace ptbuild
