#include "core/gc_policy.h"

#include <algorithm>
#include <set>

namespace ptbuild {

GcPlan plan_gc(const std::vector<GcBuild>& builds, int keep_good) {
  GcPlan plan;
  std::map<std::string, int> good_seen;
  std::set<std::string> verified_seen, kept_paths;
  for (const GcBuild& b : builds) {
    std::string why;
    if (b.pending_publish)
      why = "a publish job takes it";
    else if (b.published)
      why = "published";
    else if (b.good && good_seen[b.variant] < std::max(1, keep_good))
      why = good_seen[b.variant] == 0
                ? "the newest good build of " + b.variant
                : "one of the last " + std::to_string(keep_good) + " good builds of " + b.variant;
    else if (b.verified && !verified_seen.count(b.variant))
      why = "verified, not published yet";
    if (b.good) ++good_seen[b.variant];
    if (b.verified) verified_seen.insert(b.variant);
    if (!why.empty()) {
      plan.keep[b.job] = why;
      kept_paths.insert(b.out_path);
    }
  }
  for (const GcBuild& b : builds)
    if (!plan.keep.count(b.job)) {
      if (kept_paths.count(b.out_path))
        plan.keep[b.job] = "its output is kept for another build";
      else
        plan.drop.push_back(b);
    }
  return plan;
}

}  // namespace ptbuild
