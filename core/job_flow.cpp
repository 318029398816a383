#include "core/job_flow.h"

namespace ptbuild {

namespace {

Step to(Stage stage, StopReason stop, Action action) {
  return {{stage, stop}, action, true};
}
Step unexpected(JobFlow flow) {
  return {flow, Action::none, false};
}

// A stop request: the first reason is the one recorded. A process is signalled once; work that
// cannot be interrupted (reading the recipe, a repair) is waited for.
Step stop(JobFlow flow, StopReason reason) {
  if (flow.stop != StopReason::none) return to(flow.stage, flow.stop, Action::none);
  return to(flow.stage, reason, runs_process(flow.stage) ? Action::terminate : Action::none);
}

StopReason stop_reason(Event event) {
  switch (event) {
    case Event::cancel:
      return StopReason::cancel;
    case Event::timeout:
      return StopReason::timeout;
    case Event::shutdown:
      return StopReason::shutdown;
    default:
      return StopReason::none;
  }
}

bool is_end_of_process(Event event) {
  switch (event) {
    case Event::succeeded:
    case Event::failed:
    case Event::hash_mismatch:
    case Event::machine_fault:
    case Event::network_failure:
    case Event::probe_elsewhere:
      return true;
    default:
      return false;
  }
}

Step from_queued(JobFlow f, Event e) {
  switch (e) {
    case Event::start_build:
      return to(Stage::preparing, StopReason::none, Action::prepare);
    case Event::check_publish:
      return to(Stage::checking, StopReason::none, Action::check_publish);
    case Event::start_publish:
      return to(Stage::publishing, StopReason::none, Action::launch_publish);
    case Event::refused:
      return to(Stage::queued, f.stop, Action::fail_unstarted);
    case Event::cancel:
      return to(Stage::queued, StopReason::cancel, Action::cancel_queued);
    case Event::shutdown:  // it stays queued for the next start
      return to(Stage::queued, f.stop, Action::none);
    default:
      return unexpected(f);
  }
}

// A publish job's preconditions are looked at; the job is still queued in the store meanwhile.
Step from_checking(JobFlow f, Event e) {
  switch (e) {
    case Event::check_passed:  // the next dispatch starts it, unless something holds the queue
      return f.stop != StopReason::none ? to(Stage::queued, f.stop, Action::release)
                                        : to(Stage::queued, f.stop, Action::none);
    case Event::check_refused:
      return f.stop != StopReason::none ? to(Stage::queued, f.stop, Action::release)
                                        : to(Stage::queued, f.stop, Action::fail_unstarted);
    case Event::cancel:
      return to(Stage::checking, StopReason::cancel, Action::cancel_queued);
    case Event::shutdown:
      return to(Stage::checking, StopReason::shutdown, Action::none);
    default:
      return unexpected(f);
  }
}

Step from_preparing(JobFlow f, Event e) {
  // Stopped while the recipe was read: nothing was started, and the stop decides.
  if (f.stop != StopReason::none &&
      (e == Event::prepared || e == Event::nothing_to_fetch || e == Event::failed))
    return to(Stage::recording, f.stop, Action::record_stop);
  switch (e) {
    case Event::prepared:
      return to(Stage::sources, f.stop, Action::fetch_sources);
    case Event::nothing_to_fetch:
      return to(Stage::building, f.stop, Action::launch_build);
    case Event::failed:  // its log could not be opened, say: the job fails before anything ran
      return to(Stage::recording, f.stop, Action::record);
    default:
      return unexpected(f);
  }
}

// The end of a process that fetched sources or built: the build's verdict decides.
Step after_build_process(JobFlow f, Event e, FlowRules rules) {
  switch (e) {
    case Event::succeeded:
      if (f.stage == Stage::sources) return to(Stage::building, f.stop, Action::launch_build);
      return rules.verify ? to(Stage::verifying, f.stop, Action::launch_verify)
                          : to(Stage::recording, f.stop, Action::record);
    case Event::hash_mismatch:
      return to(Stage::repairing, f.stop, Action::start_repair);
    case Event::failed:
    case Event::machine_fault:    // the outcome puts the job back in the queue; the builder rests
    case Event::network_failure:  // the outcome puts it back in the queue with a back-off
      return to(Stage::recording, f.stop, Action::record);
    default:
      return unexpected(f);
  }
}

Step from_process(JobFlow f, Event e, FlowRules rules) {
  if (Event::cancel == e || Event::timeout == e || Event::shutdown == e) return stop(f, stop_reason(e));
  if (!is_end_of_process(e)) return unexpected(f);
  // However it ended, a process that was told to stop ends as the stop says.
  if (f.stop != StopReason::none) return to(Stage::recording, f.stop, Action::record_stop);
  switch (f.stage) {
    case Stage::sources:
    case Stage::building:
      return after_build_process(f, e, rules);
    case Stage::verifying:
      if (e == Event::probe_elsewhere) return to(Stage::verifying, f.stop, Action::verify_elsewhere);
      if (e == Event::succeeded || e == Event::failed) return to(Stage::recording, f.stop, Action::record);
      return unexpected(f);
    case Stage::publishing:
      if (e == Event::succeeded || e == Event::failed) return to(Stage::recording, f.stop, Action::record);
      return unexpected(f);
    default:
      return unexpected(f);
  }
}

Step from_repairing(JobFlow f, Event e) {
  switch (e) {
    case Event::repaired:       // recorded queued again, to build with the repaired recipe
    case Event::repair_failed:  // recorded failed: the hash cannot be repaired
      // Stopped meanwhile: the stop decides; what was repaired stays recorded.
      return to(Stage::recording, f.stop, f.stop != StopReason::none ? Action::record_stop : Action::record);
    case Event::cancel:
    case Event::shutdown:
      return stop(f, stop_reason(e));
    default:
      return unexpected(f);
  }
}

Step from_recording(JobFlow f, Event e) {
  switch (e) {
    case Event::recorded:
      return to(Stage::recording, f.stop, Action::release);
    case Event::recorded_queued:
      return to(Stage::queued, StopReason::none, Action::back_to_queue);
    case Event::record_failed:
      return to(Stage::recording, f.stop, Action::record_later);
    case Event::cancel:  // the outcome is decided; nothing is left to stop
    case Event::shutdown:
      return to(Stage::recording, f.stop, Action::none);
    default:
      return unexpected(f);
  }
}

}  // namespace

Step next(JobFlow f, Event e, FlowRules rules) {
  switch (f.stage) {
    case Stage::queued:
      return from_queued(f, e);
    case Stage::checking:
      return from_checking(f, e);
    case Stage::preparing:
      if (e == Event::cancel || e == Event::shutdown) return stop(f, stop_reason(e));
      return from_preparing(f, e);
    case Stage::sources:
    case Stage::building:
    case Stage::verifying:
    case Stage::publishing:
      return from_process(f, e, rules);
    case Stage::repairing:
      return from_repairing(f, e);
    case Stage::recording:
      return from_recording(f, e);
  }
  return unexpected(f);
}

bool in_attempt(Stage stage) {
  return stage != Stage::queued && stage != Stage::checking && stage != Stage::recording;
}

bool runs_process(Stage stage) {
  return stage == Stage::sources || stage == Stage::building || stage == Stage::verifying ||
         stage == Stage::publishing;
}

std::string_view to_string(Stage stage) {
  constexpr std::string_view kNames[] = {"queued",    "checking",  "preparing",  "sources",  "building",
                                         "verifying", "repairing", "publishing", "recording"};
  return kNames[static_cast<size_t>(stage)];
}

std::string_view to_string(Event event) {
  constexpr std::string_view kNames[] = {
      "start_build",     "check_publish", "start_publish",    "refused",         "check_passed",
      "check_refused",   "prepared",      "nothing_to_fetch", "succeeded",       "failed",
      "hash_mismatch",   "machine_fault", "network_failure",  "probe_elsewhere", "repaired",
      "repair_failed",   "cancel",        "timeout",          "shutdown",        "recorded",
      "recorded_queued", "record_failed"};
  return kNames[static_cast<size_t>(event)];
}

std::string_view to_string(Action action) {
  constexpr std::string_view kNames[] = {
      "none",         "check_publish", "fail_unstarted",   "cancel_queued", "prepare",        "fetch_sources",
      "launch_build", "launch_verify", "verify_elsewhere", "start_repair",  "launch_publish", "terminate",
      "record",       "record_stop",   "record_later",     "release",       "back_to_queue"};
  return kNames[static_cast<size_t>(action)];
}

}  // namespace ptbuild
