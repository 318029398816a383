#include "core/eta.h"

#include <doctest/doctest.h>

using namespace ptbuild;
using namespace std::chrono;

namespace {
Job job(int64_t id, JobState state, std::optional<std::string> started = std::nullopt) {
  Job j;
  j.id = id;
  j.variant = "v" + std::to_string(id);
  j.state = state;
  j.started_at = std::move(started);
  return j;
}
}  // namespace

TEST_CASE("ETAs: running builds end at start + length, queued ones take the next free slot") {
  SystemTime now = *parse_rfc3339("2026-01-01T10:00:00.000Z");
  std::vector<Job> jobs{job(1, JobState::running, "2026-01-01T09:30:00Z"), job(2, JobState::queued),
                        job(3, JobState::queued), job(4, JobState::succeeded)};
  auto hour = [](const Job&) { return 3600.0; };
  auto ends = estimate_ends(jobs, hour, 2, now);
  CHECK(format_rfc3339(ends.at(1)) == "2026-01-01T10:30:00.000Z");
  CHECK(format_rfc3339(ends.at(2)) == "2026-01-01T11:00:00.000Z");  // the second slot is free now
  CHECK(format_rfc3339(ends.at(3)) == "2026-01-01T11:30:00.000Z");  // after #1 frees its slot
  CHECK(!ends.count(4));

  // A running build past its expected length ends "now", not in the past; unknown lengths get none.
  auto ends2 = estimate_ends(
      {job(5, JobState::running, "2026-01-01T07:00:00Z"), job(6, JobState::queued)},
      [](const Job& j) { return j.id == 6 ? -1.0 : 3600.0; }, 1, now);
  CHECK(ends2.at(5) == now);
  CHECK(!ends2.count(6));

  // A running build listed after queued ones still holds its slot first.
  auto ends3 = estimate_ends({job(7, JobState::queued), job(8, JobState::running, "2026-01-01T10:00:00Z")},
                             hour, 1, now);
  CHECK(format_rfc3339(ends3.at(7)) == "2026-01-01T12:00:00.000Z");
}
