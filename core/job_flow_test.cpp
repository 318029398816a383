#include "core/job_flow.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

using namespace ptbuild;

namespace {

using S = Stage;
using E = Event;
using A = Action;
using R = StopReason;

struct Row {
  JobFlow from;
  Event event;
  JobFlow to;
  Action action;
};

// Every transition that can happen, with verification on. Any (stage, stop, event) not listed
// here must be refused as unexpected, leaving the job as it was.
const Row kTable[] = {
    // queued
    {{S::queued}, E::start_build, {S::preparing}, A::prepare},
    {{S::queued}, E::check_publish, {S::checking}, A::check_publish},
    {{S::queued}, E::start_publish, {S::publishing}, A::launch_publish},
    {{S::queued}, E::refused, {S::queued}, A::fail_unstarted},
    {{S::queued}, E::cancel, {S::queued, R::cancel}, A::cancel_queued},
    {{S::queued}, E::shutdown, {S::queued}, A::none},
    // checking (a publish job, still queued in the store)
    {{S::checking}, E::check_passed, {S::queued}, A::none},
    {{S::checking}, E::check_refused, {S::queued}, A::fail_unstarted},
    {{S::checking}, E::cancel, {S::checking, R::cancel}, A::cancel_queued},
    {{S::checking}, E::shutdown, {S::checking, R::shutdown}, A::none},
    {{S::checking, R::cancel}, E::check_passed, {S::queued, R::cancel}, A::release},
    {{S::checking, R::cancel}, E::check_refused, {S::queued, R::cancel}, A::release},
    {{S::checking, R::shutdown}, E::check_passed, {S::queued, R::shutdown}, A::release},
    {{S::checking, R::shutdown}, E::check_refused, {S::queued, R::shutdown}, A::release},
    {{S::checking, R::cancel}, E::cancel, {S::checking, R::cancel}, A::cancel_queued},
    {{S::checking, R::cancel}, E::shutdown, {S::checking, R::shutdown}, A::none},
    {{S::checking, R::shutdown}, E::cancel, {S::checking, R::cancel}, A::cancel_queued},
    {{S::checking, R::shutdown}, E::shutdown, {S::checking, R::shutdown}, A::none},
    // preparing: the recipe is read off the loop; nothing to signal while it is
    {{S::preparing}, E::prepared, {S::sources}, A::fetch_sources},
    {{S::preparing}, E::nothing_to_fetch, {S::building}, A::launch_build},
    {{S::preparing}, E::failed, {S::recording}, A::record},
    {{S::preparing}, E::cancel, {S::preparing, R::cancel}, A::none},
    {{S::preparing}, E::shutdown, {S::preparing, R::shutdown}, A::none},
    // sources
    {{S::sources}, E::succeeded, {S::building}, A::launch_build},
    {{S::sources}, E::failed, {S::recording}, A::record},
    {{S::sources}, E::hash_mismatch, {S::repairing}, A::start_repair},
    {{S::sources}, E::machine_fault, {S::recording}, A::record},
    {{S::sources}, E::network_failure, {S::recording}, A::record},
    // building
    {{S::building}, E::succeeded, {S::verifying}, A::launch_verify},
    {{S::building}, E::failed, {S::recording}, A::record},
    {{S::building}, E::hash_mismatch, {S::repairing}, A::start_repair},
    {{S::building}, E::machine_fault, {S::recording}, A::record},
    {{S::building}, E::network_failure, {S::recording}, A::record},
    // verifying
    {{S::verifying}, E::succeeded, {S::recording}, A::record},
    {{S::verifying}, E::failed, {S::recording}, A::record},
    {{S::verifying}, E::probe_elsewhere, {S::verifying}, A::verify_elsewhere},
    // publishing
    {{S::publishing}, E::succeeded, {S::recording}, A::record},
    {{S::publishing}, E::failed, {S::recording}, A::record},
    // repairing: the repair thread cannot be interrupted; a stop waits for it
    {{S::repairing}, E::repaired, {S::recording}, A::record},
    {{S::repairing}, E::repair_failed, {S::recording}, A::record},
    {{S::repairing}, E::cancel, {S::repairing, R::cancel}, A::none},
    {{S::repairing}, E::shutdown, {S::repairing, R::shutdown}, A::none},
    // recording: the outcome is decided
    {{S::recording}, E::recorded, {S::recording}, A::release},
    {{S::recording}, E::recorded_queued, {S::queued}, A::back_to_queue},
    {{S::recording}, E::record_failed, {S::recording}, A::record_later},
    {{S::recording}, E::cancel, {S::recording}, A::none},
    {{S::recording}, E::shutdown, {S::recording}, A::none},
};

bool is_stop(Event e) {
  return e == E::cancel || e == E::timeout || e == E::shutdown;
}
StopReason reason_of(Event e) {
  return e == E::cancel ? R::cancel : e == E::timeout ? R::timeout : R::shutdown;
}
bool ends_process(Event e) {
  return e == E::succeeded || e == E::failed || e == E::hash_mismatch || e == E::machine_fault ||
         e == E::network_failure || e == E::probe_elsewhere;
}

// What a stop looks like in the stages that run a process, derived from the rule rather than
// listed: the first stop signals the process group, later ones change nothing, and whatever way
// the process then ends, the stop's outcome is recorded.
std::map<std::tuple<S, R, E>, std::pair<JobFlow, Action>> expected_transitions() {
  std::map<std::tuple<S, R, E>, std::pair<JobFlow, Action>> out;
  for (const Row& r : kTable) out[{r.from.stage, r.from.stop, r.event}] = {r.to, r.action};
  for (S stage : {S::sources, S::building, S::verifying, S::publishing})
    for (E e : kAllEvents) {
      if (is_stop(e)) out[{stage, R::none, e}] = {{stage, reason_of(e)}, A::terminate};
      for (R stopped : {R::cancel, R::timeout, R::shutdown}) {
        if (is_stop(e)) out[{stage, stopped, e}] = {{stage, stopped}, A::none};
        if (ends_process(e)) out[{stage, stopped, e}] = {{S::recording, stopped}, A::record_stop};
      }
    }
  for (R stopped : {R::cancel, R::shutdown}) {
    for (E e : {E::prepared, E::nothing_to_fetch, E::failed})
      out[{S::preparing, stopped, e}] = {{S::recording, stopped}, A::record_stop};
    for (E e : {E::repaired, E::repair_failed})
      out[{S::repairing, stopped, e}] = {{S::recording, stopped}, A::record_stop};
    for (S stage : {S::preparing, S::repairing})
      for (E e : {E::cancel, E::shutdown}) out[{stage, stopped, e}] = {{stage, stopped}, A::none};
  }
  for (R stopped : {R::cancel, R::timeout, R::shutdown}) {
    for (E e : {E::recorded, E::record_failed, E::cancel, E::shutdown})
      out[{S::recording, stopped, e}] = {{S::recording, stopped},
                                         e == E::recorded        ? A::release
                                         : e == E::record_failed ? A::record_later
                                                                 : A::none};
    out[{S::recording, stopped, E::recorded_queued}] = {{S::queued}, A::back_to_queue};
  }
  return out;
}

// The stop reasons a job can carry in each stage: a timeout is armed only while a process runs,
// and a stopped process ends the attempt at once.
std::vector<R> reachable_stops(S stage) {
  switch (stage) {
    case S::queued:
      return {R::none};
    case S::checking:
    case S::preparing:
    case S::repairing:
      return {R::none, R::cancel, R::shutdown};
    default:
      return {R::none, R::cancel, R::timeout, R::shutdown};
  }
}

std::string name(JobFlow f) {
  const char* stops[] = {"", "+cancel", "+timeout", "+shutdown"};
  return std::string(to_string(f.stage)) + stops[static_cast<int>(f.stop)];
}

}  // namespace

