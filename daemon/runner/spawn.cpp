#include "daemon/runner/spawn.h"

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
#include <cstring>

extern char** environ;

namespace ptbuild {
namespace {

// Children yield to the daemon, so that `ptbuild status` stays instant on a machine that 32
// builds saturate: SCHED_IDLE (they get the CPU the daemon and everything else of normal
// priority leave; among themselves they share it as usual), nice +10 for when an operator moves
// them back to SCHED_OTHER, and the lowest best-effort I/O priority; their own children inherit
// all of it. (nice alone is not enough: 96 build processes at nice 10 still outweigh the daemon
// about 10 to 1.) Set right after the spawn
// (posix_spawn cannot set nice or I/O priority), long before a program that is still being
// exec'd (nix, flox) can start children of its own.
constexpr int kNiceAbove = 10;
constexpr int kIoprioWhoProcess = 1, kIoprioClassBestEffort = 2, kIoprioClassShift = 13, kIoprioLowest = 7;

void lower_priority(pid_t pid) {
  errno = 0;
  int own = ::getpriority(PRIO_PROCESS, 0);
  if (errno != 0) own = 0;
  sched_param batch{};  // priority 0, as SCHED_IDLE wants
  ::sched_setscheduler(pid, SCHED_IDLE, &batch);
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), std::min(own + kNiceAbove, 19));
  ::syscall(SYS_ioprio_set, kIoprioWhoProcess, pid,
            (kIoprioClassBestEffort << kIoprioClassShift) | kIoprioLowest);
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv, const std::string& cwd, char* const* envp,
                    int out_fd, int err_fd, std::string& error) {
  if (argv.empty()) {
    error = "empty command";
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
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

std::string remove_at_build_priority(const std::string& path) {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::string error;
  pid_t pid =
      null_fd < 0 ? -1 : spawn_process({"rm", "-f", "--", path}, "", environ, null_fd, null_fd, error);
  if (null_fd >= 0) ::close(null_fd);
  int status = 0;
  if (pid > 0) {
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  }
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return "";
  return "cannot remove " + path + ": " + std::strerror(errno);
}

}  // namespace ptbuild
