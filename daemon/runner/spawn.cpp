#include "daemon/runner/spawn.h"

// Boost.Process v2 on std::filesystem (its boost::filesystem default is a compiled library). In
// 1.81 that mode names boost::optional without including it, and its environment.hpp does not
// compile at all (unqualified std type traits): PATH is searched here instead.
#define BOOST_PROCESS_USE_STD_FS 1
#include <type_traits>

#include <boost/optional.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>

extern char** environ;

namespace ptbuild {

namespace bp2 = boost::process::v2;

namespace {

// Children yield to the daemon, so that `ptbuild status` stays instant on a machine that 32
// builds saturate: SCHED_IDLE (they get the CPU the daemon and everything else of normal
// priority leave; among themselves they share it as usual), nice +10 for when an operator moves
// them back to SCHED_OTHER, and the lowest best-effort I/O priority; their own children inherit
// all of it. (nice alone is not enough: 96 build processes at nice 10 still outweigh the daemon
// about 10 to 1.)
constexpr int kNiceAbove = 10;
constexpr int kIoprioWhoProcess = 1, kIoprioClassBestEffort = 2, kIoprioClassShift = 13, kIoprioLowest = 7;

// Boost 1.81's launcher closes only the descriptors above the highest it keeps (its
// close_all() compares each kept descriptor with itself, not with the next), so those between
// stdio and its error pipe (the daemon's socket, its database) would stay open in the child:
// closed here, before exec (spawn_test.cpp shows it). In place: no allocation in the child.
void close_between(std::vector<int>& keep) {
  std::sort(keep.begin(), keep.end());
  for (size_t i = 0; i + 1 < keep.size(); ++i)
    if (keep[i] + 1 < keep[i + 1])
      ::close_range(static_cast<unsigned>(keep[i] + 1), static_cast<unsigned>(keep[i + 1] - 1), 0);
}

// What a child of the daemon needs beyond what Boost.Process sets (its stdio, folder and
// environment). Set in the child between fork and exec, with async-signal-safe calls only: the
// daemon has threads (repairs, blocking helpers) whose locks a forked child must not touch.
struct ChildSetup {
  int nice = 0;             // computed in the parent
  const char* const* argv;  // as given: Boost.Process would put the resolved path in argv[0]
  bp2::error_code on_exec_setup(bp2::posix::default_launcher& launcher, const bp2::filesystem::path&,
                                const char* const*(&cmd_line)) {
    cmd_line = argv;
    close_between(launcher.fd_whitelist);
    ::setpgid(0, 0);  // its own process group, led by the child
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // SIGKILL and SIGSTOP refuse: fine
    sched_param idle{};                                            // priority 0, as SCHED_IDLE wants
    ::sched_setscheduler(0, SCHED_IDLE, &idle);
    ::setpriority(PRIO_PROCESS, 0, nice);
    ::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0,
              (kIoprioClassBestEffort << kIoprioClassShift) | kIoprioLowest);
    return {};
  }
};

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A program named without a folder, as execvp finds it in the daemon's PATH; "" when none is there.
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

}  // namespace

// The process's handle, detached from bp2::process (whose destructor would kill the process).
struct Child::Handle {
  bp2::basic_process_handle<boost::asio::io_context::executor_type> handle;
  pid_t pid;
};

Child::Child(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {}
Child::~Child() = default;
pid_t Child::pid() const {
  return handle_->pid;
}

void Child::async_wait(std::function<void(int)> done) {
  handle_->handle.async_wait([done = std::move(done)](bp2::error_code ec, bp2::native_exit_code_type status) {
    done(ec ? 255 : decode(status));
  });
}

int Child::wait() {
  bp2::native_exit_code_type status = 0;
  bp2::error_code ec;
  handle_->handle.wait(status, ec);
  return ec ? 255 : decode(status);
}

std::unique_ptr<Child> start_child(boost::asio::io_context& io, const std::vector<std::string>& argv,
                                   const std::string& cwd, char* const* envp, int out_fd, int err_fd,
                                   std::string& error) {
  if (argv.empty()) {
    error = "empty command";
    return nullptr;
  }
  std::string exe = argv[0].find('/') == std::string::npos ? find_in_path(argv[0]) : argv[0];
  if (exe.empty()) {
    error = "cannot start " + argv[0] + ": " + std::strerror(ENOENT);
    return nullptr;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    error = std::string("cannot open /dev/null: ") + std::strerror(errno);
    return nullptr;
  }
  std::vector<const char*> c_argv;
  for (const std::string& a : argv) c_argv.push_back(a.c_str());
  c_argv.push_back(nullptr);
  errno = 0;
  int own = ::getpriority(PRIO_PROCESS, 0);
  if (errno != 0) own = 0;
  bp2::posix::default_launcher launcher;
  launcher.env = envp;
  bp2::error_code ec;
  auto args = std::vector<std::string>(argv.begin() + 1, argv.end());
  bp2::basic_process<boost::asio::io_context::executor_type> proc =
      cwd.empty()
          ? launcher(io.get_executor(), ec, exe, args, bp2::process_stdio{null_fd, out_fd, err_fd},
                     ChildSetup{std::min(own + kNiceAbove, 19), c_argv.data()})
          : launcher(io.get_executor(), ec, exe, args, bp2::process_stdio{null_fd, out_fd, err_fd},
                     bp2::process_start_dir{cwd}, ChildSetup{std::min(own + kNiceAbove, 19), c_argv.data()});
  ::close(null_fd);
  if (ec) {
    error = "cannot start " + argv[0] + ": " + ec.message();
    return nullptr;
  }
  pid_t pid = proc.id();
  return std::make_unique<Child>(std::make_unique<Child::Handle>(Child::Handle{proc.detach(), pid}));
}

std::string remove_at_build_priority(const std::string& path) {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::string error;
  boost::asio::io_context io;  // this thread's own: the loop's is not touched from here
  std::unique_ptr<Child> rm =
      null_fd < 0 ? nullptr : start_child(io, {"rm", "-f", "--", path}, "", environ, null_fd, null_fd, error);
  if (null_fd >= 0) ::close(null_fd);
  if (rm && rm->wait() == 0) return "";
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return "";
  return "cannot remove " + path + ": " + std::strerror(errno);
}

}  // namespace ptbuild
