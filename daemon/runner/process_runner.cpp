#include "daemon/runner/process_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/look_pace.h"
#include "daemon/runner/look_clock.h"
#include "daemon/runner/process_tree.h"
#include "daemon/runner/spawn.h"

extern char** environ;

namespace ptbuild {

namespace asio = boost::asio;

namespace {

// After the leader exits, output still held open by an escaped process is read for this long.
constexpr auto kDrainAfterExit = std::chrono::seconds(5);
// A build's output is looked at at the pace it comes (core/look_pace.h). A look takes at most
// kMostPerLook; one that fills it is followed at once by another, after whatever else waits.
constexpr size_t kMostPerLook = 256 * 1024;
constexpr auto kLookAfterExit = std::chrono::milliseconds(5);
constexpr int kPipeSize = 1024 * 1024;  // Linux's limit for an unprivileged pipe
// Read 64 KiB at a time. Measured under 32 flooding builds, reading a whole pipe (1 MiB) at
// once saved no CPU and took 10 MB more of the daemon's memory (22.7 against 32.5 MB peak).
constexpr size_t kReadBuffer = 64 * 1024;

std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (!extra.count(kv.substr(0, kv.find('=')))) env.push_back(std::move(kv));
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

// The command, run by a shell that first joins the build's cgroups and then becomes it (exec: the
// same process, so its group, pid and identity are the build's). A group that cannot be joined is
// left: the build runs unmeasured rather than not at all, and its figures say so.
std::vector<std::string> in_cgroups(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& procs) {
  if (procs.empty()) return argv;
  std::vector<std::string> out{
      "/bin/sh", "-c",
      "for f; do [ \"$f\" = -- ] && break; echo $$ 2>/dev/null > \"$f\"; shift; done\n"
      "shift\n"
      "exec \"$@\"",
      "ptbuild-cgroup"};
  out.insert(out.end(), procs.begin(), procs.end());
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

// Frees the blocks of what was read out of builds' output files, on a thread of its own:
// fallocate(PUNCH_HOLE) takes the file's inode lock, which the build holds while it appends, and
// a build runs at the lowest CPU priority. Measured under 32 flooding builds, the event loop
// waited up to 37 ms for a preempted build to finish a write. A punch that fails (a file system
// that cannot punch holes) leaves the blocks, as they would be without it. The thread starts with
// the first punch: with the plain text kept (the default) there is none below log_max.
class HolePuncher {
 public:
  HolePuncher() = default;
  // Does the punches asked for, then stops.
  ~HolePuncher() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  HolePuncher(const HolePuncher&) = delete;
  HolePuncher& operator=(const HolePuncher&) = delete;

  // Frees [from, until) of the file open as fd (duplicated: the caller may close it meanwhile).
  void punch(int fd, uint64_t from, uint64_t until) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return;
    {
      std::lock_guard lock(mutex_);
      queue_.push_back({copy, from, until});
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { work(); });
    wake_.notify_one();
  }

 private:
  struct Punch {
    int fd;
    uint64_t from, until;
  };

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, with nothing left to do
      Punch p = queue_.front();
      queue_.pop_front();
      lock.unlock();
      ::fallocate(p.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(p.from),
                  static_cast<off_t>(p.until - p.from));
      ::close(p.fd);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Punch> queue_;
  bool stopping_ = false;
  std::thread thread_;  // started by the first punch (on the loop's thread, as every punch)
};

namespace {

// Where a build's output is read from: a pipe (non-blocking; it ends when every writer is gone),
// or the file it appends to itself (read from where it ended when the build started; it ends
// when the build has exited and the file is read to its end).
struct Output {
  int fd = -1;
  bool from_file = false;
  uint64_t keep = std::numeric_limits<uint64_t>::max();  // bytes of what was read left in the file
  uint64_t read = 0;                                     // bytes read (of a file: its offset)
  uint64_t punched = 0;                                  // the file's bytes before this are freed
};

class ProcessBuild : public BuildProcess, public std::enable_shared_from_this<ProcessBuild> {
 public:
  ProcessBuild(asio::io_context& io, LookClock& looks, HolePuncher& puncher, std::unique_ptr<Child> child,
               Output output, std::shared_ptr<std::vector<char>> buffer, BuildCallbacks cb)
      : looks_(looks),
        puncher_(puncher),
        child_(std::move(child)),
        pid_(child_->pid()),
        identity_(process_identity(pid_).value_or("")),
        output_(output),
        drain_timer_(io),
        callbacks_(std::move(cb)),
        buffer_(std::move(buffer)) {
    if (!output_.from_file) ::fcntl(output_.fd, F_SETFL, ::fcntl(output_.fd, F_GETFL) | O_NONBLOCK);
  }
  ~ProcessBuild() override { close_output(); }

