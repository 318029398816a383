#include "tests/support/harness.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ptbuild::testing {

using Clock = std::chrono::steady_clock;

std::string build_dir() {
  return PTBUILD_BUILD_DIR;
}
std::string source_dir() {
  return PTBUILD_SOURCE_DIR;
}

std::map<std::string, std::string> nix_test_env() {
  // Nix reads scripts/nix/nix.conf and nothing else: no set-up done by hand on this machine
  // (/etc/nix/nix.conf, a nixbld group) can make a test pass that fails on a fresh one.
  std::string dir = source_dir() + "/scripts/nix";
  return {{"NIX_CONF_DIR", dir}, {"NIX_USER_CONF_FILES", dir + "/nix.conf"}, {"NIX_CONFIG", ""}};
}

namespace {

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// fork + exec with the child's stdout/stderr on pipes (or files) of ours.
pid_t spawn(const std::vector<std::string>& argv, const RunOptions& o, int out_fd, int err_fd) {
  std::vector<std::string> args = argv;
  std::vector<std::string> env = merged_env(o.env);
  auto c_args = c_strings(args);
  auto c_env = c_strings(env);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (devnull > 2) ::close(devnull);
    if (o.max_open_files) {
      rlimit limit{};
      ::getrlimit(RLIMIT_NOFILE, &limit);
      limit.rlim_cur = *o.max_open_files;
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(124);
    }
    if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) _exit(126);
    if (o.as_uid) {
      gid_t gid = o.as_gid.value_or(*o.as_uid);
      gid_t groups[] = {gid};
      if (::setgroups(1, groups) != 0 || ::setgid(gid) != 0 || ::setuid(*o.as_uid) != 0) _exit(125);
    }
    ::execve(c_args[0], c_args.data(), c_env.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& options) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  pid_t pid = spawn(argv, options, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  auto deadline = Clock::now() + options.timeout;
  while (open_fds > 0) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      r.err += "\n[harness: killed after timeout]";
      break;
    }
    if (::poll(fds, 2, left) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = decode_status(status);
  return r;
}

std::string sh_recipe(const std::string& name, const std::string& script, const std::string& nonce) {
  // The script goes into a Nix '' string, where '' and ${ must be escaped.
  std::string escaped;
  for (size_t i = 0; i < script.size(); ++i) {
    if (script.compare(i, 2, "${") == 0) {
      escaped += "''${";
      ++i;
    } else if (script.compare(i, 2, "''") == 0) {
      escaped += "'''";
      ++i;
    } else {
      escaped += script[i];
    }
  }
  return "{ pkgs ? null }:\nderivation {\n  name = \"" + name +
         "\";\n  system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n  PATH = \"/bin:/usr/bin\";\n"
         "  nonce = \"" +
         nonce + "\";\n  args = [ \"-c\" ''\n" + escaped + "\n'' ];\n}\n";
}

std::vector<pid_t> pids_with_nonce(const std::string& nonce) {
  return pids_with_env("nonce=" + nonce);
}

std::vector<pid_t> pids_with_env(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = read_proc_file(entry.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.substr(close + 2, 1) == "Z") continue;  // zombies are dead
    std::string env = read_proc_file(entry.path().string() + "/environ");
    for (size_t at = env.find(needle); at != std::string::npos; at = env.find(needle, at + 1)) {
      bool starts = at == 0 || env[at - 1] == '\0';
      bool ends = at + needle.size() == env.size() || env[at + needle.size()] == '\0';
      if (starts && ends) {
        out.push_back(std::stoi(name));
        break;
      }
    }
  }
  return out;
}

ProcessResult run_ptbuild(const std::string& config, std::vector<std::string> args) {
  args.insert(args.begin(), {build_dir() + "/ptbuild", "--config", config});
  return run_process(args);
}

