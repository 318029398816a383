#include "core/build_verdict.h"

#include <algorithm>

#include "core/diagnosis.h"

namespace ptbuild {

Verdict decide_build_end(const BuildEnd& e) {
  using Kind = Verdict::Kind;
  if (!e.failure) return {e.left_result ? Kind::succeeded : Kind::failed, Millis{0}, ""};
  const Failure& f = *e.failure;
  if (is_machine_fault(f)) {
    bool elsewhere = std::any_of(e.machine_faults.begin(), e.machine_faults.end(),
                                 [&](const std::string& b) { return b != e.builder; });
    if (only_the_machine(f) ||
        (!elsewhere && static_cast<int>(e.machine_faults.size()) + 1 < kMachineFaultsPerJob))
      return {Kind::builder_fault, Millis{0}, ""};
    std::vector<std::string> where = e.machine_faults;
    where.push_back(e.builder);
    std::string list;
    for (const std::string& b : where) list += (list.empty() ? "" : ", ") + b;
    return {Kind::failed, Millis{0},
            "this failure followed the job from attempt to attempt (on " + list +
                "): it is the recipe's own error, not the machines'; fix the recipe, then `ptbuild retry " +
                std::to_string(e.job_id) + "`"};
  }
  if (f.failure_class == failure_class::kHashMismatch && e.hash_repairable)
    return {Kind::repair_hash, Millis{0}, ""};
  if (f.failure_class != failure_class::kNetwork) return {Kind::failed, Millis{0}, ""};
  if (e.network_retries < e.max_retries)
    return {Kind::retry, e.retry_backoff * (int64_t{1} << std::min(e.network_retries, 16)), ""};
  std::string spent = e.network_retries == 0
                          ? std::string("the download failed and retries are off (daemon.retries = 0)")
                          : "the download failed again after " + std::to_string(e.network_retries) +
                                " retries (daemon.retries)";
  return {Kind::failed, Millis{0},
          spent + ": check the network, a proxy or the URL, then `ptbuild retry " + std::to_string(e.job_id) +
              "`"};
}

}  // namespace ptbuild
