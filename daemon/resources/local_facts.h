// This machine's facts for the scheduler (docs/resources.md): /proc/meminfo, the cores this
// process may run on, statvfs of the store and of the build directory, /proc/pressure/memory.
// Blocking file reads: off the event loop.
#pragma once

#include <optional>
#include <string>

#include "core/resources.h"

namespace ptbuild {

std::optional<MachineFacts> read_local_facts();

// A build's own temporary directory, made under this machine's ($TMPDIR, else /tmp) and given
// to Nix as TMPDIR: a single-user Nix makes the build's directory there, so its size is the
// build's (a nix-daemon's builds never use it, and it stays empty). "" with `error` when it
// cannot be made.
std::string make_build_tmpdir(const std::string& label, std::string& error);

// The disk a directory tree takes (allocated blocks; hard links once), and whether anything is
// in it. Walked file by file: a build directory with 100,000 files costs a fraction of a second.
struct DirUsage {
  uint64_t bytes = 0;
  bool empty = true;
  double walk_seconds = 0;  // what the walk cost, to pace the next
};
DirUsage dir_usage(const std::string& dir);

}  // namespace ptbuild
