// The real runner: each build is a child in its own process group, started without a shell,
// its stdout and stderr on one pipe into the event loop or appended to the file it names
// (BuildCommand::output) and read back from there, its exit seen through a pidfd.
#pragma once

#include <memory>
#include <vector>

#include "daemon/runner/runner.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class HolePuncher;
class LookClock;

class ProcessRunner : public Runner {
 public:
  explicit ProcessRunner(boost::asio::io_context& io);
  ~ProcessRunner() override;
  std::unique_ptr<BuildProcess> start(const BuildCommand& command,
                                      const std::map<std::string, std::string>& env, BuildCallbacks callbacks,
                                      std::string& error) override;

 private:
  boost::asio::io_context& io_;
  // One read buffer for every build: they are all read on the one event loop, one at a time.
  std::shared_ptr<std::vector<char>> read_buffer_;
  std::unique_ptr<LookClock> looks_;      // when every build's output is looked at
  std::unique_ptr<HolePuncher> puncher_;  // frees what was read of output files, off the loop
};

}  // namespace ptbuild