bool replace_in_file(const std::string& path, const std::string& from, const std::string& to, bool every) {
  std::string text = read_file(path);
  size_t at = text.find(from);
  if (from.empty() || at == std::string::npos) return false;
  for (; at != std::string::npos; at = every ? text.find(from, at + to.size()) : std::string::npos)
    text.replace(at, from.size(), to);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return true;
}

std::string log_text(const std::string& path) {
  if (!path.ends_with(".zst")) return read_file(path);
  ProcessResult r = run_process({"/usr/bin/zstd", "-dcq", path});
  return r.out;
}

bool eventually(const std::function<bool()>& done, std::chrono::seconds timeout,
                std::chrono::milliseconds poll) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

Daemon::Daemon(std::string daemon_keys, std::string config_extra) {
  // Nix builds as a nixbld user: it must be able to reach the recipes and the test's files.
  ::chmod(dir_.path().c_str(), 0755);
  std::filesystem::create_directories(repo() + "/.flox/pkgs");
  dir_.write("ptbuild.toml",
             "[daemon]\nstate_dir = \"state\"\nsocket = \"run/ptbuildd.sock\"\n" + daemon_keys +
                 "\n[backend]\nkind = \"nix\"\n\n[[repo]]\nname = \"pytorch\"\npath = \"repo\"\n" +
                 config_extra +
                 // Test recipes build no torch to probe; the verification tests turn it on.
                 (config_extra.find("[verify]") == std::string::npos ? "\n[verify]\nenabled = false\n" : "") +
                 // A tiny recipe is not a PyTorch build (16 GiB): expected small until measured.
                 (config_extra.find("[resources]") == std::string::npos
                      ? "\n[resources]\ndefault_memory = \"64MiB\"\n"
                      : "") +
                 // Tests run side by side: no dashboard on the default port unless asked for.
                 (config_extra.find("[web]") == std::string::npos ? "\n[web]\nlisten = \"\"\n" : ""));
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (notify_fd_ >= 0) ::close(notify_fd_);
  // Builds run in process groups of their own and outlive a killed daemon by design (the next
  // start finds them). A test that ends early (a failed REQUIRE) must not leave them behind to
  // disturb later tests: end every process whose command line names this daemon's folder.
  for (int round = 0; round < 3; ++round) {
    bool any = false;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = read_proc_file(entry.path().string() + "/cmdline");
      if (cmdline.find(dir_.path() + "/") == std::string::npos) continue;
      ::kill(std::stoi(name), SIGKILL);
      any = true;
    }
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let them go before the folder does
  }
}

void Daemon::add_recipe(const std::string& package, const std::string& content) {
  dir_.write("repo/.flox/pkgs/" + package + ".nix", content);
}

