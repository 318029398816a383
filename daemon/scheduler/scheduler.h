// The dispatcher: starts queued jobs in the order the plan gives on the builders placement
// chooses, carries each job through its stages (core/job_flow.h), stops them (cancel, timeout,
// shutdown) and records every outcome.
//
// It lives on the daemon's one event loop and owns the scheduler state: no locks. Its files:
//   scheduler.cpp  the interface: start-up, dispatch (snapshot -> decide_dispatch -> apply),
//                  cancel, pause, drain, shutdown, what status asks;
//   attempt.cpp    one job's flow: advance() carries out the action next() returns — the place
//                  to read what happens to a job after its build exits 0;
//   outcome.cpp    what a process's end means: the build's verdict, the probe's, the publish's,
//                  a stop's, and the hash repair in between;
//   fleet.cpp      the builders: health, probes, what a build needs of a machine.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/fleet.h"
#include "core/job.h"
#include "core/job_flow.h"
#include "core/progress.h"
#include "core/resources.h"
#include "daemon/runner/async_command.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

// Builders probed or asked for their facts at once; the others wait their turn.
inline constexpr size_t kMachineChecksAtOnce = 16;

class BuildCgroups;
class Clock;
class OffLoop;
class Runner;
class Store;
struct Attempt;
struct BuildNeeds;
struct FleetBuilder;
struct JobRun;
struct Outcome;
struct SourceInputs;
struct VariantRecord;
struct HashMismatch;
struct RepairResult;