TEST_CASE("job flow: every stage x stop x event is either the transition the table gives or refused") {
  auto expected = expected_transitions();
  int transitions = 0;
  for (S stage : kAllStages)
    for (R stop : reachable_stops(stage))
      for (E e : kAllEvents) {
        JobFlow from{stage, stop};
        Step step = next(from, e, {.verify = true});
        CAPTURE(name(from));
        CAPTURE(to_string(e));
        auto it = expected.find({stage, stop, e});
        if (it == expected.end()) {
          CHECK_FALSE(step.expected);
          CHECK(step.flow == from);
          CHECK(step.action == A::none);
        } else {
          ++transitions;
          CHECK(step.expected);
          CHECK(name(step.flow) == name(it->second.first));
          CHECK(to_string(step.action) == to_string(it->second.second));
        }
      }
  CHECK(transitions > 100);
}

TEST_CASE("job flow: with verification off a successful build is recorded at once") {
  Step s = next({S::building}, E::succeeded, {.verify = false});
  CHECK(s.flow == JobFlow{S::recording});
  CHECK(s.action == A::record);
  // The sources step is not the build: the build still follows.
  CHECK(next({S::sources}, E::succeeded, {.verify = false}).action == A::launch_build);
}

TEST_CASE("job flow: the first reason to stop is the one recorded") {
  JobFlow f{S::building};
  Step timed_out = next(f, E::timeout, {});
  CHECK(timed_out.action == A::terminate);
  Step cancelled = next(timed_out.flow, E::cancel, {});
  CHECK(cancelled.flow.stop == R::timeout);
  CHECK(cancelled.action == A::none);  // signalled once
  Step ended = next(cancelled.flow, E::succeeded, {});
  CHECK(ended.flow == JobFlow{S::recording, R::timeout});
  CHECK(ended.action == A::record_stop);
}

TEST_CASE("job flow: a build from queue to store, and a repair that puts it back in the queue") {
  FlowRules rules{.verify = true};
  JobFlow f{};
  std::string path;
  for (E e : {E::start_build, E::prepared, E::succeeded, E::hash_mismatch, E::repaired, E::recorded_queued,
              E::start_build, E::nothing_to_fetch, E::succeeded, E::succeeded, E::recorded}) {
    Step s = next(f, e, rules);
    REQUIRE(s.expected);
    path += std::string(to_string(s.action)) + " ";
    f = s.flow;
  }
  CHECK(path ==
        "prepare fetch_sources launch_build start_repair record back_to_queue "
        "prepare launch_build launch_verify record release ");
}

TEST_CASE("job flow: a builder lost mid-build or mid-probe never ends the job as the recipe's") {
  CHECK(next({S::building}, E::machine_fault, {}).action == A::record);  // its outcome: queued again
  Step probe = next({S::verifying}, E::probe_elsewhere, {});
  CHECK(probe.flow == JobFlow{S::verifying});
  CHECK(probe.action == A::verify_elsewhere);
}

TEST_CASE("job flow: a store that refuses the outcome is asked again until it takes it") {
  JobFlow f{S::recording, R::shutdown};
  for (int i = 0; i < 3; ++i) {
    Step s = next(f, E::record_failed, {});
    CHECK(s.action == A::record_later);
    CHECK(s.flow == f);
  }
  CHECK(next(f, E::recorded_queued, {}).flow == JobFlow{S::queued});
}
