// `ptbuild bisect` (docs/bisect.md): finds the first commit of the build repo at which a variant
// fails. Each commit it picks (core/bisect) is checked out in a git worktree of its own, never
// the repo's checkout, and evaluated: a derivation equal to one already judged is judged the same
// without a build; any other is built by a `bisect` job below normal priority. On the loop; git
// and Nix run off it.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "daemon/store/store.h"

namespace ptbuild {

class Clock;
class OffLoop;
class Scheduler;

class Bisector {
 public:
  Bisector(Store& store, Scheduler& scheduler, OffLoop& off_loop, Clock& clock, const Config& config)
      : store_(store), scheduler_(scheduler), off_loop_(off_loop), clock_(clock), config_(config) {}
  // Listens to the scheduler's job ends, and takes up the bisections a stop left running.
  void start();

  // Starts a bisection of `variant` between `good` and `bad` (commits; "" for the defaults: the
  // last good build's commit, and the failed build's or HEAD). `done` gets it as started, or an error.
  void bisect(const std::string& variant, const std::string& good, const std::string& bad,
              std::function<void(std::optional<BisectRecord>, std::string error)> done);
  // Cancels the running bisections (of `variant`, or all): their queued jobs are cancelled.
  std::vector<BisectRecord> cancel(const std::string& variant, int uid);

 private:
  void step(int64_t id);
  void judged(int64_t id);  // a commit got its verdict: the next step, or the end
  void finish(BisectRecord& b, const std::string& state, const std::string& message);
  void on_job(const Job& job);
  std::optional<BisectRecord> running(int64_t id);
  void remove_worktrees(const BisectRecord& b);

  Store& store_;
  Scheduler& scheduler_;
  OffLoop& off_loop_;
  Clock& clock_;
  const Config& config_;
  std::set<int64_t> evaluating_;  // bisections with a commit being checked out and evaluated
};

}  // namespace ptbuild