// How the scheduler reaches the world beyond its loop: the clock it reads, and whether blocking
// work (recipe files, git, nix eval) runs on threads (the daemon) or at once (unit tests, whose
// loop is driven by hand).
struct SchedulerSeams {
  Clock* clock = nullptr;  // nullptr: the system's clocks
  bool blocking_work_inline = false;
  // This machine's facts (docs/resources.md); empty: read from /proc and statvfs. A function
  // that returns nullopt leaves the local builder to its slots.
  std::function<std::optional<MachineFacts>()> local_facts;
  // Whether builds on this machine get a cgroup of their own (measured, held to their memory).
  bool build_cgroups = true;
};

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, Store& store, const Config& config, Runner& runner,
            SchedulerSeams seams = {});
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
  // The repos whose recipe folder could not be read at the last scan: their jobs wait.
  void set_missing_repos(std::vector<std::string> repos);
  // Replaces how a build's sources are listed before it runs (nullptr: they are not).
  using SourceLister =
      std::function<SourceInputs(const std::string&, const std::string&, const std::string&)>;
  void set_source_lister(SourceLister lister);
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
    int done = 0;  // builds that ended on it (their last attempt ran there), restarts included
    std::string last_error;
    std::optional<MachineFacts> facts;  // what it has, as last read (docs/resources.md)
    std::string facts_error;
    uint64_t committed = 0;  // memory its builds hold or are expected to
    uint64_t reserve = 0, min_free = 0;
    struct Holding {
      int64_t job = 0;
      uint64_t memory = 0;                // what it holds or will
      std::optional<uint64_t> build_dir;  // its build directory now, where walked
    };
    std::vector<Holding> holding;
  };
  struct Summary {
    bool paused = false;
    bool draining = false;
    int running = 0;
    int slots = 0;
    std::vector<BuilderSummary> builders;
    int64_t oom_kills = 0;  // since ptbuildd started
  };
  Summary summary() const;
  bool is_running(int64_t job_id) const;
  // A hash repair runs or waits for the repair thread.
  bool repairing() const { return repair_thread_.joinable() || !repairs_.empty(); }
  // Why a queued job has not started, as the last dispatch found it (docs/fleet.md); nullopt for
  // a job that is not queued.
  std::optional<std::string> waiting(int64_t job_id) const;
  // A running build's progress as its output shows it now (the database has it within a
  // second); nullopt for a job not running here or that has shown none.
  std::optional<Progress> progress(int64_t job_id) const;
  // Whether `builder` may build `variant`, as far as what it needs is known (not known: yes).
  bool may_build(const std::string& variant, const std::string& builder) const;

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
  // The same for a part of the daemon that listens as long as it runs (alerts, bisect, provenance).
  void follow_jobs(std::function<void(const Job&)> on_job) {
    listen_jobs(
        [on_job = std::move(on_job)](const Job& job) {
          on_job(job);
          return true;
        },
        [] { return true; });
  }

 private:
  // scheduler.cpp: dispatch.
  void dispatch();
  struct DispatchSnapshot snapshot();
  void apply(const struct DispatchDecision& decision, const struct DispatchSnapshot& snapshot);
  void expect_resources(struct DispatchSnapshot& snapshot);
  JobRun& run_of(int64_t job_id);
  JobRun* find_run(int64_t job_id);
  bool begin_attempt(JobRun& run, const Job& queued, const VariantRecord& variant, FleetBuilder* builder,
                     const std::string& what, struct JobChange change);
  std::string hold_reason() const;
  void announce(int64_t job_id);
  void after_idle();

  // attempt.cpp: one job's flow.
  void advance(JobRun& run, Event event);
  void prepare(JobRun& run);
  std::optional<struct ChangesQuery> failure_changes_query(int64_t job_id);
  void check_publish(JobRun& run);
  void settle_unstarted(JobRun& run);
  void launch(JobRun& run, const struct BuildCommand& command, std::map<std::string, std::string> env,
              std::chrono::milliseconds limit, const std::string& limit_name);
  void start_verify(JobRun& run);
  void on_output(int64_t job_id, std::string_view chunk);
  void on_exit(int64_t job_id, int exit_code);
  void terminate(JobRun& run);
  void arm_silence_timer(JobRun& run);
  void arm_log_flush();
  void save_progress();
  void end_attempt(JobRun& run);
  void record(JobRun& run);
  void arm_record_retry();
  void release(JobRun& run);

  // outcome.cpp: what the end of a process means.
  Outcome stop_outcome(const JobRun& run, int exit_code);
  Event build_end(JobRun& run, int exit_code, const std::string& result);
  Event out_of_memory(JobRun& run, int exit_code, std::optional<struct Failure> failure);
  Event verify_end(JobRun& run, int exit_code);
  Event publish_end(JobRun& run, int exit_code);
  bool repair_refused(const JobRun& run, struct Failure& failure);
  void start_repair(JobRun& run);
  void run_next_repair();
  void repair_done(int64_t job_id, const std::vector<HashMismatch>& mismatches, RepairResult result);

  // fleet.cpp: the builders.
  FleetBuilder* builder_named(const std::string& name);
  void builder_fault(FleetBuilder& builder, const std::string& why);
  // Nix's GC on a builder below its min_free or whose build ran out of disk (gc.auto): this
  // machine's by the retention policy, a remote one's over its ssh.
  void collect_garbage_on(FleetBuilder& builder, const std::string& why, bool urgent);
  void collect_if_below_min_free(FleetBuilder& builder);  // by its last facts and its limits now
  void probe_builder(FleetBuilder& builder);
  void read_needs(const VariantRecord& variant);
  bool features_matter() const;
  // The builders' facts, read again every few seconds; a builder under memory pressure loses
  // its newest build (docs/resources.md).
  void refresh_facts();
  void facts_read(FleetBuilder& builder, std::optional<MachineFacts> facts, std::string error,
                  std::map<int64_t, struct BuildReading> builds);
  std::vector<RunningUse> running_uses(const FleetBuilder& builder) const;
  // How long the builds there should still take, for dispatch's horizon and placement.
  std::vector<struct RunningLeft> running_left(const FleetBuilder& builder,
                                               std::chrono::steady_clock::time_point now) const;

  boost::asio::io_context& io_;
  Store& store_;
  const Config& config_;
  Runner& runner_;
  Clock& clock_;
  CommandQueue machine_checks_;  // builders' probes and facts: a few at once (docs/fleet.md)

  std::map<int64_t, std::unique_ptr<JobRun>> jobs_;      // every job it holds, by id
  std::vector<std::unique_ptr<FleetBuilder>> builders_;  // the fleet, in config order
  // variant -> what its derivation needs of a machine (nullopt while it is read); read once per
  // build, dropped when the build ends, so an edited recipe is read again.
  std::map<std::string, std::optional<BuildNeeds>> needs_;
  std::map<int64_t, PlannedStart> planned_;  // the last dispatch's plan of the queue
  std::deque<int64_t> repairs_;              // jobs whose hash repair waits for the repair thread
  struct JobListenerEntry {
    JobListener on_job;
    std::function<bool()> alive;
  };
  std::vector<JobListenerEntry> job_listeners_;

  std::unique_ptr<struct SchedulerTimers> timers_;
  std::thread repair_thread_;
  SourceLister source_lister_;  // empty: no sources step (the unit tests, whose runner runs nothing)
  std::function<std::optional<MachineFacts>()> local_facts_;
  std::shared_ptr<const BuildCgroups> cgroups_;  // nullptr: builds here are not measured
  std::vector<std::string> missing_repos_;
  bool poke_pending_ = false;
  int64_t oom_kills_ = 0;  // builds killed or stopped for memory since start
  bool paused_ = false;
  bool draining_ = false;
  bool stopping_ = false;
  std::function<void()> on_drained_;
  std::function<void()> on_stopped_;
  // Last: destroyed first, it waits for the blocking helpers still running.
  std::unique_ptr<OffLoop> off_loop_;
};

}  // namespace ptbuild
