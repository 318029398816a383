// GET /metrics (docs/web.md): what the daemon knows, in the Prometheus text format. The daemon fills
// the snapshot (store and scheduler); rendering is pure.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <string>
#include <vector>

namespace ptbuild {

struct MetricsSnapshot {
  struct Builder {
    std::string name;
    int running = 0;
    int slots = 0;
    bool up = true;
    bool facts = false;  // the figures below were read (docs/resources.md)
    uint64_t memory_total = 0, memory_available = 0, memory_committed = 0;
    uint64_t store_free = 0, build_dir_free = 0;
  };
  std::map<std::string, int64_t> jobs_by_state;  // every state, zero included
  std::vector<Builder> builders;
  std::map<std::string, std::vector<double>> build_seconds_by_family;  // finished builds
  std::map<std::string, int64_t> failures_by_class;
  int64_t hash_repairs = 0;
  uint64_t log_bytes_written = 0;  // since the daemon started
  int64_t oom_kills = 0;           // builds killed or stopped for memory since the daemon started
  uint64_t gc_freed_bytes = 0;     // by ptbuild's garbage collections since the daemon started
  std::map<std::string, std::vector<double>> peak_memory_by_family;  // measured, of finished builds
  // (event, result) -> deliveries since the daemon started (docs/notifications.md).
  std::map<std::pair<std::string, std::string>, int64_t> notifications;
};

// Bucket bounds of the build duration histogram, in seconds: a PyTorch build takes 2-3 hours,
// a dependency minutes.
inline constexpr double kBuildSecondsBuckets[] = {60, 300, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200};
// Bucket bounds of the peak memory histogram, in bytes: a CPU dependency takes hundreds of MiB,
// a CUDA PyTorch build at -j32 30-44 GiB.
inline constexpr double kPeakMemoryBuckets[] = {268435456.0,   1073741824.0,  4294967296.0,
                                                8589934592.0,  17179869184.0, 34359738368.0,
                                                51539607552.0, 68719476736.0, 137438953472.0};

std::string render_prometheus(const MetricsSnapshot& m);

}  // namespace ptbuild
