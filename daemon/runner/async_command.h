// A short command run on the event loop without blocking it (git pull, nix-instantiate): its
// output collected, killed after a timeout, the callback called once with the result.
#pragma once

#include <chrono>
#include <deque>
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

// run_async with at most `capacity` commands at once; the rest wait their turn, in order. The
// probes and facts of a thousand builders would otherwise start a thousand ssh processes (two
// descriptors each) in one go, again after every back-off.
class CommandQueue {
 public:
  CommandQueue(boost::asio::io_context& io, Runner& runner, size_t capacity)
      : io_(io), runner_(runner), capacity_(capacity) {}
  void run(BuildCommand command, std::chrono::milliseconds timeout, std::function<void(AsyncResult)> done);
  size_t running() const { return running_; }
  size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    BuildCommand command;
    std::chrono::milliseconds timeout;
    std::function<void(AsyncResult)> done;
  };
  void start(Waiting w);

  boost::asio::io_context& io_;
  Runner& runner_;
  size_t capacity_;
  size_t running_ = 0;
  std::deque<Waiting> waiting_;
};

}  // namespace ptbuild
