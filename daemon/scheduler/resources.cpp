// The scheduler's view of memory, cores and disk (docs/resources.md): each builder's facts, read
// again every few seconds (this machine off the loop, a remote one over its ssh), what the builds
// there hold, and the newest build stopped when the machine's memory pressure passes
// resources.pressure_stop.
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/gc_policy.h"
#include "core/text.h"
#include "daemon/resources/cgroup.h"
#include "daemon/resources/gc.h"
#include "daemon/runner/async_command.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/dispatch.h"
#include "daemon/scheduler/job_run.h"

namespace ptbuild {

namespace {
// This machine's facts are a few file reads; a remote one's an ssh round trip.
constexpr auto kLocalFactsEvery = std::chrono::seconds(5);
constexpr auto kRemoteFactsEvery = std::chrono::seconds(30);
constexpr auto kFactsTimeout = std::chrono::seconds(60);
// A builder below min_free is collected at most this often: a store full of what the policy
// keeps would otherwise be walked by Nix's GC at every reading of its facts.
constexpr auto kAutoGcEvery = std::chrono::minutes(10);
constexpr auto kRemoteGcTimeout = std::chrono::hours(2);
// A build's directory is walked again after this many times what its last walk cost: the
// walks take at most a fiftieth of one core, however many files a build makes.
constexpr double kWalkPacing = 50;

// What one look at this machine read: its facts, and its builds' memory and directories.
struct LocalReading {
  std::optional<MachineFacts> facts;
  std::map<int64_t, BuildReading> builds;
};
}  // namespace

ResourceUse measured_use(const Attempt& a, const std::optional<BuildCgroups::Usage>& usage,
                         const std::string& measured_by, std::optional<uint64_t> output_size,
                         std::chrono::steady_clock::time_point now) {
  ResourceUse u;
  u.wall_seconds = a.build_started == std::chrono::steady_clock::time_point{}
                       ? 0
                       : std::chrono::duration<double>(now - a.build_started).count();
  u.cores = a.cores;
  u.output_size = output_size;
  u.oom_killed = a.stopped_for_memory;
  if (usage) {
    u.peak_memory = usage->peak_memory;
    u.cpu_seconds = usage->cpu_seconds;
    u.oom_killed = u.oom_killed || usage->oom_killed;
  }
  u.measured_by = usage && usage->peak_memory ? measured_by : "wall-clock only (" + measured_by + ")";
  u.build_dir_peak = a.build_dir_peak;
  if (u.build_dir_peak) u.measured_by += "; build dir sampled";
  return u;
}

std::vector<RunningUse> Scheduler::running_uses(const FleetBuilder& b) const {
  std::vector<RunningUse> uses;
  for (const auto& [id, run] : jobs_)
    if (const Attempt* a = run->attempt.get(); a && a->builder == b.spec.name && in_attempt(run->flow.stage))
      uses.push_back({memory_at(a->expected, a->cores), a->current_memory, a->cores});
  return uses;
}

void Scheduler::collect_if_below_min_free(FleetBuilder& b) {
  if (!b.facts) return;
  if (BuilderRoom room = room_of(*b.facts, b.spec.limits, {}); room.below_min_free)
    collect_garbage_on(
        b, human_size(room.free_space) + " free, below its min_free of " + human_size(room.min_free), false);
}

void Scheduler::collect_garbage_on(FleetBuilder& b, const std::string& why, bool urgent) {
  auto now = clock_.steady();
  if (!config_.gc.auto_collect || b.collecting ||
      (!urgent && b.collected_at != std::chrono::steady_clock::time_point{} &&
       now - b.collected_at < kAutoGcEvery))
    return;
  b.collecting = true;
  spdlog::info("builder {}: {}: collecting garbage (gc.auto, at most {})", b.spec.name, why,
               human_size(config_.gc.max_free));
  auto done = [this, name = b.spec.name](std::optional<uint64_t> freed, const std::string& error) {
    FleetBuilder* same = builder_named(name);
    if (!same) return;
    same->collecting = false;
    same->collected_at = clock_.steady();
    same->facts_at = {};  // read its free space again now
    if (freed) {
      spdlog::info("builder {}: gc freed {}", name, human_size(*freed));
    } else {
      spdlog::warn("builder {}: gc failed: {}", name, error);
    }
    poke();
  };
  if (b.spec.is_local()) {
    off_loop_->run(
        [nix_store = nix_store_program(nix_program(config_.backend)), roots = config_.roots_dir(),
         plan = plan_gc(store_.gc_candidates(), config_.gc.keep_good), max_free = config_.gc.max_free] {
          return try_collect_garbage(nix_store, roots, plan, max_free, false);
        },
        [done](GcOutcome d) {
          done(d.reply ? std::optional<uint64_t>(d.reply->freed_bytes) : std::nullopt, d.error);
        });
    return;
  }
  machine_checks_.run(
      remote_gc_command(b.spec, config_.gc.max_free), kRemoteGcTimeout, [done](AsyncResult r) {
        std::optional<GcSummary> summary = r.exit_code == 0 ? parse_gc_summary(r.output) : std::nullopt;
        if (summary) count_freed(summary->bytes);  // collect_garbage counts this machine's itself
        done(r.exit_code == 0 ? std::optional<uint64_t>(summary ? summary->bytes : 0) : std::nullopt,
             "ssh exited " + std::to_string(r.exit_code) + ": " + std::string(trim(r.output)).substr(0, 200));
      });
}

std::vector<RunningLeft> Scheduler::running_left(const FleetBuilder& b,
                                                 std::chrono::steady_clock::time_point now) const {
  std::vector<RunningLeft> out;
  for (const auto& [id, run] : jobs_) {
    const Attempt* a = run->attempt.get();
    if (!a || a->builder != b.spec.name || !in_attempt(run->flow.stage)) continue;
    RunningLeft r{std::nullopt, a->cores};
    if (double expected = seconds_at(a->expected, a->cores) / b.spec.speed_factor; expected > 0) {
      double elapsed = a->build_started == std::chrono::steady_clock::time_point{}
                           ? 0
                           : std::chrono::duration<double>(now - a->build_started).count();
      // One that runs past its figure is expected to take a quarter of its overrun again: it
      // ends soon, but not now.
      r.seconds_left = std::max(expected - elapsed, 0.25 * (elapsed - expected));
    }
    out.push_back(r);
  }
  return out;
}

void Scheduler::refresh_facts() {
  auto now = clock_.steady();
  for (auto& b : builders_) {
    if (b->reading_facts || b->disabled) continue;
    bool local = b->spec.is_local();
    if (b->facts &&
        now - b->facts_at < (local ? kLocalFactsEvery : kRemoteFactsEvery) - std::chrono::seconds(1))
      continue;
    b->reading_facts = true;
    if (local) {
      // The builds' own groups say what each holds now, their directories what disk they take.
      struct Watched {
        int64_t id;
        std::string cgroup, tmpdir;
      };
      std::vector<Watched> builds;
      for (const auto& [id, run] : jobs_)
        if (Attempt* a = run->attempt.get(); a && run->flow.stage == Stage::building) {
          bool walk = !a->tmpdir.empty() && now >= a->tmpdir_walk_after;
          if (!a->cgroup.empty() || walk) builds.push_back({id, a->cgroup, walk ? a->tmpdir : ""});
        }
      off_loop_->run(
          [read = local_facts_, cgroups = cgroups_, builds] {
            LocalReading r{read(), {}};
            for (const Watched& w : builds) {
              BuildReading& one = r.builds[w.id];
              if (!w.cgroup.empty() && cgroups) one.memory = cgroups->read(w.cgroup).current_memory;
              if (!w.tmpdir.empty()) one.tmpdir = dir_usage(w.tmpdir);
            }
            return r;
          },
          [this, name = b->spec.name](LocalReading r) {
            if (FleetBuilder* same = builder_named(name))
              facts_read(*same, std::move(r.facts), r.facts ? "" : "its /proc/meminfo could not be read",
                         std::move(r.builds));
          });
    } else {
      machine_checks_.run(
          machine_facts_command(b->spec), kFactsTimeout, [this, name = b->spec.name](AsyncResult r) {
            FleetBuilder* same = builder_named(name);
            if (!same) return;
            FactsOrError read = r.exit_code == 0 ? parse_remote_facts(r.output) : FactsOrError{};
            if (r.exit_code != 0)
              read.error = "ssh exited " + std::to_string(r.exit_code) + ": " +
                           std::string(trim(r.output)).substr(0, 200);
            facts_read(*same, std::move(read.facts), read.error, {});
          });
    }
  }
  timers_->facts.expires_after(kLocalFactsEvery);
  timers_->facts.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping_) refresh_facts();
  });
}

