// The configuration of daemon and client (docs/concepts.md, docs/config.md).
//
// Every key has a default; the embedded defaults depend on who runs it (root or not), the XDG
// directories, the current directory and whether flox is on PATH, so they are computed from an
// explicit Environment and parsing stays a pure function that tests can drive.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/duration.h"
#include "core/fleet.h"
#include "core/recipe_matrix.h"

namespace ptbuild {

struct Environment {
  bool is_root = false;
  std::string xdg_state_home;   // "" when unset
  std::string xdg_runtime_dir;  // "" when unset
  std::string home;
  std::string cwd;
  std::string user_runtime_fallback;  // e.g. /tmp/ptbuild-1000 when XDG_RUNTIME_DIR is unset
  bool flox_on_path = false;
};

struct RepoConfig {
  std::string name;
  std::string path;
  std::string recipes = ".flox/pkgs";
  std::string after;                        // repo whose same-axes variant must build first
  std::string default_cuda;                 // "13_0": decides ambiguous aliases in this repo
  std::optional<MatrixConfig> matrix;       // [repo.matrix]: the variants it should have, from templates
  std::vector<std::string> doctor_disable;  // `ptbuild doctor` rules not checked in this repo
};

struct Config {
  struct Daemon {
    std::string state_dir;
    std::string socket;
    std::string admin_group = "ptbuild";
    int max_parallel = 2;
    Millis build_timeout = std::chrono::hours(6);
    Millis max_silent = std::chrono::hours(1);
    Millis kill_grace = std::chrono::seconds(30);
    int retries = 2;
    Millis retry_backoff = std::chrono::minutes(1);  // first retry after this, then doubling
    // A builder that cannot build (nix_setup, full disk) rests this long, ×3 for each such
    // failure in a row, at most 1 h; then a probe build decides whether it is back.
    Millis builder_backoff = std::chrono::minutes(1);
    // Disk guard per build log (compressed bytes): past half of it, only the newest quarters of
    // the log are kept beside its head.
    uint64_t log_max = uint64_t{4} << 30;
    // Whether the plain file a running build appends its output to (beside its log, for
    // `tail -f`) keeps that text: false punches what ptbuildd has read out of it, so that it
    // takes no disk. `ptbuild log -f` follows either way.
    bool live_log = true;
    std::string order = "longest-first";  // or "fifo"
    std::string default_family;           // decides ambiguous aliases across families
    std::string builders_file;            // a Nix machines file: one builder a line (docs/fleet.md)
  } daemon;
  // [[builder]] tables, then the lines of daemon.builders_file (read by load_config).
  std::vector<BuilderSpec> builders;
  struct Backend {
    std::string kind;  // "flox" or "nix"
    std::string program;
    std::vector<std::string> args;
  } backend;
  std::vector<RepoConfig> repos;
  struct Hashfix {
    bool enabled = true;
    int max_rounds = 5;
    bool commit = false;
  } hashfix;
  struct Verify {
    bool enabled = true;
    std::string command;
  } verify;
  struct Publish {
    bool auto_publish = false;
    std::string org;
    std::string store;
    std::string signing_key;  // a Nix secret key file: published paths and provenance are signed
  } publish;
  struct Web {
    std::string listen = "127.0.0.1:8460";  // "" turns the dashboard off (docs/web.md)
    std::vector<std::string> hosts;         // names it answers for besides loopback and its address
    std::string url;  // the dashboard as people reach it, for links in notifications; "" = http://<listen>
  } web;
  // [[notify]] tables (docs/notifications.md): who hears of which events, and how.
  struct Notify {
    std::vector<std::string> on;  // events (kNotifyEvents); all when the key is left out
    std::string command;          // run by /bin/sh with the event's JSON on stdin
    std::string webhook;          // http://… POSTed the event's JSON
    int line = 0;                 // where it is written, to name it
  };
  std::vector<Notify> notify;
  struct Resources {                               // docs/resources.md
    uint64_t default_memory = uint64_t{16} << 30;  // a variant never built, without a family figure
    std::string oom_retry = "alone";               // or "half-cores"
    int pressure_stop = 60;                        // PSI memory full avg10 (%) that stops the newest build
  } resources;
  struct Gc {
    int keep_good = 2;                        // good builds kept per variant
    uint64_t max_free = uint64_t{200} << 30;  // the most one collection frees
    bool auto_collect = true;                 // when a builder falls below min_free
  } gc;
  struct Nightly {
    std::vector<std::string> targets{"all"};
    bool pull = false;
  } nightly;

  std::string source;  // the file it came from, or "embedded defaults"

  // The machines builds run on: the builders configured, or with none one `local` builder
  // with max_parallel slots (docs/fleet.md).
  std::vector<BuilderSpec> fleet() const;

  std::string db_path() const { return state_dir_path("ptbuild.db"); }
  std::string logs_dir() const { return state_dir_path("logs"); }
  std::string results_dir() const { return state_dir_path("results"); }
  std::string roots_dir() const { return state_dir_path("roots"); }  // a GC root per good build

 private:
  std::string state_dir_path(const char* leaf) const { return daemon.state_dir + "/" + leaf; }
};

// The events [[notify]] entries may ask for (docs/notifications.md).
inline constexpr const char* kNotifyEvents[] = {"newly_failing", "fixed",     "nightly", "builder_down",
                                                "verify_failed", "published", "held"};

struct ConfigError {
  std::string message;  // "FILE:LINE: daemon.max_parallel: expected an integer, got a string"
};

using ConfigResult = std::variant<Config, ConfigError>;

Config default_config(const Environment& env);

// Parses TOML text. `source` names the file in messages; relative paths in it are resolved
// against `base_dir` (the file's folder).
ConfigResult parse_config(std::string_view text, const std::string& source, const std::string& base_dir,
                          const Environment& env);

// The effective config as TOML, every key spelled out (for --check-config).
std::string render_config(const Config& config);

// Adds the builders of daemon.builders_file to `config` (the file's text given), then checks the
// fleet as a whole; the error names the file and line.
std::optional<ConfigError> add_builders_file(Config& config, std::string_view machines_text);

// --- In local/config_file.cpp, the part that touches the system: the environment and the
// lookup order of docs/concepts.md. ---
Environment current_environment();
// --config, then $PTBUILD_CONFIG, then ./ptbuild.toml, then /etc/ptbuild/ptbuildd.toml, else
// the embedded defaults. An explicitly named file that does not exist is an error.
ConfigResult load_config(const std::optional<std::string>& explicit_path);

}  // namespace ptbuild