  void begin() {
    // Looked at once now (it may flood from its first moment), then on the clock.
    if (std::optional<LookClock::Clock::time_point> next = look())
      look_id_ = looks_.add([self = shared_from_this()] { return self->look(); }, *next);
    watch_exit();
  }

  void terminate() override {
    if (!exited_) ::kill(-pid_, SIGTERM);
  }

  void kill() override {
    // Processes that left the group (Nix puts its builder in a session of its own) are still
    // our descendants: list them while the tree is intact, but kill the group first. Killed the
    // other way round, the leader could see its children die and exit 0 on its own before the
    // group's SIGKILL reached it (a shell's `wait` returns 0), and the build would look
    // successful.
    std::vector<pid_t> escaped = descendants(pid_);
    ::kill(-pid_, SIGKILL);
    for (pid_t p : escaped) ::kill(p, SIGKILL);
  }

  int process_group() const override { return pid_; }
  std::string identity() const override { return identity_; }

 private:
  // The output is looked at on a clock, not watched: Nix writes a build's log a line at a time, and
  // a watched pipe (epoll, edge-triggered) wakes the daemon for every line written, whether it
  // reads then or not — profiled under 32 flooding builds, ~50,000 wakeups a second were
  // nearly all of the daemon's CPU. Looked at at a pace set by what it finds (LookPace), on the
  // clock all builds share (LookClock), 32 builds cost 5 to 40 wakeups a second however much
  // they print (the pipe holds a megabyte meanwhile, a file all of it), well within the second
  // that `log -f` promises. Returns when to look next, or nullopt once the output has ended.
  std::optional<LookClock::Clock::time_point> look() {
    if (output_.fd < 0) return std::nullopt;
    size_t taken = 0;
    while (taken < kMostPerLook) {
      ssize_t n = ::read(output_.fd, buffer_->data(), buffer_->size());
      if (n > 0) {
        if (callbacks_.on_output)
          callbacks_.on_output(std::string_view(buffer_->data(), static_cast<size_t>(n)));
        taken += static_cast<size_t>(n);
        // A short read emptied the pipe or reached the file's end: no second read to be told so,
        // unless the end is awaited.
        if (static_cast<size_t>(n) < buffer_->size() && !exited_) break;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if ((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ||
                 (n == 0 && output_.from_file && !exited_)) {
        break;  // all read for now
      } else {  // the end of the output (every writer of the pipe gone, or the file read to its
                // end after the build exited), or an error reading it
        output_ended();
        return std::nullopt;
      }
    }
    output_.read += taken;
    punch_behind();
    taken_since_look_ += taken;
    // A full look is followed at once by the next (after whatever else waits on the loop, so
    // that a flooding build cannot hold a `status` behind it). Once the build has exited only the
    // end of its output is awaited: look often, so that the next build starts at once.
    auto now = LookClock::Clock::now();
    if (taken >= kMostPerLook) return now;
    if (exited_) return now + kLookAfterExit;
    auto wait = pace_.next(taken_since_look_);
    taken_since_look_ = 0;
    return now + wait;
  }

  void output_ended() {
    close_output();
    output_done_ = true;
    maybe_finish();
  }

  void close_output() {
    if (output_.fd >= 0) ::close(output_.fd);
    output_.fd = -1;
  }

  // Frees the file's blocks of what was read, but the newest `keep` bytes, a megabyte at a time
  // (a punch costs a journal entry, not a pass over the data), off the loop (HolePuncher).
  void punch_behind() {
    constexpr uint64_t kStep = 1 << 20;
    if (!output_.from_file || output_.read <= output_.keep) return;
    uint64_t until = (output_.read - output_.keep) / kStep * kStep;
    if (until < output_.punched + kStep) return;
    puncher_.punch(output_.fd, output_.punched, until);
    output_.punched = until;
  }

  void watch_exit() {
    child_->async_wait([self = shared_from_this()](int exit_code) { self->exited(exit_code); });
  }

  void exited(int exit_code) {
    exited_ = true;
    status_.exit_code = exit_code;
    // Nothing of a finished build may stay behind: stragglers of its group go too.
    ::kill(-pid_, SIGKILL);
    // A pipe an escaped process still holds is read for kDrainAfterExit at most (a file has no
    // end to wait for: what is in it once the build has exited is all there is).
    drain_timer_.expires_after(kDrainAfterExit);
    drain_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->output_ended();  // an escaped process still holds the pipe: stop reading
      self->looks_.remove(self->look_id_);
    });
    // The rest of the output, at once: most builds end here.
    if (std::optional<LookClock::Clock::time_point> next = look())
      looks_.look_at(look_id_, *next);
    else
      looks_.remove(look_id_);
    maybe_finish();
  }