void Scheduler::facts_read(FleetBuilder& b, std::optional<MachineFacts> facts, std::string error,
                           std::map<int64_t, BuildReading> builds) {
  b.reading_facts = false;
  b.facts_error = std::move(error);
  auto now = clock_.steady();
  for (const auto& [id, reading] : builds) {
    JobRun* run = find_run(id);
    Attempt* a = run ? run->attempt.get() : nullptr;
    if (!a || a->builder != b.spec.name) continue;
    if (reading.memory) a->current_memory = *reading.memory;
    if (const std::optional<DirUsage>& dir = reading.tmpdir) {
      a->tmpdir_walk_after = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(dir->walk_seconds * kWalkPacing));
      // Empty all along: Nix did not build in it (a nix-daemon does so in its own), or not yet.
      if (!dir->empty) {
        a->build_dir_now = dir->bytes;
        a->build_dir_peak = std::max(a->build_dir_peak.value_or(0), dir->bytes);
      }
    }
  }
  if (!facts) {
    spdlog::debug("builder {}: its facts could not be read: {}", b.spec.name, b.facts_error);
    return;  // the last facts stand; a builder never read is counted by its slots
  }
  bool first = !b.facts;
  b.facts = facts;
  // A builder that claims a system its Nix does not build would fail every job of that system as
  // if the recipe were wrong: it is the builder's fault, and it rests until its config is fixed.
  if (std::string wrong_systems = systems_not_built(b.spec.systems, *facts);
      !wrong_systems.empty() && !b.spec.is_local() && b.health.up()) {
    builder_fault(b, wrong_systems);
    return;
  }
  b.facts_at = clock_.steady();
  collect_if_below_min_free(b);
  // The newest build there, and how many run.
  JobRun* newest = nullptr;
  int running = 0;
  for (auto& [id, run] : jobs_) {
    Attempt* a = run->attempt.get();
    if (!a || a->builder != b.spec.name || run->flow.stage != Stage::building) continue;
    ++running;
    if (!newest || a->build_started > newest->attempt->build_started) newest = run.get();
  }
  // Memory pressure: the newest build goes back to the queue, never the oldest (it has the most
  // work to lose). A build alone is left to finish: stopping it frees the machine for nothing.
  if (facts->pressure_full_avg10 && *facts->pressure_full_avg10 > config_.resources.pressure_stop &&
      running > 1 && newest && newest->attempt->process && !newest->attempt->stopped_for_memory) {
    Attempt& a = *newest->attempt;
    a.stopped_for_memory = true;
    std::string why = "memory pressure on " + b.spec.name + " (PSI full avg10 " +
                      std::to_string(static_cast<int>(*facts->pressure_full_avg10)) +
                      "% > resources.pressure_stop " + std::to_string(config_.resources.pressure_stop) +
                      "%): the newest build is stopped";
    a.log.write("=== ptbuild: " + why + "\n");
    spdlog::warn("job #{} {}: {}", a.job.id, a.job.variant, why);
    a.process->kill();
  }
  if (first || running < b.spec.max_jobs) poke();  // room may have come
}

}  // namespace ptbuild
