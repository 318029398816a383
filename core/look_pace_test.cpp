#include "core/look_pace.h"

#include <doctest/doctest.h>

using namespace ptbuild;
using std::chrono::milliseconds;

TEST_CASE("a build that prints nothing is looked at every 200 ms, soon after it starts") {
  LookPace pace(512 * 1024);
  CHECK(pace.every() == milliseconds(25));
  CHECK(pace.next(0) == milliseconds(200));
  CHECK(pace.next(0) == milliseconds(200));
}

TEST_CASE("a flooding build is looked at every 25 ms, and a slowing one less often") {
  LookPace pace(512 * 1024);
  pace.next(0);  // quiet at first: 200 ms
  // 1 MiB gathered in 200 ms: half a pipe comes in 100 ms, and the look after that takes the
  // pace it then finds, down to the soonest.
  CHECK(pace.next(1024 * 1024) == milliseconds(100));
  CHECK(pace.next(1024 * 1024) == milliseconds(50));
  CHECK(pace.next(4 * 1024 * 1024) == milliseconds(25));
  CHECK(pace.next(8 * 1024 * 1024) == milliseconds(25));
  // 64 KiB in 25 ms (2.5 MB/s): 200 ms gathers 512 KiB.
  CHECK(pace.next(64 * 1024) == milliseconds(200));
}

TEST_CASE("a steady build settles where each look finds about half a pipe") {
  LookPace pace(512 * 1024);
  const double bytes_per_ms = 8 * 1024;  // 8 MB/s
  for (int i = 0; i < 10; ++i)
    pace.next(static_cast<size_t>(bytes_per_ms * static_cast<double>(pace.every().count())));
  CHECK(pace.every() == milliseconds(64));
}
