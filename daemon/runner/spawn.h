// Starting a child the way every process of the daemon starts: no shell (PATH is searched), in a
// process group of its own so that it can be signalled whole, stdin from /dev/null, stdout and
// stderr to the given descriptors, none of the daemon's other descriptors (its socket, its
// database), default signal handling, and below the daemon's priority (SCHED_IDLE, nice +10, the
// lowest best-effort I/O priority). Started with posix_spawn, watched through Boost.Process v2's
// handle: docs/processes.md says how and why.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ptbuild {

// A started child, watched through Boost.Process v2's handle (a pidfd). Destroying it neither
// stops nor waits for the process: the daemon's own wrapper (ProcessRunner, process_tree.h) kills
// the group when it must, and a crash leaves builds running for the next start to find.
class Child {
 public:
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const;
  // Once it has exited, on the loop it was started on: its exit code, or 128+N when signal N
  // killed it. Once.
  void async_wait(std::function<void(int exit_code)> done);
  // The same, blocking (for helpers that run off the loop).
  int wait();

  struct Handle;
  explicit Child(std::unique_ptr<Handle> handle);

 private:
  std::unique_ptr<Handle> handle_;
};

// Starts `argv` on `io`'s executor; nullptr with `error` set ("cannot start nix: No such file or
// directory") when it could not. `envp` is a null-terminated environment. Its stdin is `in_fd`,
// or /dev/null.
std::unique_ptr<Child> start_child(boost::asio::io_context& io, const std::vector<std::string>& argv,
                                   const std::string& cwd, char* const* envp, int out_fd, int err_fd,
                                   std::string& error, int in_fd = -1);

// Removes a file by an `rm` at the builds' priority, and waits for it (a blocking call: off the
// event loop). The kernel frees a file's page cache in the process that drops its last link:
// for a build's plain log of 100 MB that was 25 ms of the daemon's CPU, which is the build's
// cost as the writing was. Where rm cannot run, the file is removed here. Returns an error or "".
std::string remove_at_build_priority(const std::string& path);

}  // namespace ptbuild
