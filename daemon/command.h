// Short helper commands the daemon runs to completion (git, nix show-derivation): no shell, their
// own process group, output captured, killed after a timeout. Builds do not go through here.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ptbuild {

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N; -1 when it could not start
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd,
                          std::chrono::seconds timeout = std::chrono::seconds(60));
// The same, with `input` on its stdin (held in memory, so a command that never reads it does not
// hold the caller).
CommandResult run_command_with_input(const std::vector<std::string>& argv, const std::string& cwd,
                                     const std::string& input, std::chrono::seconds timeout);

}  // namespace ptbuild
