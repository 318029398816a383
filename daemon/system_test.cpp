#include "daemon/system.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
// A stand-in for /proc: the autogroup switch and this process's cgroups.
std::string fake_proc(testing::TempDir& dir, const std::string& autogroup, const std::string& cgroups) {
  dir.write("sys/kernel/sched_autogroup_enabled", autogroup);
  dir.write("self/cgroup", cgroups);
  return dir.path();
}
}  // namespace

TEST_CASE("builds' priority: a warning only in the root CPU cgroup with autogroup on") {
  testing::TempDir dir;
  // This machine's kind: cgroup v1, the cpu controller at the root.
  std::string v1_root = "9:name=systemd:/\n4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n";
  CHECK(builds_priority_warning(fake_proc(dir, "1\n", v1_root)).find("autogroup") != std::string::npos);
  CHECK(builds_priority_warning(fake_proc(dir, "0\n", v1_root)).empty());
  // Under systemd (cgroup v2): the service's own cgroup, where the builds' SCHED_IDLE holds.
  CHECK(builds_priority_warning(fake_proc(dir, "1\n", "0::/system.slice/ptbuildd.service\n")).empty());
  CHECK_FALSE(builds_priority_warning(fake_proc(dir, "1\n", "0::/\n")).empty());
  // v1 with cpu and cpuacct together, in a group of their own.
  CHECK(builds_priority_warning(fake_proc(dir, "1\n", "3:cpu,cpuacct:/bench\n0::/\n")).empty());
  // A kernel without autogroup has no switch at all.
  testing::TempDir bare;
  bare.write("self/cgroup", "0::/\n");
  CHECK(builds_priority_warning(bare.path()).empty());
}
