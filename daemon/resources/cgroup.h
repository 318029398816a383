// A cgroup for each build ptbuildd runs on this machine (docs/resources.md): the kernel then tells
// what the build used at its peak (cgroup v2 memory.peak, v1 memory.max_usage_in_bytes), how
// much CPU, whether it killed a process of it for memory, and holds it to the memory it was
// given. Made under the daemon's own cgroup (the systemd unit delegates it: Delegate=yes).
//
// Every call touches cgroupfs: a blocking file operation, made off the event loop. The object
// holds only paths found at start and may be used from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

// Where the daemon's own groups are, read from /proc/self/cgroup and /proc/self/mountinfo.
struct CgroupDirs {
  int version = 0;      // 1 or 2; 0: none usable
  std::string memory;   // v2: the unified group; v1: the memory controller's group
  std::string cpuacct;  // v1 only: the cpuacct controller's group ("" when not mounted)
  std::string why_not;  // when version is 0
};
CgroupDirs locate_cgroups(std::string_view proc_self_cgroup, std::string_view mountinfo);

class BuildCgroups {
 public:
  // The daemon's groups, checked by making one; nullptr and `why_not` when builds cannot have
  // their own (no memory controller, no permission).
  static std::unique_ptr<BuildCgroups> open(std::string& why_not);
  // For tests: under these directories.
  explicit BuildCgroups(CgroupDirs dirs) : dirs_(std::move(dirs)) {}

  const char* measured_by() const { return dirs_.version == 2 ? "cgroup-v2" : "cgroup-v1"; }

  // Makes the group `name` with this memory limit (0: none) and no swap, and returns the
  // cgroup.procs files a build's first process joins; empty, with `error`, when it cannot.
  std::vector<std::string> create(const std::string& name, uint64_t memory_limit, std::string& error) const;

  struct Usage {
    std::optional<uint64_t> peak_memory;
    std::optional<uint64_t> current_memory;
    std::optional<double> cpu_seconds;
    bool oom_killed = false;
  };
  Usage read(const std::string& name) const;
  // Removes the group (its processes are gone); false when the kernel still holds it.
  bool remove(const std::string& name) const;
  // At start: the empty groups of builds a crashed daemon left.
  void remove_stale() const;

 private:
  std::vector<std::string> dirs_of(const std::string& name) const;
  CgroupDirs dirs_;
};

}  // namespace ptbuild
