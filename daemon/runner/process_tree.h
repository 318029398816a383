// Processes as /proc shows them: who descends from whom, and an identity that tells a build's
// process apart from a stranger that later got the same pid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace ptbuild {

// "<boot id>:<start time in clock ticks>" of a live process, or nullopt if it is gone.
std::optional<std::string> process_identity(pid_t pid);

// Every live process below `root` in the parent tree (not including root).
std::vector<pid_t> descendants(pid_t root);

// After a crash: kills (SIGKILL) what is left of a build whose leader had `pgid` and `identity`:
// the members of that process group started no earlier than the leader, and their descendants.
// Nothing is killed when the identity is from another boot. Returns how many were killed.
int kill_leftover_build(pid_t pgid, const std::string& identity);

}  // namespace ptbuild
