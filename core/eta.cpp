#include "core/eta.h"

#include <algorithm>
#include <chrono>

namespace ptbuild {

std::map<int64_t, SystemTime> estimate_ends(const std::vector<Job>& jobs,
                                            const std::function<double(const Job&)>& expected_seconds,
                                            int slots, SystemTime now) {
  using namespace std::chrono;
  std::map<int64_t, SystemTime> ends;
  std::vector<SystemTime> free_at;  // when each busy slot frees up
  // Running builds first, wherever they are listed: they hold their slots already.
  for (bool running : {true, false}) {
    for (const Job& j : jobs) {
      if ((j.state == JobState::running) != running || (!running && j.state != JobState::queued)) continue;
      if (j.kind != JobKind::build) continue;
      double expected = expected_seconds(j);
      if (expected < 0) continue;
      auto length = duration_cast<SystemTime::duration>(duration<double>(expected));
      SystemTime end;
      if (running) {
        SystemTime started = j.started_at ? parse_rfc3339(*j.started_at).value_or(now) : now;
        end = std::max(now, started + length);
      } else {
        std::sort(free_at.begin(), free_at.end());
        bool slot_free = static_cast<int>(free_at.size()) < slots;
        SystemTime start = slot_free ? now : std::max(now, free_at.front());
        if (!slot_free) free_at.erase(free_at.begin());
        end = start + length;
      }
      free_at.push_back(end);
      ends[j.id] = end;
    }
  }
  return ends;
}

}  // namespace ptbuild