  void maybe_finish() {
    if (!exited_ || !output_done_ || finished_) return;
    finished_ = true;
    drain_timer_.cancel();
    close_output();
    if (callbacks_.on_exit) callbacks_.on_exit(status_);
  }

  LookClock& looks_;
  HolePuncher& puncher_;
  uint64_t look_id_ = 0;
  std::unique_ptr<Child> child_;  // Boost.Process v2's handle: reaps it and says how it exited
  pid_t pid_;
  std::string identity_;
  Output output_;  // read by look()
  asio::steady_timer drain_timer_;
  BuildCallbacks callbacks_;
  std::shared_ptr<std::vector<char>> buffer_;  // the runner's, shared by every build
  ExitStatus status_;
  LookPace pace_{kPipeSize / 2};
  size_t taken_since_look_ = 0;  // by the looks since the last paced one
  bool exited_ = false;
  bool output_done_ = false;
  bool finished_ = false;
};

// The handle the scheduler holds; the ProcessBuild itself lives as long as its async work does.
class ProcessBuildHandle : public BuildProcess {
 public:
  explicit ProcessBuildHandle(std::shared_ptr<ProcessBuild> build) : build_(std::move(build)) {}
  void terminate() override { build_->terminate(); }
  void kill() override { build_->kill(); }
  int process_group() const override { return build_->process_group(); }
  std::string identity() const override { return build_->identity(); }

 private:
  std::shared_ptr<ProcessBuild> build_;
};

}  // namespace

ProcessRunner::ProcessRunner(asio::io_context& io) : io_(io) {}
ProcessRunner::~ProcessRunner() = default;

std::unique_ptr<BuildProcess> ProcessRunner::start(const BuildCommand& command,
                                                   const std::map<std::string, std::string>& env,
                                                   BuildCallbacks callbacks, std::string& error) {
  // The build's end of its output (closed here once it is started) and the daemon's.
  int write_fd = -1;
  Output output;
  if (command.output) {
    const std::string& path = command.output->path;
    write_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    output.fd = write_fd < 0 ? -1 : ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);  // RDWR: to punch
    if (output.fd < 0) {
      error = "cannot open the build's output file " + path + ": " + std::strerror(errno);
      if (write_fd >= 0) ::close(write_fd);
      return nullptr;
    }
    output.from_file = true;
    output.keep = command.output->keep;
    // What is there already (the daemon's lines, an earlier step's output) was taken.
    off_t end = ::lseek(output.fd, 0, SEEK_END);
    output.read = end > 0 ? static_cast<uint64_t>(end) : 0;
  } else {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      error = std::string("pipe: ") + std::strerror(errno);
      return nullptr;
    }
    ::fcntl(pipe_fds[0], F_SETPIPE_SZ, kPipeSize);  // room for what a command prints while we gather
    output.fd = pipe_fds[0];
    write_fd = pipe_fds[1];
  }
  std::vector<std::string> envs = environment_with(env);
  auto envp = pointers(envs);
  std::unique_ptr<Child> child = start_child(io_, in_cgroups(command.argv, command.join_cgroups), command.cwd,
                                             envp.data(), write_fd, write_fd, error);
  ::close(write_fd);
  if (!child) {
    ::close(output.fd);
    return nullptr;
  }
  if (!read_buffer_) read_buffer_ = std::make_shared<std::vector<char>>(kReadBuffer);
  if (!looks_) looks_ = std::make_unique<LookClock>(io_);
  if (!puncher_) puncher_ = std::make_unique<HolePuncher>();
  auto build = std::make_shared<ProcessBuild>(io_, *looks_, *puncher_, std::move(child), output, read_buffer_,
                                              std::move(callbacks));
  build->begin();
  return std::make_unique<ProcessBuildHandle>(std::move(build));
}

}  // namespace ptbuild