void Daemon::start() {
  if (notify_fd_ < 0) {
    notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir_ / "notify.sock";
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::bind(notify_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot bind the notify socket");
  }
  RunOptions o;
  o.env = nix_test_env();
  for (const auto& [k, v] : env) o.env[k] = v;
  o.max_open_files = max_open_files;
  o.env["NOTIFY_SOCKET"] = dir_ / "notify.sock";
  o.env["FLOX_DOUBLE_CATALOG"] = dir_ / "flox-catalog";  // what the flox double "publishes"
  int log_fd = ::open((dir_ / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  exit_code_ = -1;
  pid_ = spawn({build_dir() + "/ptbuildd", "--config", config_path()}, o, log_fd, log_fd);
  ::close(log_fd);
  if (!wait_notify("READY=1")) throw std::runtime_error("ptbuildd did not become ready:\n" + log());
}

bool Daemon::wait_notify(const std::string& what, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{notify_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[4096];
      ssize_t n = ::recv(notify_fd_, buf, sizeof buf, 0);
      if (n > 0) {
        std::string msg(buf, static_cast<size_t>(n));
        notifications_.push_back(msg);
        if (msg.find(what) != std::string::npos) return true;
      }
    }
    int status;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = decode_status(status);
      return false;
    }
  }
  return false;
}

void Daemon::signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

int Daemon::wait_exit(std::chrono::seconds timeout) {
  if (pid_ <= 0) return exit_code_;  // already reaped while waiting for a notification
  auto deadline = Clock::now() + timeout;
  while (pid_ > 0 && Clock::now() < deadline) {
    int status;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return decode_status(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

void Daemon::run_once() {
  add_sh_recipe("pytorch-python313-cpu-avx2", "mkdir -p $out");
  start();
  client_json({"queue", "cpu-avx2"});
  if (client({"wait", "cpu-avx2", "--timeout", "60s"}).exit_code != 0)
    throw std::runtime_error("run_once: the build failed");
  signal(SIGTERM);
  if (wait_exit() != 0) throw std::runtime_error("run_once: the daemon did not stop cleanly");
}

void Daemon::add_sh_recipe(const std::string& package, const std::string& script) {
  add_recipe(package, sh_recipe(package, script, nonce()));
}

void Daemon::add_fake_hash_recipe(const std::string& package) {
  add_recipe(
      package,
      "{ pkgs ? null }:\nlet\n  src = derivation {\n    name = \"src\";\n    system = builtins.currentSystem;\n"
      "    builder = \"/bin/sh\";\n    PATH = \"/bin:/usr/bin\";\n    args = [ \"-c\" \"echo " +
          nonce() +
          " > $out\" ];\n    outputHashMode = \"flat\";\n    outputHashAlgo = \"sha256\";\n"
          "    outputHash = \"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\";\n  };\nin derivation {\n"
          "  name = \"" +
          package +
          "\";\n  system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n"
          "  PATH = \"/bin:/usr/bin\";\n  inherit src;\n  args = [ \"-c\" \"cat $src > /dev/null && mkdir $out\" ];\n}\n");
}

void Daemon::commit_recipes() {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "recipes"}}) {
    std::vector<std::string> argv{
        "/usr/bin/git", "-C", repo(), "-c", "user.name=test", "-c", "user.email=test@localhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (run_process(argv).exit_code != 0) throw std::runtime_error("git " + args[0] + " failed in " + repo());
  }
}

int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  return -1;
}

nlohmann::json Daemon::job(const std::string& ref) {
  return client_json({"show", ref});
}

std::string Daemon::log() const {
  return read_file(dir_ / "daemon.log");
}

ProcessResult Daemon::client(const std::vector<std::string>& args, const RunOptions& options) {
  std::vector<std::string> argv{build_dir() + "/ptbuild", "--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

nlohmann::json Daemon::client_json(const std::vector<std::string>& args) {
  std::vector<std::string> with_json = args;
  with_json.push_back("--json");
  ProcessResult r = client(with_json);
  if (r.exit_code != 0)
    throw std::runtime_error("ptbuild exited " + std::to_string(r.exit_code) + ": " + r.err);
  return nlohmann::json::parse(r.out);
}

RawClient::RawClient(const std::string& socket_path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot connect to " + socket_path);
}

RawClient::~RawClient() {
  close();
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawClient::send_bytes(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    off += static_cast<size_t>(n);
  }
}

bool read_some(int fd, std::string& into, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, std::max(ms, 0)) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n <= 0) return false;
  into.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<std::string> next_frame(int fd, std::string& buffer, std::string_view delimiter,
                                      Clock::time_point deadline) {
  while (true) {
    if (size_t end = buffer.find(delimiter); end != std::string::npos) {
      std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + delimiter.size());
      return frame;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (!read_some(fd, buffer, static_cast<int>(std::max<int64_t>(0, left)))) return std::nullopt;
  }
}

std::optional<std::string> RawClient::line(std::chrono::seconds timeout) {
  return next_frame(fd_, buffer_, "\n", Clock::now() + timeout);
}

std::optional<nlohmann::json> RawClient::json_line(std::chrono::seconds timeout) {
  auto l = line(timeout);
  if (!l) return std::nullopt;
  return nlohmann::json::parse(*l);
}

}  // namespace ptbuild::testing
