// What garbage collection may take (docs/resources.md): the retention policy over the builds
// ptbuild keeps as GC roots. Pure; the daemon removes the roots it decides and lets Nix's own GC
// collect.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

struct GcBuild {
  int64_t job = 0;
  std::string variant;
  std::string out_path;
  bool good = false;             // succeeded, and verified where it was checked
  bool verified = false;         // its verification passed
  bool published = false;        // a publish job published this output
  bool pending_publish = false;  // a publish job for it is queued or running
};

struct GcPlan {
  std::map<int64_t, std::string> keep;  // job -> why its output stays
  std::vector<GcBuild> drop;            // builds whose root goes
};

// `builds` newest first. Kept: the newest `keep_good` good builds of each variant (at least the
// newest), everything published, the newest verified build of a variant that is not published
// yet, and whatever a queued or running publish job will take. An output kept for one job is
// kept for all that share it.
GcPlan plan_gc(const std::vector<GcBuild>& builds, int keep_good);

// Nix's summary of a collection ("3 store paths deleted, 1.20 MiB freed"); nullopt when the
// text has none.
struct GcSummary {
  int64_t paths = 0;
  uint64_t bytes = 0;
};
std::optional<GcSummary> parse_gc_summary(std::string_view text);

}  // namespace ptbuild
