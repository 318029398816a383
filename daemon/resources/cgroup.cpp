#include "daemon/resources/cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/text.h"
#include "local/files.h"

namespace ptbuild {

namespace {

constexpr const char* kPrefix = "ptbuild-job-";

std::vector<std::string> fields(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, sep);) out.push_back(f);
  return out;
}

bool write_file(const std::string& path, const std::string& text, std::string& error) {
  std::ofstream out(path);
  out << text;
  out.flush();
  if (out) return true;
  error = "cannot write " + text + " to " + path + ": " + std::strerror(errno);
  return false;
}

std::optional<uint64_t> read_number(const std::string& path) {
  std::optional<std::string> text = read_file(path);
  if (!text) return std::nullopt;
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "key value" lines (memory.events, memory.oom_control, cpu.stat) -> value of `key`.
std::optional<uint64_t> keyed(const std::string& path, const std::string& key) {
  std::optional<std::string> text = read_file(path);
  if (!text) return std::nullopt;
  for (std::string_view line : split_lines(*text))
    if (line.starts_with(key + " ")) try {
        return std::stoull(std::string(line.substr(key.size() + 1)));
      } catch (const std::exception&) {
        return std::nullopt;
      }
  return std::nullopt;
}

}  // namespace

CgroupDirs locate_cgroups(std::string_view proc_self_cgroup, std::string_view mountinfo) {
  // mount point and root of each cgroup file system, by its controllers ("" for cgroup2)
  struct Mount {
    std::string root, point;
  };
  std::optional<Mount> v2, memory, cpuacct;
  for (std::string_view view : split_lines(mountinfo)) {
    std::string line(view);
    // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER_OPTIONS
    std::vector<std::string> f = fields(line, ' ');
    size_t dash = std::find(f.begin(), f.end(), "-") - f.begin();
    if (f.size() < 5 || dash + 1 >= f.size()) continue;
    const std::string& type = f[dash + 1];
    std::string super = dash + 3 < f.size() ? f[dash + 3] : "";
    Mount m{f[3], f[4]};
    if (type == "cgroup2") v2 = m;
    if (type != "cgroup") continue;
    for (const std::string& option : fields(super, ','))
      if (option == "memory")
        memory = m;
      else if (option == "cpuacct")
        cpuacct = m;
  }
  auto under = [](const Mount& m, const std::string& path) {
    std::string rel = path;
    if (m.root != "/" && rel.starts_with(m.root)) rel = rel.substr(m.root.size());
    return m.point + (rel == "/" ? "" : rel);
  };
  CgroupDirs d;
  std::string v2_path, memory_path, cpuacct_path;
  bool memory_listed = false;
  for (std::string_view view : split_lines(proc_self_cgroup)) {
    std::string line(view);
    std::vector<std::string> f = fields(line, ':');
    if (f.size() < 3) continue;
    std::string path = line.substr(f[0].size() + f[1].size() + 2);
    if (f[0] == "0" && f[1].empty()) v2_path = path;
    for (const std::string& c : fields(f[1], ',')) {
      if (c == "memory") memory_path = path, memory_listed = true;
      if (c == "cpuacct") cpuacct_path = path;
    }
  }
  if (memory_listed && memory) {  // v1's memory controller (also on hybrid systems)
    d.version = 1;
    d.memory = under(*memory, memory_path);
    if (cpuacct) d.cpuacct = under(*cpuacct, cpuacct_path);
    return d;
  }
  if (v2 && !v2_path.empty()) {
    d.version = 2;
    d.memory = under(*v2, v2_path);
    return d;
  }
  d.why_not = "no cgroup memory controller is mounted";
  return d;
}

