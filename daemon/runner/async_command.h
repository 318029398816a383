// A short command run on the event loop without blocking it (git pull, nix-instantiate): its
// output collected, killed after a timeout, the callback called once with the result.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "core/backend.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class Runner;

struct AsyncResult {
  int exit_code = -1;  // 124 when it timed out, 127 when it could not start
  std::string output;  // stdout and stderr together
  bool timed_out = false;
};

void run_async(boost::asio::io_context& io, Runner& runner, const BuildCommand& command,
               std::chrono::milliseconds timeout, std::function<void(AsyncResult)> done,
               const std::map<std::string, std::string>& env = {});

}  // namespace ptbuild
