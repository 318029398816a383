// Integration-test harness: the real ptbuildd on a temp socket, driven by the real ptbuild.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"

namespace ptbuild::testing {

struct ProcessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the inherited environment
  std::optional<uid_t> as_uid;             // run as this user (the test must be root)
  std::optional<gid_t> as_gid;
  std::string cwd;
  std::chrono::seconds timeout{60};
  std::optional<size_t> max_open_files;  // the child's soft RLIMIT_NOFILE (its hard one stays)
};

// Runs a program to completion, capturing stdout and stderr.
ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& options = {});

std::string build_dir();  // where ptbuildd and ptbuild are
std::string source_dir();

// An environment that keeps real Nix fast and offline in tests.
std::map<std::string, std::string> nix_test_env();

// A tiny real Nix recipe: a derivation whose builder runs `script` with /bin/sh, unique to
// `nonce` (so no test finds another's output already built). The builder sees `nonce` in its
// environment, and so does every process it starts: pids_with_nonce() finds them.
std::string sh_recipe(const std::string& name, const std::string& script, const std::string& nonce);
std::vector<pid_t> pids_with_nonce(const std::string& nonce);
std::vector<pid_t> pids_with_env(const std::string& key_value);  // live processes with KEY=VALUE

// The real client on a config file, without a daemon: `ptbuild --config CONFIG ARGS…`.
ProcessResult run_ptbuild(const std::string& config, std::vector<std::string> args);

// Replaces the first occurrence of `from` in a file (every one with `every`) by `to`. False, and
// the file left as it was, when `from` is not in it.
bool replace_in_file(const std::string& path, const std::string& from, const std::string& to,
                     bool every = false);

// A build log's text as an operator reads the file: `zstd -dc` for <id>.log.zst, else the file.
std::string log_text(const std::string& path);

// Whether memory figures (RSS) mean what they say: not under AddressSanitizer, whose quarantine
// keeps freed memory.
constexpr bool kMemoryFiguresMeaningful =
#if defined(__SANITIZE_ADDRESS__)
    false;
#else
    true;
#endif

// Polls `done` every 50 ms until it holds or `timeout` passes; returns whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::seconds timeout = std::chrono::seconds(60),
                std::chrono::milliseconds poll = std::chrono::milliseconds(50));

class Daemon {
 public:
  // Creates a temp folder with a build repo (repo/.flox/pkgs) and a config (ptbuild.toml).
  // `config_extra` is appended to the config; the [daemon] section is written here.
  explicit Daemon(std::string daemon_keys = "", std::string config_extra = "");
  ~Daemon();

  TempDir& dir() { return dir_; }
  std::string repo() const { return dir_ / "repo"; }
  std::string socket() const { return dir_ / "run/ptbuildd.sock"; }
  std::string state() const { return dir_ / "state"; }
  std::string config_path() const { return dir_ / "ptbuild.toml"; }
  void add_recipe(const std::string& package, const std::string& content = "{ }: { }\n");
  // A recipe that runs `script` (see sh_recipe), unique to this daemon's temp folder.
  void add_sh_recipe(const std::string& package, const std::string& script);
  // A recipe whose fixed-output source pins nixpkgs' fake hash: the daemon repairs it.
  void add_fake_hash_recipe(const std::string& package);
  // Makes the build repo a git repository with every recipe committed (hash repair needs it).
  void commit_recipes();
  std::string nonce() const { return dir_.path(); }
  // A line of a recipe's script that waits until the test opens the gate (open_gate).
  std::string wait_for_gate(const std::string& gate = "gate") const {
    return "while [ ! -e " + nonce() + "/" + gate + " ]; do sleep 0.05; done\n";
  }
  void open_gate(const std::string& gate = "gate") { dir().write(gate, ""); }
  // Runs once, so that its database holds a job (cpu-avx2, built), and stops again.
  void run_once();
  nlohmann::json job(const std::string& ref);  // `ptbuild show REF --json`

  // Starts ptbuildd and waits for its READY=1 on a notify socket of our own.
  void start();
  // Waits for the next sd_notify message containing `what` (e.g. after SIGHUP).
  bool wait_notify(const std::string& what, std::chrono::seconds timeout = std::chrono::seconds(30));
  void signal(int signo);
  // Waits for the daemon to exit; returns its exit code (128+N for signal N).
  int wait_exit(std::chrono::seconds timeout = std::chrono::seconds(60));
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string log() const;  // the daemon's stderr so far

  ProcessResult client(const std::vector<std::string>& args, const RunOptions& options = {});
  // Added to the daemon's environment at start (over nix_test_env()).
  std::map<std::string, std::string> env;
  std::optional<size_t> max_open_files;  // ptbuildd's soft RLIMIT_NOFILE from its start
  nlohmann::json client_json(const std::vector<std::string>& args);  // requires exit 0

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int exit_code_ = -1;  // once reaped
  int notify_fd_ = -1;
  std::vector<std::string> notifications_;
};

// The resident memory of a process, in KiB (-1 if it is gone).
int64_t rss_kib(pid_t pid);

// A raw protocol connection for abuse tests.
// What arrives on a socket, read into `into`: false at EOF or when nothing came within `ms`.
bool read_some(int fd, std::string& into, int ms);
// The next piece of `buffer`, and of what arrives on `fd` after it, up to `delimiter` ("\n" for
// a line, "\n\n" for a server-sent event): taken out without the delimiter. nullopt at EOF or
// once `deadline` has passed (a deadline already past still looks once at what has arrived).
std::optional<std::string> next_frame(int fd, std::string& buffer, std::string_view delimiter,
                                      std::chrono::steady_clock::time_point deadline);

class RawClient {
 public:
  explicit RawClient(const std::string& socket_path);
  ~RawClient();
  void send_bytes(const std::string& bytes);
  // The next line, or nullopt on EOF/timeout.
  std::optional<std::string> line(std::chrono::seconds timeout = std::chrono::seconds(10));
  std::optional<nlohmann::json> json_line(std::chrono::seconds timeout = std::chrono::seconds(10));
  void close();

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace ptbuild::testing
