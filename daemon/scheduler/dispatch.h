// Which queued jobs start now, where, and why the others wait: one pure decision over a snapshot
// that the scheduler reads once (the store's queue, the catalog, the fleet, the clock). No I/O,
// clock or file read happens inside decide_dispatch(); the scheduler carries the decision out.
//
// The dispatch order, written down once (docs/jobs.md, docs/fleet.md):
//   - nothing starts while the queue is held (stopping, paused, draining);
//   - a publish job takes no builder: it starts once its variant has a build to publish (and,
//     with flox, once git says flox publish would take the repo);
//   - a build whose recipe is gone fails; one whose repo is not there waits for it;
//   - a build backing off after a network failure waits until its time;
//   - the others go in plan_dispatch's order (priority, `after`, longest-first or fifo), each to
//     the builder placement chooses among those that fit, are up, have a free slot and room for
//     its expected memory and disk (docs/resources.md), with the cores that keep the set in
//     memory; a build that does not fit waits, and a smaller one behind it may go;
//   - with several builders and every length known, the queue is planned onto them first
//     (plan_slots, from the last dispatch's plan) and a build goes where and when the plan puts
//     it: there when its slot is free and it has room, else it waits for that builder.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/fleet.h"
#include "core/job.h"
#include "daemon/store/store.h"

namespace ptbuild {

// A running build as dispatch's horizon and placement see it: how long it should still take
// (nullopt: its length is not known), on how many cores.
struct RunningLeft {
  std::optional<double> seconds_left;
  int cores = 0;
};

struct DispatchSnapshot {
  std::string held;  // why nothing may start ("" when nothing holds the queue)
  std::vector<Job> queued;
  std::map<std::string, VariantRecord> variants;  // present in the catalog, by name
  struct Repo {
    std::string path;
    std::string after;     // the repo whose same-axes build goes first ("" none)
    bool missing = false;  // its recipe folder could not be read at the last scan
  };
  std::map<std::string, Repo> repos;  // by name
  Store::Durations durations;
  bool longest_first = true;
  // What the scheduler remembers of queued jobs.
  struct Backoff {
    std::chrono::steady_clock::time_point not_before;
    int network_retries = 0;
  };
  std::map<int64_t, Backoff> backoffs;
  std::set<int64_t> publish_checked;   // flox's preconditions were found fine
  std::set<int64_t> publish_checking;  // … are being looked at
  bool publish_needs_check = false;    // the flox backend: git is asked before a publish starts
  // A queued publish job's variant -> the output its latest build left ("" when none).
  std::map<std::string, std::string> publishable;
  // (repo, axes key) of the builds that run now, with their job ids.
  std::map<std::pair<std::string, std::string>, int64_t> running;
  // (repo, axes key) -> the latest build of that variant, for the variants that others wait for
  // through `after`; read only where it matters.
  struct Upstream {
    std::string variant;
    int64_t job = 0;
    JobState state = JobState::queued;
  };
  std::map<std::pair<std::string, std::string>, Upstream> upstream;
  // The fleet, in config order.
  struct Builder {
    const BuilderSpec* spec = nullptr;
    int running = 0;
    bool up = true;
    std::string state;                // "up", "disabled", "down until T: why"
    BuilderRoom room;                 // memory, disk and cores left (room.known false: slots only)
    std::vector<RunningLeft> builds;  // its running builds
  };
  std::vector<Builder> builders;
  // What each variant's derivation needs of a machine, where known. When no builder can be told
  // apart from another (one local machine, no declared features), the name says enough.
  std::map<std::string, BuildNeeds> needs;
  bool features_matter = false;
  // What each queued build's variant is expected to take (docs/resources.md), and the jobs
  // that run alone after an OOM kill.
  std::map<std::string, Expectation> expected;
  std::set<int64_t> alone;
  std::map<int64_t, int> max_cores;                // resources.oom_retry = "half-cores": half of what it had
  std::map<int64_t, PlannedStart> planned_before;  // the last dispatch's plan
  std::chrono::steady_clock::time_point now;
  std::chrono::system_clock::time_point wall;  // the same instant, for the times people read
};

struct DispatchDecision {
  struct Start {
    int64_t job;
    size_t builder;             // index into the snapshot's builders
    int cores = 0;              // Nix's `cores` for it (NIX_BUILD_CORES)
    uint64_t memory_limit = 0;  // the most it may use where ptbuild runs it (0: no limit)
    Expectation expected;
  };
  std::vector<Start> builds;
  std::vector<int64_t> publishes;                    // start now
  std::vector<int64_t> publish_checks;               // ask git first
  std::vector<std::pair<int64_t, Failure>> refused;  // fail without running
  std::vector<std::string> read_needs;               // variants whose derivation must be read before placing
  std::map<int64_t, std::string> waiting;            // every queued job that does not start: why
  // The queue planned onto the fleet's slots (plan_slots, docs/fleet.md), kept for the next
  // dispatch's plan to start from. Empty when not planned.
  std::map<int64_t, PlannedStart> planned;
  std::optional<std::chrono::steady_clock::time_point> wake_at;  // the first back-off that ends
};

DispatchDecision decide_dispatch(const DispatchSnapshot& snapshot);

}  // namespace ptbuild
