// What the scheduler holds about one job (JobRun) and one machine (FleetBuilder). Private to the
// scheduler's own files (scheduler.cpp, attempt.cpp, outcome.cpp, fleet.cpp): the Scheduler
// class is the interface everyone else uses.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/backend.h"
#include "core/builder_health.h"
#include "core/job_flow.h"
#include "core/output_reader.h"
#include "core/resources.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/resources/cgroup.h"
#include "daemon/resources/local_facts.h"
#include "daemon/runner/build_log.h"
#include "daemon/runner/runner.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/store/store.h"

namespace ptbuild {

// What a job's attempt comes to, as the store will record it.
struct Outcome {
  JobState state = JobState::failed;
  JobChange change;
  std::string detail;                     // the event row's text
  std::vector<HashFix> fixes;             // repairs made by this attempt (kept whatever else happens)
  std::optional<Store::Backoff> backoff;  // queued again to retry a network failure later
};

// One attempt: from the moment the job is `running` in the store until its outcome is known.
struct Attempt {
  Attempt(boost::asio::io_context& io, Job j, VariantRecord v, std::string b, uint64_t log_max)
      : job(std::move(j)),
        variant(std::move(v)),
        builder(std::move(b)),
        log(log_max),
        output(variant.axes),
        deadline(io),
        silence(io),
        grace(io) {}
  Job job;
  VariantRecord variant;
  std::string builder;  // the builder whose slot it holds; "" for a publish
  std::unique_ptr<BuildProcess> process;
  BuildLog log;
  OutputReader output;  // diagnosis, hash mismatches and progress, read as the output streams
  boost::asio::steady_timer deadline, silence, grace;
  std::chrono::steady_clock::time_point last_output;
  bool progress_unsaved = false;         // changed since the progress was last written
  std::string stop_detail;               // why it is being stopped
  bool asking_builder = false;           // silent on a remote builder: is the machine still there?
  std::optional<Failure> start_failure;  // what kept it from running at all
  std::vector<Scheduler::OutputListener> listeners;
  BuildCommand build;  // the build itself, launched once its sources are there
  std::map<std::string, std::string> build_env;
  std::vector<std::string> sources;  // fixed-output derivations to realise first
  std::string result_link;           // of the process that runs now
  std::optional<Outcome> pending;    // a build's outcome waiting for the probe or the repair
  std::string probe_output;
  std::string verified_on;  // the GPU builder the probe runs on; "" for this machine
  // Its share of the builder (docs/resources.md): the cores, the memory it is expected to take
  // and the most the kernel lets it, and the cgroup that measures it where ptbuildd runs it.
  int cores = 0;
  uint64_t memory_limit = 0;
  Expectation expected;
  std::string cgroup;                     // its group's name ("" none)
  std::vector<std::string> cgroup_procs;  // the files its first process joins
  uint64_t current_memory = 0;            // as last read, while it builds
  // Its own TMPDIR where ptbuildd runs it: a single-user Nix makes the build's directory in it,
  // walked now and then while it builds (never more than a small part of a core).
  std::string tmpdir;
  std::optional<uint64_t> build_dir_now;   // as last walked, once something was in it
  std::optional<uint64_t> build_dir_peak;  // the most seen
  std::chrono::steady_clock::time_point tmpdir_walk_after{};
  std::chrono::steady_clock::time_point build_started{};
  bool stopped_for_memory = false;  // the newest build, stopped under memory pressure
  std::optional<ResourceUse> used;  // what the build used, once it has ended
};

// What one look at this machine read of a build running there.
struct BuildReading {
  std::optional<uint64_t> memory;  // its cgroup's, now
  std::optional<DirUsage> tmpdir;  // its TMPDIR, walked
};

// What an attempt's build used (docs/resources.md): its cgroup's figures where it had one
// (`measured_by`), else the wall time alone, said so.
ResourceUse measured_use(const Attempt& a, const std::optional<BuildCgroups::Usage>& usage,
                         const std::string& measured_by, std::optional<uint64_t> output_size,
                         std::chrono::steady_clock::time_point now);

// One job the scheduler holds: queued with something to remember, or in an attempt, or waiting for
// the store to take its outcome. Its stage moves only through next() (core/job_flow.h).
struct JobRun {
  explicit JobRun(int64_t job_id) : id(job_id) {}
  int64_t id;
  JobFlow flow;
  // While queued.
  std::string waiting;                                 // why the last dispatch left it ("" = not known)
  std::chrono::steady_clock::time_point not_before{};  // backing off after a network failure
  bool publish_checked = false;                        // flox's preconditions were found fine
  // How it ends without running (a recipe gone, nothing to publish, cancelled while queued).
  struct Unstarted {
    JobState state = JobState::failed;
    Failure failure;
    std::string detail;
  };
  std::optional<Unstarted> unstarted;
  // What it learnt over its attempts in this daemon's life.
  int network_retries = 0;
  std::vector<std::string> machine_faults;  // builders where its builds failed for the machine (in memory)
  int hash_rounds = 0;
  std::string repair_journal;      // of its last repair, until the history holds it (daemon/hashfix)
  std::set<std::string> repaired;  // "<drv name> <hash>" pairs this job has written
  // The attempt under way, and the outcome the store has not taken yet.
  std::unique_ptr<Attempt> attempt;
  std::optional<Job> ended;  // the job as its attempt left it, while recording
  std::optional<Outcome> outcome;
};

// One machine of the fleet (docs/fleet.md) as the scheduler keeps it.
struct FleetBuilder {
  FleetBuilder(boost::asio::io_context& io, BuilderSpec s) : spec(std::move(s)), probe_timer(io) {}
  BuilderSpec spec;
  BuilderHealth health;
  bool disabled = false;  // by the operator
  int running = 0;        // jobs placed on it whose attempt has not ended
  int done = 0;
  std::string last_error;             // its last machine fault (a recipe's failure is not the machine's)
  std::optional<MachineFacts> facts;  // as last read (docs/resources.md)
  std::chrono::steady_clock::time_point facts_at{};
  bool reading_facts = false;
  std::string facts_error;                // why its facts could not be read
  uint64_t epoch = 0;                     // a probe's answer counts only in its own epoch
  boost::asio::steady_timer probe_timer;  // the end of its rest after a machine fault
  // Automatic garbage collection below min_free (docs/resources.md): one at a time, and not
  // again within a while unless a build ran out of disk there.
  bool collecting = false;
  std::chrono::steady_clock::time_point collected_at{};
  bool up() const { return !disabled && health.up(); }
  std::string state() const { return disabled ? "disabled" : health.describe(); }
};

// The scheduler's own timers, beside the ones each attempt and builder has.
struct SchedulerTimers {
  explicit SchedulerTimers(boost::asio::io_context& io)
      : retry_wakeup(io), record_retry(io), log_flush(io), facts(io) {}
  boost::asio::steady_timer retry_wakeup;  // the first back-off that ends
  boost::asio::steady_timer record_retry;  // outcomes the database could not take yet
  boost::asio::steady_timer log_flush;     // while builds run: frames due are closed, progress saved
  boost::asio::steady_timer facts;         // the builders' facts are read again
  bool log_flush_armed = false;
  bool record_retry_armed = false;
  std::chrono::steady_clock::time_point progress_saved{};
  // Held while a hash repair runs on its thread, so that io.run() waits for its answer.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> repair_work;
};

}  // namespace ptbuild
