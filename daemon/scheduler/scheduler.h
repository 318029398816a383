// The dispatcher: starts queued builds on free slots in the order the plan gives, watches them
// (log, progress, timeouts), stops them (cancel, shutdown) and records every outcome.
//
// It lives on the daemon's one event loop and owns the scheduler state: no locks.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <deque>
#include <set>
#include <thread>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include "core/builder_health.h"
#include "core/config.h"
#include "core/job.h"
#include "core/progress.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class Runner;
class Store;

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, Store& store, const Config& config, Runner& runner);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // At start: what was running when the last daemon died is queued again (one more attempt)
  // and what is left of its processes is killed.
  void recover();
  // At start: a probe tells whether each builder can build at all before any build starts there
  // (a build on this machine, a `nix store ping` of a remote one), so a machine whose Nix is
  // broken or that cannot be reached costs no job an attempt.
  void check_builders();
  // The config was reloaded: the fleet follows it. A builder that stays (by name) keeps its
  // health and its running builds; one that goes keeps its running builds until they end.
  void reconfigure();
  // Replaces how a build's sources are listed before it runs (nullptr: they are not).
  void set_source_lister(
      std::function<struct SourceInputs(const std::string&, const std::string&, const std::string&)> lister) {
    source_lister_ = std::move(lister);
  }
  // `ptbuild builders disable|enable NAME` (docs/fleet.md); "" or why not. Survives a restart.
  std::string set_builder_enabled(const std::string& name, bool enabled);
  // Something changed (queued, config reloaded, a build ended): start what may start.
  void poke();

  enum class CancelOutcome { cancelled, stopping, already_finished };
  CancelOutcome cancel(int64_t job_id, const std::string& who);

  void pause();
  // Ends a pause, and a builder's rest after a machine fault: the operator says it is fixed.
  void resume();
  // Start nothing new; call `on_drained` once nothing runs any more.
  void drain(std::function<void()> on_drained);
  // Graceful stop: stop every build as in cancel, put its job back in the queue, then call
  // `on_stopped`.
  void shutdown(std::function<void()> on_stopped);

  struct BuilderSummary {
    BuilderSpec spec;
    std::string state;  // "up", "disabled", "checking …", "down until T: reason"
    int running = 0;
    int done = 0;  // builds that ended on it since ptbuildd started
    std::string last_error;
  };
  struct Summary {
    bool paused = false;
    bool draining = false;
    int running = 0;
    int slots = 0;
    std::vector<BuilderSummary> builders;
  };
  Summary summary() const;
  bool is_running(int64_t job_id) const;
  // A hash repair runs or waits for the repair thread.
  bool repairing() const { return repair_thread_.joinable() || !repairs_.empty(); }
  // Why a queued job has not started, as the last dispatch found it (docs/fleet.md); nullopt for a
  // job that is not queued.
  std::optional<std::string> waiting(int64_t job_id) const;
  // A running build's progress as its output shows it now (the database has it within a
  // second); nullopt for a job not running here or that has shown none.
  std::optional<Progress> progress(int64_t job_id) const;

  // Listeners return false to stop listening.
  using OutputListener = std::function<bool(std::string_view chunk)>;
  using JobListener = std::function<bool(const Job& job)>;
  void listen_output(int64_t job_id, OutputListener listener);  // only while it runs
  // Puts what a running build printed so far on disk (its log closes a frame), so that a
  // reader of the file misses nothing before it starts listening.
  void flush_log(int64_t job_id);
  // Called when any job starts running or ends (succeeded, failed, cancelled), while `alive`
  // says the listener still wants it (its client is still connected): listeners of clients gone
  // are dropped at the next listen, not kept until the next job event.
  void listen_jobs(JobListener listener, std::function<bool()> alive);

 private:
  struct Active;
  struct Outcome;
  enum class StopReason { none, cancel, timeout, shutdown };

  void dispatch();
  struct Builder;
  void start_build(const Job& job, const struct VariantRecord& variant, Builder& builder);
  void start_publish(const Job& job);
  Active* begin_job(const Job& job, const struct VariantRecord& variant, Builder* builder,
                    const std::string& what, struct JobChange change);
  void launch(Active& active, const struct BuildCommand& command, std::map<std::string, std::string> env,
              Millis limit, const std::string& limit_name);
  std::optional<Outcome> stop_outcome(Active& active, int exit_code);
  Outcome build_outcome(Active& active, int exit_code);
  Outcome publish_outcome(Active& active, int exit_code);
  Outcome verify_outcome(Active& active, int exit_code);
  void start_verify(Active& active, Outcome built);
  void on_output(int64_t job_id, std::string_view chunk);
  void save_progress();
  void on_exit(int64_t job_id, int exit_code);
  void stop_build(Active& active, StopReason reason, const std::string& detail);
  void arm_silence_timer(Active& active);
  void arm_log_flush();
  void announce(int64_t job_id);
  struct RepairRequest;
  bool repair_refused(const Active& active, Failure& failure);
  void start_repair(Active& active, Outcome failed);
  void run_next_repair();
  void repair_done(int64_t job_id, const std::vector<struct HashMismatch>& mismatches,
                   struct RepairResult result);
  void finish(std::map<int64_t, std::unique_ptr<Active>>::iterator it, Outcome outcome);
  void fail_without_running(const Job& job, const Failure& failure);
  void after_idle();

  boost::asio::io_context& io_;
  Store& store_;
  const Config& config_;
  Runner& runner_;

  struct Ended;
  void record(Ended ended);
  void builder_fault(Builder& builder, const std::string& why);
  void probe_builder(Builder& builder);
  Builder* builder_named(const std::string& name);
  std::string hold_reason() const;
  // What a build of `variant` needs of a machine; nullopt while its derivation is being read.
  std::optional<struct BuildNeeds> needs_of(const struct VariantRecord& variant);
  std::string describe_unplaced(const struct BuildNeeds& needs, const struct Placement& placement) const;

  std::map<int64_t, std::unique_ptr<Active>> running_;
  // What the scheduler remembers of a job across its attempts within one daemon's life; dropped
  // when the job ends (announce()).
  struct JobMemory {
    std::chrono::steady_clock::time_point not_before{};  // backing off after a network failure
    int network_retries = 0;
    int hash_rounds = 0;
    std::set<std::string> repaired;  // "<drv name> <hash>" pairs this job has written
    std::string waiting;             // queued: why the last dispatch left it ("" = not known)
  };
  std::map<int64_t, JobMemory> memory_;
  std::vector<std::unique_ptr<Builder>> builders_;  // the fleet, in config order
  // variant -> what its derivation needs of a machine; read once per build (dropped when the
  // build ends, so an edited recipe is read again).
  std::map<std::string, struct BuildNeeds> needs_;
  std::set<std::string> reading_needs_;
  std::set<int64_t> publish_checking_;  // publish jobs whose flox preconditions are being checked
  std::set<int64_t> publish_checked_;   // … and found fine: they start at the next dispatch
  std::vector<Ended> unrecorded_;       // outcomes the database could not take yet
  std::deque<RepairRequest> repairs_;   // hash repairs waiting for the repair thread
  std::thread repair_thread_;
  struct JobListenerEntry {
    JobListener on_job;
    std::function<bool()> alive;
  };
  std::vector<JobListenerEntry> job_listeners_;
  std::unique_ptr<struct SchedulerTimers> timers_;
  // Lists a recipe's sources (fixed-output inputs) to realise before the build (docs/hash-repair.md); empty:
  // no such step (the scheduler's unit tests, whose runner runs nothing).
  std::function<struct SourceInputs(const std::string& nix, const std::string& recipe,
                                    const std::string& cwd)>
      source_lister_;
  std::string probe_path_;  // written on first use
  bool poke_pending_ = false;
  bool paused_ = false;
  bool draining_ = false;
  bool stopping_ = false;
  std::function<void()> on_drained_;
  std::function<void()> on_stopped_;
  // Last: destroyed first, it waits for the blocking helpers still running.
  std::unique_ptr<class OffLoop> off_loop_;
};

}  // namespace ptbuild
