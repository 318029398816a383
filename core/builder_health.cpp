#include "core/builder_health.h"

#include <algorithm>

#include "core/text.h"

namespace ptbuild {

std::chrono::milliseconds BuilderHealth::backoff(int faults, std::chrono::milliseconds base) {
  constexpr std::chrono::milliseconds kMax = std::chrono::hours(1);
  std::chrono::milliseconds wait = base;
  for (int i = 1; i < faults && wait < kMax; ++i) wait *= 3;
  return std::min(wait, kMax);
}

void BuilderHealth::fault(std::string why, Time now, std::chrono::milliseconds base) {
  ++faults;
  checking = false;
  reason = std::move(why);
  down_until = now + backoff(faults, base);
}

std::string BuilderHealth::describe() const {
  if (checking) return "checking that Nix can build here (probe build)";
  if (up()) return "up";
  return "down until " + format_rfc3339(*down_until) + ": " + reason;
}

}  // namespace ptbuild
