// The seam between the scheduler and the processes that build: an interface with a real side
// (ProcessRunner: posix_spawn and Boost.Process v2's handle, one process group per build) and a fake one
// (tests/).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.h"

namespace ptbuild {

struct ExitStatus {
  int exit_code = 0;  // the program's exit code, or 128+N when signal N killed it
  bool operator==(const ExitStatus&) const = default;
};

struct BuildCallbacks {
  std::function<void(std::string_view chunk)> on_output;  // stdout and stderr, as they come
  std::function<void(ExitStatus)> on_exit;                // once, after the last output
};

// One started build. Destroying it does not stop the process; call kill() for that.
class BuildProcess {
 public:
  virtual ~BuildProcess() = default;
  virtual void terminate() = 0;  // SIGTERM to the build's process group
  virtual void kill() = 0;       // SIGKILL to the group and every process descended from it
  virtual int process_group() const = 0;
  virtual std::string identity() const = 0;  // survives a daemon crash: see process_tree.h
};

class Runner {
 public:
  virtual ~Runner() = default;
  // Starts the command. Returns nullptr and sets `error` when it cannot be started.
  virtual std::unique_ptr<BuildProcess> start(const BuildCommand& command,
                                              const std::map<std::string, std::string>& env,
                                              BuildCallbacks callbacks, std::string& error) = 0;
};

}  // namespace ptbuild
