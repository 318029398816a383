// The scheduler's own types, shared by its parts (scheduler.cpp: dispatch, processes and
// outcomes; fleet.cpp: the builders; publish_verify.cpp: the steps after a build). Not for
// anyone else: the Scheduler class is the interface.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/backend.h"
#include "core/builder_health.h"
#include "core/diagnosis.h"
#include "core/duration.h"
#include "core/fleet.h"
#include "core/output_reader.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/runner/build_log.h"
#include "daemon/runner/runner.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

inline std::string now() {
  return format_rfc3339(std::chrono::system_clock::now());
}

struct SchedulerTimers {
  explicit SchedulerTimers(asio::io_context& io) : retry_wakeup(io), record_retry(io), log_flush(io) {}
  asio::steady_timer retry_wakeup;
  asio::steady_timer record_retry;  // outcomes the database could not take yet
  asio::steady_timer log_flush;     // every kFlushCheck while builds run: frames due are closed
  bool log_flush_armed = false;
  std::chrono::steady_clock::time_point progress_saved{};
  // Held while a hash repair runs on its thread, so that io.run() waits for its answer.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> repair_work;
};

// What a job's process exit means for the job.
struct Scheduler::Outcome {
  JobState state = JobState::failed;
  JobChange change;
  std::string detail;
  std::vector<HashFix> fixes;
  std::optional<Store::Backoff> backoff;  // queued again to retry a network failure later
  bool repair = false;  // a hash mismatch to repair (off the event loop) before it is decided
};

// A hash repair waiting for, or running on, the repair thread.
struct Scheduler::RepairRequest {
  int64_t job_id;
  HashfixOptions options;
  std::vector<HashMismatch> mismatches;
};

// One machine of the fleet (docs/fleet.md) as the scheduler keeps it.
struct Scheduler::Builder {
  Builder(asio::io_context& io, BuilderSpec s) : spec(std::move(s)), probe_timer(io) {}
  BuilderSpec spec;
  BuilderHealth health;
  bool disabled = false;  // by the operator
  int running = 0;        // jobs placed on it that have not ended (a verifying one holds its slot)
  int done = 0;
  std::string last_error;          // its last machine fault (a recipe's failure is not the machine's)
  uint64_t epoch = 0;              // a probe's answer counts only in its own epoch
  asio::steady_timer probe_timer;  // the end of its rest after a machine fault
  bool up() const { return !disabled && health.up(); }
  std::string state() const { return disabled ? "disabled" : health.describe(); }
};

struct Scheduler::Active {
  Active(asio::io_context& io, Job j, VariantRecord v, std::string b, uint64_t log_max)
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
  asio::steady_timer deadline, silence, grace;
  Clock::time_point last_output = Clock::now();
  bool progress_unsaved = false;  // changed since save_progress() last wrote it
  StopReason stop = StopReason::none;
  std::string stop_detail;
  std::string result_link;
  std::optional<Failure> start_failure;  // the build never ran
  std::vector<OutputListener> listeners;
  // A build realises its sources first, then builds; after a successful build the job stays
  // running while the probe checks the artifact.
  enum class Phase { sources, build, verify, repair } phase = Phase::build;
  bool announced = false;  // its start was told to the listeners
  BuildCommand build;      // the build itself, launched once its sources are there
  std::map<std::string, std::string> build_env;
  Outcome repair_fallback;  // a failed build waiting for its hash repair; the outcome if none
  JobChange built;          // the successful build's outcome, waiting for the probe's verdict
  std::string probe_output;
  std::string verified_on;  // the GPU builder the probe runs on; "" for this machine
};

struct Scheduler::Ended {
  Job job;
  Outcome outcome;
};

}  // namespace ptbuild
