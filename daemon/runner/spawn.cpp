#include "daemon/runner/spawn.h"

// Boost.Process v2 on std::filesystem (its boost::filesystem default is a compiled library). In
// 1.81 that mode names boost::optional without including it.
#define BOOST_PROCESS_USE_STD_FS 1
#include <type_traits>

#include <boost/optional.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>

extern char** environ;

namespace ptbuild {

namespace bp2 = boost::process::v2;

namespace {

// Children yield to the daemon, so that `ptbuild status` stays instant on a machine that 32
// builds saturate: SCHED_IDLE (they get the CPU the daemon and everything else of normal
// priority leave; among themselves they share it as usual), nice +10 for when an operator moves
// them back to SCHED_OTHER, and the lowest best-effort I/O priority; their own children inherit
// all of it. (nice alone is not enough: 96 build processes at nice 10 still outweigh the daemon
// about 10 to 1.) Set right after the spawn (posix_spawn cannot set nice or I/O priority), long
// before a program that is still being exec'd (nix, flox) can start children of its own.
constexpr int kNiceAbove = 10;
constexpr int kIoprioWhoProcess = 1, kIoprioClassBestEffort = 2, kIoprioClassShift = 13, kIoprioLowest = 7;

void lower_priority(pid_t pid) {
  errno = 0;
  int own = ::getpriority(PRIO_PROCESS, 0);
  if (errno != 0) own = 0;
  sched_param idle{};  // priority 0, as SCHED_IDLE wants
  ::sched_setscheduler(pid, SCHED_IDLE, &idle);
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), std::min(own + kNiceAbove, 19));
  ::syscall(SYS_ioprio_set, kIoprioWhoProcess, pid,
            (kIoprioClassBestEffort << kIoprioClassShift) | kIoprioLowest);
}

// posix_spawn, not Boost.Process's launchers: see docs/processes.md. Nothing runs in the child
// between its start and exec but what the kernel and libc do for these attributes.
pid_t spawn(const std::vector<std::string>& argv, const std::string& cwd, char* const* envp, int in_fd,
            int out_fd, int err_fd, std::string& error) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in_fd >= 0)
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  else
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // none of the daemon's descriptors
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own process group, led by the child
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return -1;
  }
  lower_priority(pid);
  return pid;
}

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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
                                   std::string& error, int in_fd) {
  if (argv.empty()) {
    error = "empty command";
    return nullptr;
  }
  pid_t pid = spawn(argv, cwd, envp, in_fd, out_fd, err_fd, error);
  if (pid < 0) return nullptr;
  try {
    return std::make_unique<Child>(std::make_unique<Child::Handle>(Child::Handle{
        bp2::basic_process_handle<boost::asio::io_context::executor_type>(io.get_executor(), pid), pid}));
  } catch (const std::exception& e) {  // no pidfd (out of descriptors): nothing could tell when it ends
    error = std::string("cannot watch ") + argv[0] + ": " + e.what();
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return nullptr;
  }
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
