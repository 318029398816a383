// A runner that starts no process: tests drive each build's output and exit by hand.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "daemon/runner/runner.h"

namespace ptbuild::testing {

class FakeRunner : public Runner {
 public:
  struct Build {
    BuildCommand command;
    BuildCallbacks callbacks;
    int terminated = 0;  // SIGTERMs sent
    int killed = 0;      // SIGKILLs sent
    bool exited = false;
    // As the real runner: the process appends to its output file, the runner reads it back.
    void output(std::string_view text) {
      if (command.output) std::ofstream(command.output->path, std::ios::app | std::ios::binary) << text;
      callbacks.on_output(text);
    }
    bool leaves_result = true;  // false: exits 0 without an output (not a derivation)
    // Like a real build, a successful one leaves its result link behind.
    void exit(int code) {
      if (code == 0 && leaves_result && !command.result_link.empty()) {
        std::filesystem::path link(command.result_link);
        std::filesystem::create_directories(link.parent_path());
        std::filesystem::remove(link);
        std::filesystem::create_symlink(
            "/nix/store/00000000000000000000000000000000-" + link.filename().string(), link);
      }
      exited = true;
      callbacks.on_exit({code});
    }
  };

  std::unique_ptr<BuildProcess> start(const BuildCommand& command, const std::map<std::string, std::string>&,
                                      BuildCallbacks callbacks, std::string& error) override {
    if (fail_to_start) {
      error = "cannot start " + command.argv[0] + ": No such file or directory";
      return nullptr;
    }
    auto build = std::make_shared<Build>(Build{command, std::move(callbacks)});
    builds.push_back(build);
    return std::make_unique<Handle>(build, static_cast<int>(10000 + builds.size()));
  }

  // The builds that have not exited yet.
  std::vector<std::shared_ptr<Build>> live() const {
    std::vector<std::shared_ptr<Build>> out;
    for (const auto& b : builds)
      if (!b->exited) out.push_back(b);
    return out;
  }

  std::vector<std::shared_ptr<Build>> builds;
  bool fail_to_start = false;

 private:
  class Handle : public BuildProcess {
   public:
    Handle(std::shared_ptr<Build> b, int pgid) : build_(std::move(b)), pgid_(pgid) {}
    void terminate() override { ++build_->terminated; }
    void kill() override { ++build_->killed; }
    int process_group() const override { return pgid_; }
    std::string identity() const override { return "fake:" + std::to_string(pgid_); }

   private:
    std::shared_ptr<Build> build_;
    int pgid_;
  };
};

}  // namespace ptbuild::testing