std::unique_ptr<BuildCgroups> BuildCgroups::open(std::string& why_not) {
  CgroupDirs d = locate_cgroups(read_file("/proc/self/cgroup").value_or(""),
                                read_file("/proc/self/mountinfo").value_or(""));
  if (d.version == 0) {
    why_not = d.why_not;
    return nullptr;
  }
  if (d.version == 2) {
    // A group with controllers for its children holds no process itself: the daemon moves to a
    // leaf of its own, then gives the memory controller to the groups beside it.
    std::string controllers = read_file(d.memory + "/cgroup.subtree_control").value_or("");
    if (controllers.find("memory") == std::string::npos) {
      std::string error;
      std::filesystem::create_directory(d.memory + "/ptbuildd");
      if (!write_file(d.memory + "/ptbuildd/cgroup.procs", std::to_string(::getpid()), error) ||
          !write_file(d.memory + "/cgroup.subtree_control", "+memory", error)) {
        why_not = error + " (the unit needs Delegate=yes)";
        return nullptr;
      }
    }
  }
  auto groups = std::make_unique<BuildCgroups>(d);
  groups->remove_stale();
  std::string error;
  std::string probe = "probe-" + std::to_string(::getpid());
  if (groups->create(probe, 0, error).empty()) {
    why_not = error;
    return nullptr;
  }
  groups->remove(probe);
  return groups;
}

std::vector<std::string> BuildCgroups::dirs_of(const std::string& name) const {
  std::vector<std::string> out{dirs_.memory + "/" + kPrefix + name};
  if (!dirs_.cpuacct.empty()) out.push_back(dirs_.cpuacct + "/" + kPrefix + name);
  return out;
}

std::vector<std::string> BuildCgroups::create(const std::string& name, uint64_t memory_limit,
                                              std::string& error) const {
  std::vector<std::string> procs;
  for (const std::string& dir : dirs_of(name)) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      if (procs.empty()) {  // the memory group is the one that matters; cpuacct is a bonus
        error = "cannot make the build's cgroup " + dir + ": " + std::strerror(errno);
        return {};
      }
      continue;
    }
    procs.push_back(dir + "/cgroup.procs");
  }
  const std::string mem = dirs_of(name).front();
  std::string limit = memory_limit ? std::to_string(memory_limit) : (dirs_.version == 2 ? "max" : "-1");
  std::string ignored;
  if (dirs_.version == 2) {
    if (!write_file(mem + "/memory.max", limit, error)) return {};
    write_file(mem + "/memory.swap.max", "0", ignored);  // absent without swap accounting
  } else {
    if (!write_file(mem + "/memory.limit_in_bytes", limit, error)) return {};
    write_file(mem + "/memory.swappiness", "0", ignored);
  }
  return procs;
}

BuildCgroups::Usage BuildCgroups::read(const std::string& name) const {
  Usage u;
  const std::string mem = dirs_of(name).front();
  if (dirs_.version == 2) {
    u.peak_memory = read_number(mem + "/memory.peak");  // Linux 5.19 and later
    u.current_memory = read_number(mem + "/memory.current");
    u.oom_killed = keyed(mem + "/memory.events", "oom_kill").value_or(0) > 0;
    if (auto usec = keyed(mem + "/cpu.stat", "usage_usec")) u.cpu_seconds = static_cast<double>(*usec) / 1e6;
  } else {
    u.peak_memory = read_number(mem + "/memory.max_usage_in_bytes");
    u.current_memory = read_number(mem + "/memory.usage_in_bytes");
    u.oom_killed = keyed(mem + "/memory.oom_control", "oom_kill").value_or(0) > 0;
    if (!dirs_.cpuacct.empty())
      if (auto ns = read_number(dirs_.cpuacct + "/" + kPrefix + name + "/cpuacct.usage"))
        u.cpu_seconds = static_cast<double>(*ns) / 1e9;
  }
  // A group no process ever joined used nothing: that is not a measurement.
  if (u.peak_memory == uint64_t{0}) u.peak_memory.reset();
  return u;
}

bool BuildCgroups::remove(const std::string& name) const {
  bool removed = true;
  for (const std::string& dir : dirs_of(name))
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) removed = false;
  return removed;
}

void BuildCgroups::remove_stale() const {
  for (const std::string& parent : {dirs_.memory, dirs_.cpuacct}) {
    if (parent.empty()) continue;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec))
      if (entry.is_directory(ec) && entry.path().filename().string().starts_with(kPrefix))
        ::rmdir(entry.path().c_str());  // one still busy stays
  }
}

}  // namespace ptbuild
