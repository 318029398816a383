// What happens to a job the daemon holds, from the moment it is queued until its outcome is in the
// store: its stages as one enum, and every transition as one pure function, next(). The
// scheduler (daemon/scheduler) feeds it events and carries out the action it returns; what the
// outcome says (the failure, the verification facts) is computed beside it, not here.
//
// A build job, when nothing goes wrong:
//   queued --start_build--> preparing (its recipe read, its sources listed, off the loop)
//     --prepared--> sources (its fixed-output inputs realised: a wrong hash is met in seconds)
//     --succeeded--> building --succeeded--> verifying (when [verify] is on)
//     --succeeded--> recording --recorded--> gone (the store has the outcome; listeners told)
// A build that fails on a wrong hash goes building --hash_mismatch--> repairing --repaired-->
// recording (queued again, with the repair); a machine's fault or a network failure records the
// job queued again; cancel, timeout and shutdown stop whatever runs and record that instead.
// docs/jobs.md says the same from outside.
#pragma once

#include <cstdint>
#include <string_view>

namespace ptbuild {

enum class Stage : uint8_t {
  queued,      // waiting to start: the scheduler remembers why, and its back-off
  checking,    // a publish job: whether flox publish would take the repo (git, off the loop)
  preparing,   // a build: its recipe read (sha, fingerprint) and its sources listed, off the loop
  sources,     // realising its fixed-output sources before the long build
  building,    // the build itself
  verifying,   // the probe checks the artifact against the variant's name
  repairing,   // a wrong fixed-output hash is being repaired in the recipes
  publishing,  // flox publish / nix copy
  recording,   // the outcome is known; the store has not taken it yet
};
inline constexpr Stage kAllStages[] = {Stage::queued,    Stage::checking,   Stage::preparing,
                                       Stage::sources,   Stage::building,   Stage::verifying,
                                       Stage::repairing, Stage::publishing, Stage::recording};

// Why a job is being stopped; the first reason is the one recorded.
enum class StopReason : uint8_t { none, cancel, timeout, shutdown };

enum class Event : uint8_t {
  start_build,    // dispatch placed a queued build on a builder
  check_publish,  // dispatch takes a queued publish job whose preconditions need a look
  start_publish,  // dispatch starts a queued publish job
  refused,        // dispatch finds it cannot run at all (its recipe gone, nothing to publish)
  check_passed,
  check_refused,
  prepared,          // the recipe is read and there are sources to realise
  nothing_to_fetch,  // … and there are none (or the step is off): build at once
  succeeded,         // the stage's process did what it should (exit 0, a result)
  failed,            // it failed, and that is the job's outcome
  hash_mismatch,     // it failed on a wrong fixed-output hash that may be repaired
  machine_fault,     // the machine's fault, not the recipe's (nix_setup, disk full, unreachable)
  network_failure,   // a download failed and retries are left
  probe_elsewhere,   // verifying on a GPU builder that could not take the artifact: try another
  repaired,
  repair_failed,
  cancel,
  timeout,
  shutdown,
  recorded,         // the store took an outcome that ends the job
  recorded_queued,  // the store took an outcome that puts it back in the queue (a retry, a repair)
  record_failed,
};
inline constexpr Event kAllEvents[] = {
    Event::start_build,     Event::check_publish,   Event::start_publish, Event::refused,
    Event::check_passed,    Event::check_refused,   Event::prepared,      Event::nothing_to_fetch,
    Event::succeeded,       Event::failed,          Event::hash_mismatch, Event::machine_fault,
    Event::network_failure, Event::probe_elsewhere, Event::repaired,      Event::repair_failed,
    Event::cancel,          Event::timeout,         Event::shutdown,      Event::recorded,
    Event::recorded_queued, Event::record_failed};

enum class Action : uint8_t {
  none,            // nothing to do now: what runs goes on
  check_publish,   // ask git (off the loop) whether flox publish would take the repo
  fail_unstarted,  // a queued job fails without running (a publish that would be refused)
  cancel_queued,   // a queued job is cancelled before it started
  prepare,         // read the recipe and list its sources, off the loop
  fetch_sources,   // realise the listed sources
  launch_build,
  launch_verify,
  verify_elsewhere,  // the GPU builder rests; the probe runs on another builder or here
  start_repair,
  launch_publish,
  terminate,      // SIGTERM to the process group, SIGKILL after kill_grace
  record,         // write the outcome the stage computed
  record_stop,    // write the outcome the stop reason gives (cancelled, timeout, requeued)
  record_later,   // the store refused it: write it again in a few seconds
  release,        // the job has ended (or will not start): forget it, tell the listeners
  back_to_queue,  // it waits in the queue again; what it learnt (retries, repairs) stays
};

// A job as the transition function sees it.
struct JobFlow {
  Stage stage = Stage::queued;
  StopReason stop = StopReason::none;
  bool operator==(const JobFlow&) const = default;
};

struct FlowRules {
  bool verify = true;  // [verify] enabled: a successful build is checked before it counts
};

struct Step {
  JobFlow flow;   // the job afterwards
  Action action;  // what the scheduler does now
  bool expected;  // false: the event cannot happen in this stage; flow unchanged, nothing done
};

Step next(JobFlow flow, Event event, FlowRules rules);

// An attempt is under way: the job is `running` in the store and holds its builder's slot (from
// preparing until its outcome is known).
bool in_attempt(Stage stage);
// A process of the job's own may be running: the stages that a stop has to signal.
bool runs_process(Stage stage);

std::string_view to_string(Stage stage);
std::string_view to_string(Event event);
std::string_view to_string(Action action);

}  // namespace ptbuild
