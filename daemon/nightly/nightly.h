// `ptbuild nightly` (docs/nightly.md): decides which variants must be rebuilt because their inputs
// changed since their last good build. Runs on the event loop without blocking it: the git pulls
// and Nix evaluations are child processes, a few at a time, each with a timeout.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/target.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class OffLoop;

class Runner;
class Store;

struct NightlyPlan {
  struct Entry {
    std::string name;  // a variant, or a repo for errors
    std::string reason;
  };
  std::vector<Entry> rebuild;
  std::vector<Entry> skipped;
  std::vector<Entry> errors;  // failed pulls and evaluations: reported, not fatal
  std::string fatal;          // the targets could not be resolved
};

struct NightlyDeps {
  boost::asio::io_context& io;
  Runner& runner;
  OffLoop& off_loop;  // for the recipe files
  Store& store;
  const Config& config;
  // After a pull the recipes may have changed: scans them again (off the loop), then calls back.
  std::function<void(std::function<void()> then)> rescan;
  std::function<Resolution(const std::vector<std::string>&)> resolve;
  // Evaluations done of all to do, at most once a second and at the end (the client shows it).
  std::function<void(size_t done, size_t total)> progress;
};

inline constexpr int kEvalParallel = 4;
inline constexpr auto kEvalTimeout = std::chrono::minutes(10);
// The whole run: an evaluation not started by then is not run, a running one is stopped; their
// variants' files are compared instead, and each is reported.
inline constexpr auto kNightlyDeadline = std::chrono::minutes(30);
// Evaluations in a row of one repo that could not download: the network is down, and the rest
// of that repo's evaluations would only wait for it again (the same nixpkgs tarball each time).
inline constexpr int kNetworkStreak = 3;
inline constexpr auto kPullTimeout = std::chrono::minutes(5);

void plan_nightly(const NightlyDeps& deps, std::vector<std::string> targets,
                  std::function<void(NightlyPlan)> done);

}  // namespace ptbuild
