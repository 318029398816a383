#include "daemon/runner/async_command.h"

#include <memory>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/runner/runner.h"

namespace ptbuild {

namespace asio = boost::asio;

namespace {
constexpr size_t kMaxOutput = 4 * 1024 * 1024;

struct Running {
  explicit Running(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::unique_ptr<BuildProcess> process;
  AsyncResult result;
  std::function<void(AsyncResult)> done;
};
}  // namespace

void run_async(asio::io_context& io, Runner& runner, const BuildCommand& command,
               std::chrono::milliseconds timeout, std::function<void(AsyncResult)> done,
               const std::map<std::string, std::string>& env) {
  // Who owns `r`: the pending timer's handler, until the command has exited. The process's
  // callbacks only refer to it, so a daemon that stops while the command runs leaves no cycle
  // (r -> process -> callbacks -> r) behind.
  auto r = std::make_shared<Running>(io);
  r->done = std::move(done);
  std::string error;
  std::weak_ptr<Running> weak = r;
  r->process =
      runner.start(command, env,
                   {[weak](std::string_view chunk) {
                      if (auto running = weak.lock(); running && running->result.output.size() < kMaxOutput)
                        running->result.output.append(chunk);
                    },
                    [weak](ExitStatus s) {
                      auto running = weak.lock();
                      if (!running) return;
                      running->timer.cancel();
                      running->result.exit_code = running->result.timed_out ? 124 : s.exit_code;
                      if (auto done_fn = std::exchange(running->done, nullptr))
                        done_fn(std::move(running->result));
                    }},
                   error);
  if (!r->process) {
    r->result.exit_code = 127;
    r->result.output = error;
    asio::post(io, [r] {
      if (auto done_fn = std::exchange(r->done, nullptr)) done_fn(std::move(r->result));
    });
    return;
  }
  r->timer.expires_after(timeout);
  r->timer.async_wait([r](const boost::system::error_code& ec) {
    if (ec || !r->process) return;
    r->result.timed_out = true;
    r->process->kill();
    // Still the owner until the killed command's exit is seen (its callback cancels this).
    r->timer.expires_after(std::chrono::hours(24));
    r->timer.async_wait([r](const boost::system::error_code&) {});
  });
}

void CommandQueue::run(BuildCommand command, std::chrono::milliseconds timeout,
                       std::function<void(AsyncResult)> done) {
  Waiting w{std::move(command), timeout, std::move(done)};
  if (running_ < capacity_)
    start(std::move(w));
  else
    waiting_.push_back(std::move(w));
}

void CommandQueue::start(Waiting w) {
  ++running_;
  run_async(io_, runner_, w.command, w.timeout, [this, done = std::move(w.done)](AsyncResult r) {
    --running_;
    if (!waiting_.empty()) {
      Waiting next = std::move(waiting_.front());
      waiting_.pop_front();
      start(std::move(next));
    }
    done(std::move(r));
  });
}

}  // namespace ptbuild
