// What the end of a build means for its job (docs/jobs.md, docs/hash-repair.md, docs/failures.md,
// docs/fleet.md), decided without clocks, processes or a database: the scheduler acts on the verdict.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/job.h"

namespace ptbuild {

struct BuildEnd {
  const Failure* failure = nullptr;  // the diagnosis; nullptr for a clean exit
  bool left_result = false;          // a clean exit left its result link
  bool hash_repairable = false;      // a hash mismatch that hashfix may repair (on, not refused)
  int network_retries = 0;           // network failures of this job retried so far
  int max_retries = 0;               // daemon.retries
  Millis retry_backoff{0};           // daemon.retry_backoff
  int64_t job_id = 0;
  std::string builder;                      // where it ran
  std::vector<std::string> machine_faults;  // the builders of this job's earlier machine faults
};

// A "machine" failure that follows one job from builder to builder is the job's own: after the
// first builder, or the third time on one, it fails as the recipe's (and rests no builder).
inline constexpr int kMachineFaultsPerJob = 3;

struct Verdict {
  enum class Kind {
    succeeded,
    builder_fault,  // the machine's fault: the job goes back to the queue, the builder rests
    repair_hash,    // repair the recipe's hash, then decide
    retry,          // a network failure: queued again after `wait`
    failed,
  } kind = Kind::failed;
  Millis wait{0};
  std::string hint;  // a failure's hint when the verdict has a better one than the diagnosis
};

// The rules, in order: a machine fault is never the recipe's, unless it follows the job (above); a
// repairable hash is repaired; a
// network failure is retried while retries are left, after retry_backoff × 2^(n−1); any other
// failure fails; a clean exit without a result fails too (not a derivation).
Verdict decide_build_end(const BuildEnd& end);

}  // namespace ptbuild
