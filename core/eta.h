// When running and queued builds should end (the `eta` of docs/jobs.md) and so the whole queue
// (`scheduler.eta`), from typed jobs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/text.h"

namespace ptbuild {

// One build slot of the fleet: its builder and that machine's speed factor.
struct EtaSlot {
  std::string builder;
  double speed = 1.0;
};

// Running builds end at start + their expected length on their builder (never before `now`);
// queued builds, in the order given (the dispatch's), each take the slot of a builder that can
// build it (`can_take`; none given: any) where it would end first. `expected_seconds` is at speed
// 1 and returns < 0 when the length is not known: such a job gets no ETA (and holds no slot in
// the estimate), nor does one no builder can take. Publish jobs get none.
using CanTake = std::function<bool(const Job&, const EtaSlot&)>;
std::map<int64_t, SystemTime> estimate_ends(const std::vector<Job>& jobs,
                                            const std::function<double(const Job&)>& expected_seconds,
                                            const std::vector<EtaSlot>& slots, SystemTime now,
                                            const CanTake& can_take = nullptr);

// The dispatch's order of the queued jobs among `jobs`, as the estimate wants them: priority
// first, then the longest (when the daemon orders longest-first), then the queue's order.
void order_as_dispatched(std::vector<Job>& jobs, const std::function<double(const Job&)>& expected_seconds,
                         bool longest_first);

}  // namespace ptbuild
