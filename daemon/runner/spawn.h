// Starting a child the way every process of the daemon starts: no shell (PATH is searched), in a
// process group of its own so that it can be signalled whole, stdin from /dev/null, stdout and
// stderr to the given descriptors, none of the daemon's other descriptors (its socket, its
// database), and default signal handling.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ptbuild {

// Returns the pid, or -1 with `error` set. `envp` is a null-terminated environment.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& cwd, char* const* envp,
                    int out_fd, int err_fd, std::string& error);

// Removes a file by an `rm` at the builds' priority, and waits for it (a blocking call: off the
// event loop). The kernel frees a file's page cache in the process that drops its last link:
// for a build's plain log of 100 MB that was 25 ms of the daemon's CPU, which is the build's
// cost as the writing was. Where rm cannot run, the file is removed here. Returns an error or "".
std::string remove_at_build_priority(const std::string& path);

}  // namespace ptbuild
