#include "core/bisect.h"

#include <cmath>

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
// Bisects n commits whose first bad one is `first_bad`, counting the tries.
int tries_to_find(size_t n, size_t first_bad) {
  std::vector<BisectCommit> commits(n);
  commits.back().verdict = "bad";
  for (int tries = 0; tries <= static_cast<int>(n); ++tries) {
    BisectNext next = next_step(commits);
    if (next.kind == BisectNext::Kind::found) {
      CHECK(next.index == first_bad);
      return tries;
    }
    REQUIRE(next.kind == BisectNext::Kind::test);
    commits[next.index].verdict = next.index >= first_bad ? "bad" : "good";
  }
  FAIL("no end");
  return -1;
}
}  // namespace

TEST_CASE("bisect: the first bad commit within log2(n)+1 tries, wherever it is") {
  for (size_t n : {1, 2, 3, 7, 16, 64, 100})
    for (size_t bad = 0; bad < n; ++bad) {
      CAPTURE(n);
      CAPTURE(bad);
      CHECK(tries_to_find(n, bad) <= max_builds(n));
    }
  CHECK(max_builds(1) == 1);
  CHECK(max_builds(16) == 5);
  CHECK(max_builds(64) == 7);
}

TEST_CASE("bisect: a skipped commit is passed over, and one it cannot tell apart is said so") {
  std::vector<BisectCommit> commits(5);
  commits[4].verdict = "bad";
  BisectNext first = next_step(commits);
  REQUIRE(first.kind == BisectNext::Kind::test);
  CHECK(first.index == 1);  // the middle of 0..3, the older of two
  commits[1].verdict = "skip";
  BisectNext second = next_step(commits);
  REQUIRE(second.kind == BisectNext::Kind::test);
  CHECK(second.index == 2);
  commits[0].verdict = "good";
  commits[2].verdict = "bad";
  BisectNext last = next_step(commits);
  CHECK(last.kind == BisectNext::Kind::ambiguous);
  CHECK(last.between == std::vector<size_t>{1, 2});
}
