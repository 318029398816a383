#include "daemon/resources/local_facts.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
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

// Where builds run on this machine: a single-user Nix makes their directories in its TMPDIR.
std::string tmp_root() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir && *tmpdir ? tmpdir : "/tmp";
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
  auto build_dir = space_of(tmp_root());
  if (!store || !build_dir) return std::nullopt;
  std::tie(f.store_free, f.store_size) = *store;
  f.build_dir_free = build_dir->first;
  if (auto psi = read_file("/proc/pressure/memory")) f.pressure_full_avg10 = parse_memory_pressure(*psi);
  return f;
}

std::string make_build_tmpdir(const std::string& label, std::string& error) {
  std::string pattern = tmp_root() + "/ptbuild-" + label + "-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    error = "cannot make " + pattern + ": " + std::strerror(errno);
    return "";
  }
  // Nix's builder user (nixbld) goes through it to its own directory when the sandbox is off.
  ::chmod(pattern.c_str(), 0755);
  return pattern;
}

DirUsage dir_usage(const std::string& dir) {
  auto started = std::chrono::steady_clock::now();
  DirUsage u;
  std::set<std::pair<dev_t, ino_t>> linked;  // files with more than one name, counted once
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           dir, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    u.empty = false;
    struct stat st {};
    // Files come and go while the build runs: one gone since it was listed is not counted.
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !linked.insert({st.st_dev, st.st_ino}).second) continue;
    u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  u.walk_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return u;
}

}  // namespace ptbuild
