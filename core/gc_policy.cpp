#include "core/gc_policy.h"

#include <algorithm>
#include <regex>
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

std::optional<GcSummary> parse_gc_summary(std::string_view text) {
  static const std::regex summary(R"((\d+) store paths deleted, ([0-9.]+) (B|KiB|MiB|GiB|TiB) freed)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(text.begin(), text.end(), m, summary)) return std::nullopt;
  double unit = m[3] == "B"     ? 1.0
                : m[3] == "KiB" ? 1024.0
                : m[3] == "MiB" ? 1048576.0
                : m[3] == "GiB" ? 1073741824.0
                                : 1099511627776.0;
  return GcSummary{std::stoll(m[1].str()), static_cast<uint64_t>(std::stod(m[2].str()) * unit)};
}

}  // namespace ptbuild
