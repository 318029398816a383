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
  std::vector<EtaSlot> two{{"local", 1.0}, {"local", 1.0}}, one{{"local", 1.0}};
  auto ends = estimate_ends(jobs, hour, two, now);
  CHECK(format_rfc3339(ends.at(1)) == "2026-01-01T10:30:00.000Z");
  CHECK(format_rfc3339(ends.at(2)) == "2026-01-01T11:00:00.000Z");  // the second slot is free now
  CHECK(format_rfc3339(ends.at(3)) == "2026-01-01T11:30:00.000Z");  // after #1 frees its slot
  CHECK(!ends.count(4));

  // A running build past its expected length ends "now", not in the past; unknown lengths get none.
  auto ends2 = estimate_ends(
      {job(5, JobState::running, "2026-01-01T07:00:00Z"), job(6, JobState::queued)},
      [](const Job& j) { return j.id == 6 ? -1.0 : 3600.0; }, one, now);
  CHECK(ends2.at(5) == now);
  CHECK(!ends2.count(6));

  // A running build listed after queued ones still holds its slot first.
  auto ends3 = estimate_ends({job(7, JobState::queued), job(8, JobState::running, "2026-01-01T10:00:00Z")},
                             hour, one, now);
  CHECK(format_rfc3339(ends3.at(7)) == "2026-01-01T12:00:00.000Z");
}

TEST_CASE("ETAs: a build takes its time at its machine's speed, and goes where it would end first") {
  SystemTime now = *parse_rfc3339("2026-01-01T10:00:00.000Z");
  auto hours = [](const Job& j) { return j.id == 1 ? 7200.0 : 3600.0; };
  Job running = job(1, JobState::running, "2026-01-01T10:00:00Z");
  running.builder = "fast";
  std::vector<EtaSlot> slots{{"slow", 0.5}, {"fast", 2.0}};
  // #1 (2 h at speed 1) runs on the fast one: an hour. #2 (1 h) would take 2 h on the slow one
  // from now, or 30 min on the fast one after #1: there, at 11:30. #3: the slow one, at 12:00.
  auto ends = estimate_ends({running, job(2, JobState::queued), job(3, JobState::queued)}, hours, slots, now);
  CHECK(format_rfc3339(ends.at(1)) == "2026-01-01T11:00:00.000Z");
  CHECK(format_rfc3339(ends.at(2)) == "2026-01-01T11:30:00.000Z");
  CHECK(format_rfc3339(ends.at(3)) == "2026-01-01T12:00:00.000Z");
  // A build only the slow machine can take goes there, however long it takes; one no machine
  // takes never ends.
  auto only_slow = [](const Job& j, const EtaSlot& slot) { return j.id != 5 || slot.builder == "slow"; };
  auto ends2 = estimate_ends({job(5, JobState::queued)}, hours, slots, now, only_slow);
  CHECK(format_rfc3339(ends2.at(5)) == "2026-01-01T12:00:00.000Z");
  CHECK(estimate_ends({job(6, JobState::queued)}, hours, slots, now, [](const Job&, const EtaSlot&) {
          return false;
        }).empty());
  // No slot at all (every builder taken out): no ETA, not a crash.
  CHECK(estimate_ends({job(4, JobState::queued)}, hours, {}, now).empty());
}

TEST_CASE("ETAs: the queue is estimated in the dispatch's order, priority then the longest") {
  std::vector<Job> jobs{job(1, JobState::queued), job(2, JobState::queued), job(3, JobState::queued)};
  jobs[2].priority = 5;
  auto seconds = [](const Job& j) { return 100.0 * j.id; };
  order_as_dispatched(jobs, seconds, true);
  CHECK(jobs[0].id == 3);
  CHECK(jobs[1].id == 2);  // longer than #1
  CHECK(jobs[2].id == 1);
  std::vector<Job> fifo{job(1, JobState::queued), job(2, JobState::queued)};
  order_as_dispatched(fifo, seconds, false);
  CHECK(fifo[0].id == 1);
}
