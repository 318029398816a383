// ptbuildd: the build farm daemon (docs/concepts.md).
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/config.h"
#include "daemon/app.h"

namespace {

// "<N>" with N the syslog priority of the message's level (sd-daemon(3)).
class JournalLevel : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr const char* kPrefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    std::string_view p = kPrefix[static_cast<int>(msg.level)];
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalLevel>(); }
};

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
  // Keep freed heap instead of giving it back at once: by default glibc trims the heap's top as
  // soon as 128 KiB are free and serves anything over 128 KiB with its own mmap, so every
  // `status` (a JSON tree of a few hundred KiB, freed at once) shrank the heap and grew it again,
  // each time paying page faults and a TLB shootdown on every core: profiled, a fifth of what a
  // `status` cost. The peak RSS is what it was; only the return of memory waits.
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
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
    for (const ptbuild::RepoConfig& repo : config.repos)  // a warning: it may be mounted later
      if (!std::filesystem::is_directory(repo.path + "/" + repo.recipes))
        std::cerr << "ptbuildd: warning: repo '" << repo.name << "': " << repo.path << "/" << repo.recipes
                  << " does not exist (yet): its jobs will wait for it\n";
    return 0;
  }
  // Logs go to stderr; stdout is for --check-config and --help. Under systemd (JOURNAL_STREAM
  // set) each line starts with its syslog level, <3> to <7>, which journald turns into the
  // entry's priority, and the journal adds the time itself.
  spdlog::set_default_logger(spdlog::stderr_color_st("ptbuildd"));
  if (std::getenv("JOURNAL_STREAM")) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalLevel>('*').set_pattern("%*%v");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
  return ptbuild::run_daemon(options, std::move(config));
}
