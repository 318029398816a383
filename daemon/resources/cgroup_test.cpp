#include "daemon/resources/cgroup.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <doctest/doctest.h>

#include "local/files.h"

using namespace ptbuild;

TEST_CASE("cgroups: the daemon's own groups are found from /proc/self/cgroup and mountinfo") {
  // cgroup v1 (this machine, and many servers): the memory controller's group, cpuacct's beside it.
  std::string mountinfo_v1 =
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
      "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory\n";
  CgroupDirs v1 = locate_cgroups(
      "4:memory:/system.slice/ptbuildd.service\n2:cpu,cpuacct:/system.slice\n0::/\n", mountinfo_v1);
  CHECK(v1.version == 1);
  CHECK(v1.memory == "/sys/fs/cgroup/memory/system.slice/ptbuildd.service");
  CHECK(v1.cpuacct == "/sys/fs/cgroup/cpu,cpuacct/system.slice");
  // A container's view: the mount's root is the container's own group.
  CgroupDirs inner = locate_cgroups(
      "4:memory:/lxc/c1/app\n", "34 30 0:31 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  CHECK(inner.memory == "/sys/fs/cgroup/memory/app");
  // cgroup v2 (systemd's default since 2021).
  CgroupDirs v2 = locate_cgroups("0::/system.slice/ptbuildd.service\n",
                                 "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  CHECK(v2.version == 2);
  CHECK(v2.memory == "/sys/fs/cgroup/system.slice/ptbuildd.service");
  CHECK(locate_cgroups("0::/\n", "").why_not == "no cgroup memory controller is mounted");
}

TEST_CASE("cgroups: a build's group measures its peak and the kernel holds it to its limit") {
  // Where the runner says which cgroup version this kernel has (tests/cgroup2/run.sh: v2, in a
  // group laid out as systemd's Delegate=yes), that one is used, and none may be missing.
  const char* expected = std::getenv("PTBUILD_TEST_CGROUP");
  std::string started_in = read_file("/proc/self/cgroup").value_or("");
  std::string why_not;
  auto groups = BuildCgroups::open(why_not);
  if (expected) {
    REQUIRE_MESSAGE(groups, why_not);
    CHECK(groups->measured_by() == "cgroup-" + std::string(expected));
    // v2: a group with controllers for its children holds no process, so the daemon moved itself
    // into a leaf of its own (the unit's group keeps only the controllers).
    if (std::string(expected) == "v2" && started_in != "0::/\n")
      CHECK(read_file("/proc/self/cgroup") == started_in.substr(0, started_in.size() - 1) + "/ptbuildd\n");
  }
  if (!groups) {
    MESSAGE("no cgroup for builds here (" << why_not << "): nothing to measure with");
    return;
  }
  auto run_in = [&](const std::string& name, uint64_t limit, const char* megabytes) {
    std::string error;
    std::vector<std::string> procs = groups->create(name, limit, error);
    REQUIRE_MESSAGE(!procs.empty(), error);
    std::string command = "sh -c 'echo $$ > " + procs.front() +
                          " && exec dd if=/dev/zero of=/dev/null bs=" + megabytes + "M count=1 2>/dev/null'";
    return std::system(command.c_str());
  };
  std::string name = "test-" + std::to_string(::getpid());
  CHECK(run_in(name, 0, "200") == 0);
  BuildCgroups::Usage used = groups->read(name);
  REQUIRE(used.peak_memory);
  CHECK(*used.peak_memory >= uint64_t{200} << 20);
  CHECK_FALSE(used.oom_killed);
  CHECK(groups->remove(name));

  CHECK(run_in(name, uint64_t{100} << 20, "200") != 0);  // killed
  used = groups->read(name);
  CHECK(used.oom_killed);
  CHECK(*used.peak_memory <= uint64_t{100} << 20);
  CHECK(groups->remove(name));
}

TEST_CASE("cgroups: v2's files are written and read as the kernel's documentation gives them") {
  // This machine's memory controller is v1's, so v2 cannot be run here for real: this reads and
  // writes a directory laid out as cgroup v2 is (Documentation/admin-guide/cgroup-v2.rst), to
  // hold the names and formats the daemon relies on.
  char tmpl[] = "/tmp/ptbuild-cgroup2-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  std::string root = tmpl;
  BuildCgroups groups(CgroupDirs{2, root, "", ""});
  std::string error;
  std::vector<std::string> procs = groups.create("7-1", uint64_t{3} << 30, error);
  REQUIRE_MESSAGE(procs.size() == 1, error);
  std::string dir = root + "/ptbuild-job-7-1";
  CHECK(procs.front() == dir + "/cgroup.procs");
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(read(dir + "/memory.max") == std::to_string(uint64_t{3} << 30));
  CHECK(read(dir + "/memory.swap.max") == "0");
  std::ofstream(dir + "/memory.peak") << "734003200\n";
  std::ofstream(dir + "/memory.current") << "524288000\n";
  std::ofstream(dir + "/memory.events") << "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
  std::ofstream(dir + "/cpu.stat") << "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n";
  BuildCgroups::Usage used = groups.read("7-1");
  CHECK(used.peak_memory == uint64_t{734003200});
  CHECK(used.current_memory == uint64_t{524288000});
  CHECK(used.oom_killed);
  CHECK(used.cpu_seconds == doctest::Approx(2.5));
  // No limit: "max", as the kernel writes it.
  REQUIRE_FALSE(groups.create("8-1", 0, error).empty());
  CHECK(read(root + "/ptbuild-job-8-1/memory.max") == "max");
  std::filesystem::remove_all(root);
}
