// ptbuildd: the build farm daemon (SPEC §3).
#include <cstring>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/config.h"
#include "daemon/app.h"

namespace {
constexpr const char* kUsage = R"(usage: ptbuildd [--config FILE] [--check-config]

Keeps the PyTorch variant matrix and every build job in SQLite and runs flox/nix builds.

  --config FILE    use FILE (default: $PTBUILD_CONFIG, ./ptbuild.toml, /etc/ptbuild/ptbuildd.toml,
                   else the embedded defaults)
  --check-config   print the effective configuration and exit (1 and the reason if it is wrong)
  --version        print the version
  --help           this text

Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config and rescans the recipes.
)";
}  // namespace

int main(int argc, char** argv) {
  ptbuild::DaemonOptions options;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "ptbuildd " << PTBUILD_VERSION << "\n";
      return 0;
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--config" && i + 1 < argc) {
      options.config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      options.config_path = std::string(arg.substr(9));
    } else {
      std::cerr << "ptbuildd: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }

  ptbuild::ConfigResult loaded = ptbuild::load_config(options.config_path);
  if (auto* err = std::get_if<ptbuild::ConfigError>(&loaded)) {
    std::cerr << "ptbuildd: config error: " << err->message << "\n";
    return 1;
  }
  ptbuild::Config config = std::get<ptbuild::Config>(std::move(loaded));
  if (check_only) {
    std::cout << ptbuild::render_config(config);
    return 0;
  }
  // Logs go to stderr (journald under systemd); stdout is for --check-config and --help.
  spdlog::set_default_logger(spdlog::stderr_color_st("ptbuildd"));
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  return ptbuild::run_daemon(options, std::move(config));
}
