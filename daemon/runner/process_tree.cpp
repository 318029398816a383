#include "daemon/runner/process_tree.h"

#include <dirent.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace ptbuild {
namespace {

struct ProcStat {
  pid_t pid;
  pid_t ppid;
  pid_t pgrp;
  unsigned long long start_ticks;
};

std::optional<ProcStat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // The command name may contain spaces and parentheses: fields resume after the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string state;
  ProcStat st{pid, 0, 0, 0};
  fields >> state >> st.ppid >> st.pgrp;
  std::string skip;
  for (int field = 6; field < 22; ++field) fields >> skip;  // fields 6..21
  fields >> st.start_ticks;                                 // field 22
  if (!fields) return std::nullopt;
  return st;
}

std::vector<ProcStat> all_processes() {
  std::vector<ProcStat> out;
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (auto st = read_stat(static_cast<pid_t>(pid))) out.push_back(*st);
  }
  ::closedir(dir);
  return out;
}

std::vector<pid_t> descendants_in(const std::vector<ProcStat>& procs, const std::set<pid_t>& roots) {
  std::multimap<pid_t, pid_t> children;
  for (const ProcStat& p : procs) children.emplace(p.ppid, p.pid);
  std::vector<pid_t> out;
  std::vector<pid_t> stack(roots.begin(), roots.end());
  std::set<pid_t> seen(roots.begin(), roots.end());
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it)
      if (seen.insert(it->second).second) {
        out.push_back(it->second);
        stack.push_back(it->second);
      }
  }
  return out;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace

std::optional<std::string> process_identity(pid_t pid) {
  auto st = read_stat(pid);
  if (!st) return std::nullopt;
  return boot_id() + ":" + std::to_string(st->start_ticks);
}

std::vector<pid_t> descendants(pid_t root) {
  return descendants_in(all_processes(), {root});
}

int kill_leftover_build(pid_t pgid, const std::string& identity) {
  size_t colon = identity.rfind(':');
  if (pgid <= 1 || colon == std::string::npos || identity.substr(0, colon) != boot_id()) return 0;
  unsigned long long leader_start = std::stoull(identity.substr(colon + 1));
  std::vector<ProcStat> procs = all_processes();
  std::set<pid_t> members;
  for (const ProcStat& p : procs)
    if (p.pgrp == pgid && p.start_ticks >= leader_start) members.insert(p.pid);
  std::vector<pid_t> victims(members.begin(), members.end());
  for (pid_t d : descendants_in(procs, members)) victims.push_back(d);
  int killed = 0;
  for (pid_t v : victims)
    if (::kill(v, SIGKILL) == 0) ++killed;
  return killed;
}

}  // namespace ptbuild
