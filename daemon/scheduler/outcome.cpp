// What the end of a job's process means: each function computes the outcome the store will record
// (run.outcome) and returns the event that moves the job on (attempt.cpp). The rules of a build's
// end are core/build_verdict.h's; the hash repair between a failed build and its verdict runs
// here, on a thread of its own.
#include <sstream>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/build_verdict.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/text.h"
#include "core/verify.h"
#include "daemon/scheduler/job_run.h"

namespace ptbuild {

namespace asio = boost::asio;

namespace {
// By derivation name: a repaired fixed-output derivation gets a new store path.
std::string repair_key(const HashMismatch& m, const std::string& hash) {
  size_t dash = m.drv.find('-');
  return (dash == std::string::npos ? m.drv : m.drv.substr(dash + 1)) + " " + hash;
}

// A process that never started, or that printed into a full disk: the job fails whatever the
// process said.
std::optional<Outcome> cut_short(const Attempt& a, int exit_code, const std::string& now) {
  JobChange change{.finished_at = now, .exit_code = exit_code};
  if (a.start_failure) {
    change.failure = a.start_failure;
    return Outcome{JobState::failed, change, a.start_failure->message};
  }
  if (a.log.disk_full()) {
    change.failure =
        Failure{failure_class::kDiskFull, *a.log.write_error(),
                "free space in the state folder (logs) and the Nix store", a.output.scanner().tail()};
    return Outcome{JobState::failed, change, *a.log.write_error()};
  }
  return std::nullopt;
}
}  // namespace

// A job stopped by us (shutdown, cancel, timeout).
Outcome Scheduler::stop_outcome(const JobRun& run, int exit_code) {
  JobChange change{.finished_at = clock_.rfc3339(), .exit_code = exit_code};
  std::string detail = run.attempt ? run.attempt->stop_detail : "";
  std::string tail = run.attempt ? run.attempt->output.scanner().tail() : "";
  switch (run.flow.stop) {
    case StopReason::shutdown:
      return Outcome{JobState::queued, {.clear_outcome = true}, "requeued: " + detail};
    case StopReason::cancel:
      change.failure = Failure{failure_class::kCancelled, detail, "", tail};
      return Outcome{JobState::cancelled, change, detail};
    case StopReason::timeout:
    case StopReason::none:
      break;
  }
  change.failure = Failure{failure_class::kTimeout, detail,
                           "raise build_timeout / max_silent if the build is only slow", tail};
  return Outcome{JobState::failed, change, detail};
}

// A build the kernel killed for memory, or that memory pressure stopped (docs/resources.md): not
// the recipe's failure. It goes back to the queue, its expected peak raised, to run alone (or
// with half its cores); killed again so, it has needed more than the machine has, and fails.
Event Scheduler::out_of_memory(JobRun& run, int exit_code, std::optional<Failure> failure) {
  Attempt& a = *run.attempt;
  ResourceUse used = a.used.value_or(ResourceUse{});
  used.oom_killed = true;
  std::optional<ResourceUse> before =
      a.job.resources_json ? parse_resource_use(*a.job.resources_json) : std::nullopt;
  std::string peak = used.peak_memory ? " at " + human_size(*used.peak_memory) : "";
  std::string how = a.stopped_for_memory ? "stopped under memory pressure" : "killed for memory";
  ++oom_kills_;
  if (before && before->oom_killed) {
    Failure f = failure.value_or(Failure{failure_class::kOutOfMemory, "", "", a.output.scanner().tail()});
    f.failure_class = failure_class::kOutOfMemory;
    f.message = how + " on " + a.builder + peak + " again, after running " +
                (config_.resources.oom_retry == "alone" ? "alone" : "with fewer cores") +
                ": it needs more memory than the builder has";
    f.hint = "build it on a builder with more memory, or lower its parallelism (cores) in the recipe";
    run.outcome = Outcome{JobState::failed,
                          {.finished_at = clock_.rfc3339(),
                           .exit_code = exit_code,
                           .failure = f,
                           .resources_json = resource_use_json(used)},
                          f.failure_class + ": " + f.message};
    return Event::failed;
  }
  std::string next = config_.resources.oom_retry == "alone" ? "alone" : "with half its cores";
  std::string line = "out of memory: " + how + " on " + a.builder + peak + "; queued again to run " + next +
                     ", its expected peak raised (not a failure of the recipe)";
  a.log.write("=== ptbuild: " + line + "\n");
  spdlog::warn("job #{} {}: {}", a.job.id, a.job.variant, line);
  run.outcome = Outcome{JobState::queued,
                        {.resources_json = resource_use_json(used), .clear_outcome = true},
                        "requeued: " + line};
  return Event::machine_fault;  // the job goes back to the queue, as after a machine's fault
}

Event Scheduler::build_end(JobRun& run, int exit_code, const std::string& out) {
  Attempt& a = *run.attempt;
  std::optional<std::string> used = a.used ? std::optional(resource_use_json(*a.used)) : std::nullopt;
  if ((run.outcome = cut_short(a, exit_code, clock_.rfc3339()))) {
    run.outcome->change.resources_json = used;
    return Event::failed;
  }
  std::optional<Failure> failure = a.output.scanner().diagnose(exit_code);
  if (exit_code != 0 &&
      ((a.used && a.used->oom_killed) || (failure && failure->failure_class == failure_class::kOutOfMemory)))
    return out_of_memory(run, exit_code, failure);
  bool repairable = failure && failure->failure_class == failure_class::kHashMismatch &&
                    config_.hashfix.enabled &&
                    !repair_refused(run, *failure);  // a refusal says why in the failure's message
  Verdict verdict = decide_build_end({failure ? &*failure : nullptr, !out.empty(), repairable,
                                      run.network_retries, config_.daemon.retries,
                                      config_.daemon.retry_backoff, a.job.id, a.builder, run.machine_faults});
  FleetBuilder* builder = builder_named(a.builder);
  if (verdict.kind == Verdict::Kind::builder_fault) {
    // The job waits in the queue (for another builder if one fits), not counted as a failure of
    // the variant, while the builder rests.
    std::string why = failure->failure_class + ": " + failure->message;
    run.machine_faults.push_back(a.builder);
    if (builder) {
      builder_fault(*builder, why);
      if (failure->failure_class == failure_class::kDiskFull)
        collect_garbage_on(*builder, "a build ran out of disk", true);
    }
    a.log.write("=== ptbuild: builder " + a.builder + " cannot build (" + why +
                "): the job goes back to the queue\n");
    run.outcome = Outcome{JobState::queued,
                          {.clear_outcome = true},
                          "requeued: builder " + a.builder + " cannot build (" + why + ")"};
    return Event::machine_fault;
  }
  if (verdict.kind == Verdict::Kind::failed && failure && is_machine_fault(*failure)) {
    // The circuit breaker: what looked like the machine's is the recipe's, and counted as such.
    failure->message = failure->failure_class + " at every attempt: " + failure->message;
    failure->failure_class = failure_class::kBuilderFailed;
  }
  if (builder && builder->health.up()) builder->health.healthy();  // it built, or the recipe failed: it works
  Outcome o{JobState::failed,
            {.finished_at = clock_.rfc3339(), .exit_code = exit_code, .resources_json = used},
            ""};
  switch (verdict.kind) {
    case Verdict::Kind::succeeded:
      o.state = JobState::succeeded;
      o.change.out_path = out;
      o.detail = "built " + out;
      run.outcome = std::move(o);
      return Event::succeeded;
    case Verdict::Kind::retry: {
      int retry = ++run.network_retries;
      run.not_before = clock_.steady() + verdict.wait;
      run.outcome =
          Outcome{JobState::queued,
                  {.clear_outcome = true},
                  "network failure (" + failure->message + "): retry " + std::to_string(retry) + " of " +
                      std::to_string(config_.daemon.retries) + " in " + format_duration(verdict.wait),
                  {},
                  Store::Backoff{a.job.id, retry, format_rfc3339(clock_.wall() + verdict.wait)}};
      return Event::network_failure;
    }
    case Verdict::Kind::repair_hash:
    case Verdict::Kind::builder_fault:
    case Verdict::Kind::failed:
      break;
  }
  if (!failure)
    failure =
        Failure{failure_class::kBuilderFailed, "the build exited 0 but left no result at " + a.result_link,
                "the recipe must evaluate to a derivation (a package), not an attribute set",
                a.output.scanner().tail()};
  if (!verdict.hint.empty()) failure->hint = verdict.hint;
  o.detail = failure->failure_class + ": " + failure->message;
  o.change.failure = std::move(failure);
  run.outcome = std::move(o);  // a repair that cannot be made ends the job with it
  return verdict.kind == Verdict::Kind::repair_hash ? Event::hash_mismatch : Event::failed;
}

Event Scheduler::verify_end(JobRun& run, int exit_code) {
  Attempt& a = *run.attempt;
  if (!a.verified_on.empty() && !a.start_failure && !probe_facts(a.probe_output)) {
    // The GPU builder could not take the artifact or run the probe (unreachable, its store full):
    // the machine's fault, not the artifact's. It rests, and the artifact is checked elsewhere.
    Failure f = diagnose_text(a.probe_output, exit_code);
    if (is_machine_fault(f)) {
      std::string why = "the probe could not run there: " + f.failure_class + ": " + f.message;
      a.log.write("=== ptbuild: builder " + a.verified_on + " " + why + "; verifying elsewhere\n");
      if (FleetBuilder* b = builder_named(a.verified_on)) builder_fault(*b, why);
      return Event::probe_elsewhere;
    }
  }
  if ((run.outcome = cut_short(a, exit_code, clock_.rfc3339()))) return Event::failed;
  Outcome o = *a.pending;  // the build's
  std::optional<nlohmann::json> facts = probe_facts(a.probe_output);
  VerifyResult r;
  if (facts) {
    r = compare_facts(a.variant.axes, *facts, a.verified_on);
  } else {
    std::string tail = a.probe_output.substr(a.probe_output.size() > 400 ? a.probe_output.size() - 400 : 0);
    r.problems.push_back("the probe printed no facts (exit " + std::to_string(exit_code) +
                         "): " + std::string(trim(tail)));
  }
  o.change.verify_json = r.to_json().dump();
  if (r.ok) {
    o.detail = "built and verified " + o.change.out_path.value_or("");
    run.outcome = std::move(o);
    return Event::succeeded;
  }
  o.state = JobState::failed;
  o.change.failure = Failure{failure_class::kVerifyFailed,
                             "the artifact is not what its name says: " + join(r.problems, "; "),
                             "the build succeeded but produced the wrong thing; for CUDA off use "
                             "torch.override { cudaSupport = true; gpuTargets = [ … ]; }",
                             facts ? facts->dump() : a.probe_output.substr(0, 2000)};
  o.detail = "verify_failed: " + join(r.problems, "; ");
  run.outcome = std::move(o);
  return Event::failed;
}

Event Scheduler::publish_end(JobRun& run, int exit_code) {
  Attempt& a = *run.attempt;
  if ((run.outcome = cut_short(a, exit_code, clock_.rfc3339()))) return Event::failed;
  Outcome o{JobState::succeeded, {.finished_at = clock_.rfc3339(), .exit_code = exit_code}, "published"};
  if (exit_code == 0) {
    run.outcome = std::move(o);
    return Event::succeeded;
  }
  o.state = JobState::failed;
  Failure f = a.output.scanner().diagnose(exit_code).value_or(Failure{});
  f.failure_class = failure_class::kPublishFailed;
  // flox says why in its "✘ ERROR: …" line; prefer it to a generic first error.
  std::istringstream tail(a.output.scanner().tail());
  for (std::string line; std::getline(tail, line);)
    if (size_t at = line.find("ERROR: "); at != std::string::npos) {
      f.message = line.substr(at + 7);
      break;
    }
  if (f.hint.empty() || f.hint.starts_with("read the excerpt"))
    f.hint = "read the publish log (ptbuild log JOB)";
  o.detail = "publish failed: " + f.message;
  o.change.failure = std::move(f);
  run.outcome = std::move(o);
  return Event::failed;
}

// Whether a hash mismatch is not to be repaired (again) (docs/hash-repair.md); then `failure` says why.
bool Scheduler::repair_refused(const JobRun& run, Failure& failure) {
  const std::vector<HashMismatch>& mismatches = run.attempt->output.mismatches();
  auto refuse = [&](std::string why) {
    failure.message = std::move(why);
    return true;
  };
  if (mismatches.empty()) return refuse(failure.message + " (the log did not say which hashes)");
  for (const HashMismatch& m : mismatches)
    if (run.repaired.count(repair_key(m, m.specified)))
      return refuse("the hash of " + m.drv + " mismatched again after it was repaired (now " + m.got +
                    "): the source is not reproducible");
  if (run.hash_rounds >= config_.hashfix.max_rounds)
    return refuse("gave up after " + std::to_string(run.hash_rounds) +
                  " hash repair rounds (hashfix.max_rounds)");
  return false;
}

// The recipes are repaired on a thread of their own (git, nix show-derivation and the file writes
// take seconds on a large repo), one repair at a time: two jobs that meet the same wrong hash end
// with one patch, the second finding it repaired. The job stays running meanwhile.
void Scheduler::start_repair(JobRun& run) {
  repairs_.push_back(run.id);
  run_next_repair();
}

void Scheduler::run_next_repair() {
  while (!repair_thread_.joinable() && !repairs_.empty()) {
    JobRun* run = find_run(repairs_.front());
    repairs_.pop_front();
    if (!run || run->flow.stage != Stage::repairing) continue;
    run->repair_journal = repair_journal(config_.daemon.state_dir, run->id, run->hash_rounds + 1);
    HashfixOptions options{run->attempt->variant.repo_path,
                           nix_program(config_.backend),
                           config_.hashfix.commit,
                           run->repair_journal,
                           run->id,
                           run->attempt->job.variant};
    std::vector<HashMismatch> mismatches = run->attempt->output.mismatches();
    timers_->repair_work.emplace(io_.get_executor());  // io.run() waits for the answer
    repair_thread_ = std::thread([this, id = run->id, options, mismatches] {
      RepairResult r = repair_hashes(options, mismatches);
      asio::post(io_, [this, id, mismatches, r = std::move(r)]() mutable {
        repair_done(id, mismatches, std::move(r));
      });
    });
  }
}

void Scheduler::repair_done(int64_t job_id, const std::vector<HashMismatch>& mismatches, RepairResult r) {
  repair_thread_.join();
  timers_->repair_work.reset();
  if (JobRun* run = find_run(job_id); run && run->flow.stage == Stage::repairing) {
    Outcome& o = *run->outcome;  // the failed build's, decided once the repair has spoken
    bool repaired = r.outcome != RepairResult::Outcome::failed;
    if (!repaired) {
      o.change.failure->message = r.message;
      o.detail = std::string(failure_class::kHashMismatch) + ": " + r.message;
    } else {
      ++run->hash_rounds;
      for (const HashMismatch& m : mismatches) run->repaired.insert(repair_key(m, m.got));
      std::string what = r.message + "; building again (repair round " + std::to_string(run->hash_rounds) +
                         " of " + std::to_string(config_.hashfix.max_rounds) + ")";
      spdlog::info("job #{} {}: {}", job_id, run->attempt->job.variant, what);
      o = Outcome{JobState::queued, {.clear_outcome = true}, what, std::move(r.fixes)};
    }
    advance(*run, repaired ? Event::repaired : Event::repair_failed);
  }
  run_next_repair();
}

}  // namespace ptbuild
