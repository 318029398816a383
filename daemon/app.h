// ptbuildd as a whole: wires config, store, server and signals onto one event loop.
#pragma once

#include <optional>
#include <string>

#include "core/config.h"

namespace ptbuild {

struct DaemonOptions {
  std::optional<std::string> config_path;  // --config
};

// Runs the daemon until SIGTERM/SIGINT. Returns the process exit status.
int run_daemon(const DaemonOptions& options, Config config);

}  // namespace ptbuild
