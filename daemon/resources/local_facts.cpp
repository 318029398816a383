#include "daemon/resources/local_facts.h"

#include <sched.h>
#include <sys/statvfs.h>

#include <cstdlib>
#include <string>
#include <tuple>

#include "local/files.h"

namespace ptbuild {

namespace {

// The free space and size of the file system `path` is on (its nearest existing parent: a
// fresh machine has no /nix/store before its first build).
std::optional<std::pair<uint64_t, uint64_t>> space_of(std::string path) {
  struct statvfs st {};
  while (::statvfs(path.c_str(), &st) != 0) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || path == "/") return std::nullopt;
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return std::pair{static_cast<uint64_t>(st.f_bavail) * st.f_frsize,
                   static_cast<uint64_t>(st.f_blocks) * st.f_frsize};
}

}  // namespace

std::optional<MachineFacts> read_local_facts() {
  MachineFacts f;
  auto memory = parse_meminfo(read_file("/proc/meminfo").value_or(""));
  if (!memory) return std::nullopt;
  std::tie(f.memory_total, f.memory_available) = *memory;
  cpu_set_t set;
  f.cores = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  auto store = space_of("/nix/store");
  const char* tmpdir = std::getenv("TMPDIR");
  auto build_dir = space_of(tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!store || !build_dir) return std::nullopt;
  std::tie(f.store_free, f.store_size) = *store;
  f.build_dir_free = build_dir->first;
  if (auto psi = read_file("/proc/pressure/memory")) f.pressure_full_avg10 = parse_memory_pressure(*psi);
  return f;
}

}  // namespace ptbuild
