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

void run_async(asio::io_context& io, Runner& runner, const BuildCommand& command, std::chrono::milliseconds timeout,
               std::function<void(AsyncResult)> done, const std::map<std::string, std::string>& env) {
  auto r = std::make_shared<Running>(io);
  r->done = std::move(done);
  std::string error;
  r->process = runner.start(command, env,
                            {[r](std::string_view chunk) {
                               if (r->result.output.size() < kMaxOutput) r->result.output.append(chunk);
                             },
                             [r](ExitStatus s) {
                               r->timer.cancel();
                               r->result.exit_code = r->result.timed_out ? 124 : s.exit_code;
                               if (auto done_fn = std::exchange(r->done, nullptr)) done_fn(std::move(r->result));
                               r->process.reset();  // breaks the cycle r -> process -> callbacks -> r
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
  });
}

}  // namespace ptbuild
