// When running and queued builds should end (the `eta` of docs/jobs.md), from typed jobs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/job.h"
#include "core/text.h"

namespace ptbuild {

// Running builds end at start + their expected length (never before `now`); queued builds take
// the next free slot in the order given. `expected_seconds` returns < 0 when the length is not
// known: such a job gets no ETA (and holds no slot in the estimate). Publish jobs get none.
std::map<int64_t, SystemTime> estimate_ends(const std::vector<Job>& jobs,
                                            const std::function<double(const Job&)>& expected_seconds,
                                            int slots, SystemTime now);

}  // namespace ptbuild
