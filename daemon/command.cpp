#include "daemon/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/io_context.hpp>

#include "daemon/runner/spawn.h"

extern char** environ;

namespace ptbuild {

namespace {
CommandResult run(const std::vector<std::string>& argv, const std::string& cwd, std::chrono::seconds timeout,
                  int in_fd) {
  CommandResult result;
  int out_pipe[2], err_pipe[2];
  if (argv.empty() || ::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  boost::asio::io_context io;  // this thread's own: helpers run off the daemon's loop
  std::unique_ptr<Child> child =
      start_child(io, argv, cwd, environ, out_pipe[1], err_pipe[1], result.err, in_fd);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!child) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return result;
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  if (timed_out) ::kill(-child->pid(), SIGKILL);
  result.exit_code = child->wait();
  if (timed_out) result.err += "\n[timed out after " + std::to_string(timeout.count()) + "s]";
  return result;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd,
                          std::chrono::seconds timeout) {
  return run(argv, cwd, timeout, -1);
}

CommandResult run_command_with_input(const std::vector<std::string>& argv, const std::string& cwd,
                                     const std::string& input, std::chrono::seconds timeout) {
  int fd = ::memfd_create("ptbuild-input", MFD_CLOEXEC);
  if (fd < 0) return CommandResult{-1, "", std::string("memfd_create: ") + std::strerror(errno)};
  for (size_t done = 0; done < input.size();) {
    ssize_t n = ::write(fd, input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return CommandResult{-1, "", std::string("writing the input: ") + std::strerror(errno)};
    }
    done += static_cast<size_t>(n);
  }
  ::lseek(fd, 0, SEEK_SET);
  CommandResult result = run(argv, cwd, timeout, fd);
  ::close(fd);
  return result;
}

}  // namespace ptbuild
