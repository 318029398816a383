// The builders a matrix is spread over (docs/fleet.md), and which of them gets a build. Pure: the
// scheduler owns the clock, the health and the running counts, and asks.
//
// ptbuild invents no distributed system: a remote build is Nix's own (`--builders '<line>'
// --max-jobs 0`), with the machine ptbuild chose as Nix's only builder.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/resources.h"

namespace ptbuild {

struct BuilderSpec {
  std::string name;           // shown in status; default: the host part of uri
  std::string uri = "local";  // ssh://, ssh-ng://, or "local" (this machine)
  std::vector<std::string> systems{"x86_64-linux"};
  std::string ssh_key;
  int max_jobs = 1;  // slots
  double speed_factor = 1.0;
  std::vector<std::string> supported_features;
  std::vector<std::string> mandatory_features;
  std::string public_host_key;  // base64, as in Nix's machines file
  BuilderLimits limits;         // memory, cores, min_free, reserve (docs/resources.md)
  // `local` with no features declared takes whatever Nix's own system-features allow here.
  bool features_declared = false;
  int line = 0;  // where it was declared (config or machines file), for messages

  bool is_local() const { return uri == "local"; }
  // The machine as one line of Nix's machines format. Its slots stay its own: Nix counts a
  // machine's builds across all its processes (/nix/var/nix/current-load), so a line of one slot
  // would make ptbuild's second build there wait for the first.
  std::string machines_line() const;
  // The machine as a Nix store URI with its key and host key (for `nix store ping`, `nix copy`).
  std::string store_uri() const;
};

// "ssh-ng://builder@gpu1:2222" -> "gpu1"; "local" -> "local".
std::string host_of(std::string_view uri);

// Nix's machines file (man nix.conf, `builders`): one machine a line, 8 fields separated by
// blanks — uri, systems, ssh key, max jobs, speed factor, supported features, mandatory
// features, base64 host key — later fields optional, `-` for a field's default, lists
// comma-separated, `#` starts a comment. An error names the line and the field.
using MachinesResult = std::variant<std::vector<BuilderSpec>, std::string>;
MachinesResult parse_machines(std::string_view text, const std::string& source);

// Checks a fleet as a whole (names unique, at least one slot); "" when fine.
std::string fleet_problem(const std::vector<BuilderSpec>& fleet);

// What a build needs of a machine.
struct BuildNeeds {
  std::string system;                 // "x86_64-linux"
  std::vector<std::string> features;  // the derivation's requiredSystemFeatures
};

// The features a recipe's text declares (`requiredSystemFeatures = [ "big-parallel" ];`), for a
// recipe that does not evaluate alone (flox's callPackage style); every such list in the file.
std::vector<std::string> declared_features(std::string_view recipe_text);

// The platform a variant builds for (docs/fleet.md): from its ISA; "" when the name does not say.
std::string platform_of(const std::optional<std::string>& axes_platform);

// Whether `b` may ever take a build with these needs: its systems have the platform, its
// supported (or mandatory) features cover the required ones, and every mandatory feature of it
// is required.
bool can_build(const BuilderSpec& b, const BuildNeeds& needs);

// A builder as the scheduler sees it at one dispatch.
struct BuilderState {
  const BuilderSpec* spec = nullptr;
  int running = 0;
  bool up = true;  // not down, not disabled, not being checked
  // Seconds from now until each build running there is expected to end, where known (its
  // learned length on this machine's speed); with fewer than `running`, the rest are unknown.
  std::vector<double> ends;
};

struct Placement {
  std::optional<size_t> chosen;  // index into the builders given
  int fitting = 0;               // builders that can take it at all, up or not
  int fitting_up = 0;            // of those, the ones up now
  int with_slot = 0;             // of those, the ones with a free slot
  std::string short_of;          // why the first of those has no room for it ("memory: …")
  // Not placed because it ends first on a builder whose slot frees soon (place_by_finish):
  // that builder, and in how many seconds the slot frees.
  std::optional<size_t> waits_for;
  double slot_in = 0;
  // It waits there because the queue's plan puts it there, later (place_by_plan): the plan keeps
  // that slot for it, nothing else holds it.
  bool planned = false;
};

// Why builder i has no room for this build ("" when it has); asked only of builders that are up
// and have a free slot.
using RoomCheck = std::function<std::string(size_t builder)>;

// Among the builders that can take it, are up, have a free slot and room: Hydra's rule — the
// fewest running builds divided by the speed factor, then the higher speed factor, then the
// order given.
Placement place(const BuildNeeds& needs, const std::vector<BuilderState>& builders,
                const RoomCheck& room = {});

// Where a build of `seconds` (its learned length at speed 1) ends first: on a builder with a
// free slot (and room) it ends at seconds / speed; on a full one, when its first build is
// expected to end, plus that. When a full, faster machine ends it clearly first (by a tenth of
// its length at least: the figures are estimates), it waits for that one (`waits_for`);
// otherwise place()'s choice among the free ones stands. Unknown length (≤ 0): place().
// The last long builds of a fleet's queue go where they end first, not on the slow machine
// that happens to be free (docs/fleet.md).
Placement place_by_finish(const BuildNeeds& needs, const std::vector<BuilderState>& builders, double seconds,
                          const RoomCheck& room = {});

// The queue planned onto the slots of the builders that are up (docs/fleet.md): the last plan's
// builds on their builders again, the others each in the order given (the dispatch's) to the slot
// where it ends first; then builds moved or swapped between slots while that ends the slot that
// ends last sooner (at most `max_steps` moves). A slot runs its builds in the order given. One
// build at a time, the last long builds of a big queue land on slow machines while fast ones
// idle; planned together they end within a few percent of the bound (docs/BENCHMARKS.md). For
// each build, the builder it is planned on and when it starts there; none where no builder up can
// take it. Meaningful only where every length is known (`seconds` > 0, the running builds' ends):
// otherwise an empty plan.
struct PlannedBuild {
  BuildNeeds needs;
  double seconds = 0;                // at speed 1
  std::optional<size_t> planned_on;  // the builder the last plan put it on: it is planned there again,
  double planned_in = 0;             // in the order of when it was to start there (seconds from now)
};
struct PlanSpot {
  size_t builder;
  double starts_in;  // seconds from now
};
std::vector<std::optional<PlanSpot>> plan_slots(const std::vector<PlannedBuild>& builds,
                                                const std::vector<BuilderState>& builders,
                                                int max_steps = 10000, double* ends_in = nullptr);

// Where and when a dispatch's plan starts a build, kept for the next plan to start from.
struct PlannedStart {
  std::string builder;
  std::chrono::steady_clock::time_point at;
  bool operator==(const PlannedStart&) const = default;
};

// Where the plan (plan_slots) starts the build now, on a builder with a free slot and room for it:
// there. Where it starts later, it waits for that builder. With no room there, place_by_finish().
Placement place_by_plan(const BuildNeeds& needs, const std::vector<BuilderState>& builders, double seconds,
                        std::optional<PlanSpot> planned, const RoomCheck& room = {});

// A build that waits for builder `b`'s next slot holds it: that slot's end moves past the
// build's own, and the builder counts one more build.
void hold_next_slot(BuilderState& b, double seconds);

// When the first build running on b is expected to end, in seconds from now; none where one's
// length is not known, or none runs.
std::optional<double> first_end(const BuilderState& b);

// Builders kept, at one dispatch, for builds that wait there for cores or memory, so that the
// builds after them in the queue do not take those as they free: a big build is not starved by
// the small ones behind it (measured: bench/memory_sim.cpp). Those may still start there where
// they end before the first build running there does — nothing frees before then, so they delay
// nothing (the backfilling of batch schedulers).
class KeptBuilders {
 public:
  struct Kept {
    int64_t job = 0;   // the build it is kept for
    size_t after = 0;  // that build's place in the dispatch order: only the builds after it are kept out
    double until = 0;  // seconds from now until the first build running there ends
  };
  explicit KeptBuilders(size_t builders) : kept_(builders) {}
  // Keeps a builder for `job`, at `position` in the dispatch order, that `fits` (by builder) say
  // waits for cores or memory: of those not kept already and whose first end is known, the one
  // with the most free cores, then the most free memory. Which one, if any.
  std::optional<size_t> keep(int64_t job, size_t position, const std::vector<Fit>& fits,
                             const std::vector<BuilderRoom>& rooms, const std::vector<BuilderState>& states);
  // What keeps the build at `position`, which would run `seconds` on builder i, from starting
  // there: the build it is kept for, ahead of it, where it would not end before the first build
  // there does (a length not known may be any); none when it may start.
  const Kept* keeps_out(size_t i, size_t position, double seconds) const;

 private:
  std::vector<std::optional<Kept>> kept_;
};

// Why a build is not placed, in docs/fleet.md's words.
std::string describe_unplaced(const BuildNeeds& needs, const Placement& p);

}  // namespace ptbuild
