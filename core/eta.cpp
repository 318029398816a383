#include "core/eta.h"

#include <algorithm>
#include <chrono>

namespace ptbuild {

std::map<int64_t, SystemTime> estimate_ends(const std::vector<Job>& jobs,
                                            const std::function<double(const Job&)>& expected_seconds,
                                            const std::vector<EtaSlot>& slots, SystemTime now,
                                            const CanTake& can_take) {
  using namespace std::chrono;
  std::map<int64_t, SystemTime> ends;
  std::vector<SystemTime> free_at(slots.size(), now);  // when each slot frees up
  std::vector<bool> held(slots.size(), false);         // by a running build
  auto length_on = [&](double seconds, size_t slot) {
    return duration_cast<SystemTime::duration>(duration<double>(seconds / std::max(0.01, slots[slot].speed)));
  };
  // Running builds first, wherever they are listed: they hold their slots already.
  for (const Job& j : jobs) {
    if (j.state != JobState::running || j.kind != JobKind::build) continue;
    double expected = expected_seconds(j);
    if (expected < 0) continue;
    // Its builder's first slot not yet held; else any (a builder gone from the config).
    size_t slot = slots.size();
    for (size_t i = 0; i < slots.size() && slot == slots.size(); ++i)
      if (!held[i] && j.builder && slots[i].builder == *j.builder) slot = i;
    for (size_t i = 0; i < slots.size() && slot == slots.size(); ++i)
      if (!held[i]) slot = i;
    if (slot == slots.size()) continue;  // more running than slots (a reload took some away)
    SystemTime started = j.started_at ? parse_rfc3339(*j.started_at).value_or(now) : now;
    held[slot] = true;
    free_at[slot] = ends[j.id] = std::max(now, started + length_on(expected, slot));
  }
  for (const Job& j : jobs) {
    if (j.state != JobState::queued || j.kind != JobKind::build) continue;
    double expected = expected_seconds(j);
    if (expected < 0) continue;
    size_t best = slots.size();
    for (size_t i = 0; i < slots.size(); ++i)
      if ((!can_take || can_take(j, slots[i])) &&
          (best == slots.size() ||
           free_at[i] + length_on(expected, i) < free_at[best] + length_on(expected, best)))
        best = i;
    if (best == slots.size()) continue;  // no builder takes it: it never ends
    free_at[best] = ends[j.id] = free_at[best] + length_on(expected, best);
  }
  return ends;
}

void order_as_dispatched(std::vector<Job>& jobs, const std::function<double(const Job&)>& expected_seconds,
                         bool longest_first) {
  std::stable_sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return longest_first && expected_seconds(a) > expected_seconds(b);
  });
}

}  // namespace ptbuild
