#include "core/builder_health.h"

#include <doctest/doctest.h>

using namespace ptbuild;
using namespace std::chrono;

TEST_CASE("builder health: back-off of 1 min × 3^(n−1), at most one hour") {
  CHECK(BuilderHealth::backoff(1, minutes(1)) == minutes(1));
  CHECK(BuilderHealth::backoff(2, minutes(1)) == minutes(3));
  CHECK(BuilderHealth::backoff(3, minutes(1)) == minutes(9));
  CHECK(BuilderHealth::backoff(4, minutes(1)) == minutes(27));
  CHECK(BuilderHealth::backoff(5, minutes(1)) == hours(1));
  CHECK(BuilderHealth::backoff(1000, minutes(1)) == hours(1));
}

TEST_CASE("builder health: a fault takes it down, a probe brings it up, the count stays until a good build") {
  BuilderHealth h;
  CHECK(h.up());
  CHECK(h.describe() == "up");
  h.checking = true;  // at start, until the first probe build answers
  CHECK_FALSE(h.up());
  h.probe_succeeded();
  CHECK(h.up());
  auto t0 = system_clock::time_point(seconds(1'800'000'000));
  h.fault("the group 'nixbld' specified in 'build-users-group' does not exist", t0, minutes(1));
  CHECK_FALSE(h.up());
  CHECK(*h.down_until == t0 + minutes(1));
  CHECK(
      h.describe() ==
      "down until 2027-01-15T08:01:00.000Z: the group 'nixbld' specified in 'build-users-group' does not exist");
  h.probe_succeeded();
  CHECK(h.up());
  h.fault("again", t0, minutes(1));  // the second fault in a row waits longer
  CHECK(*h.down_until == t0 + minutes(3));
  h.healthy();
  CHECK(h.up());
  h.fault("after a good build", t0, minutes(1));
  CHECK(*h.down_until == t0 + minutes(1));
}
