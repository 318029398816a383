#include "daemon/scheduler/plan.h"

#include <doctest/doctest.h>

using namespace ptbuild;

TEST_CASE("plan: priority first then longest-first with unknown durations leading") {
  PlanInput in;
  in.queued = {{1, 0, "pytorch", "a", 100},    // short
               {2, 0, "pytorch", "b", 9000},   // long
               {3, 5, "pytorch", "c", 10},     // high priority wins over length
               {4, 0, "pytorch", "d", -1},     // never built: may be the longest
               {5, 0, "pytorch", "e", 9000}};  // as long as #2, younger
  CHECK(dispatch_order(in) == std::vector<int64_t>{3, 4, 2, 5, 1});
  in.longest_first = false;  // fifo
  CHECK(dispatch_order(in) == std::vector<int64_t>{3, 1, 2, 4, 5});
}

TEST_CASE("plan: a repo with after waits for the same-axes build of its upstream") {
  PlanInput in;
  in.after = {{"torchvision", "pytorch"}};
  in.queued = {
      {1, 0, "torchvision", "sm90", -1}, {2, 0, "torchvision", "sm120", -1}, {3, 0, "pytorch", "sm90", -1}};
  in.unfinished = {{{"pytorch", "sm90"}, 7}, {{"torchvision", "sm90"}, 1}, {{"torchvision", "sm120"}, 2}};
  // torchvision sm90 waits for pytorch sm90 (job 7); torchvision sm120 has no unfinished upstream.
  CHECK(dispatch_order(in) == std::vector<int64_t>{2, 3});
  CHECK(plan_dispatch(in).held_by == std::map<int64_t, int64_t>{{1, 7}});
  in.unfinished.erase({"pytorch", "sm90"});
  CHECK(dispatch_order(in) == std::vector<int64_t>{1, 2, 3});
}

TEST_CASE("plan: a build whose upstream failed is held, not started against nothing, until it succeeds") {
  PlanInput in;
  in.after = {{"torchvision", "pytorch"}};
  in.queued = {{1, 0, "torchvision", "sm90", -1}, {2, 0, "torchvision", "sm120", -1}};
  in.failed = {{{"pytorch", "sm90"}, 7}};
  Plan p = plan_dispatch(in);
  CHECK(p.order == std::vector<int64_t>{2});
  CHECK(p.held_by_failed == std::map<int64_t, int64_t>{{1, 7}});
  in.unfinished = {{{"pytorch", "sm90"}, 9}};  // a new build of it is queued: wait for that one
  CHECK(plan_dispatch(in).held_by == std::map<int64_t, int64_t>{{1, 9}});
  in.unfinished.clear();
  in.failed.clear();  // … and it succeeded
  CHECK(dispatch_order(in) == std::vector<int64_t>{1, 2});
}
