// The scheduler's view of memory, cores and disk (docs/resources.md): each builder's facts, read
// again every few seconds (this machine off the loop, a remote one over its ssh), what the builds
// there hold, and the newest build stopped when the machine's memory pressure passes
// resources.pressure_stop.
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/text.h"
#include "daemon/resources/cgroup.h"
#include "daemon/runner/async_command.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/job_run.h"

namespace ptbuild {

namespace {
// This machine's facts are a few file reads; a remote one's an ssh round trip.
constexpr auto kLocalFactsEvery = std::chrono::seconds(5);
constexpr auto kRemoteFactsEvery = std::chrono::seconds(30);
constexpr auto kFactsTimeout = std::chrono::seconds(60);
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
  return u;
}

std::vector<RunningUse> Scheduler::running_uses(const FleetBuilder& b) const {
  std::vector<RunningUse> uses;
  for (const auto& [id, run] : jobs_)
    if (const Attempt* a = run->attempt.get(); a && a->builder == b.spec.name && in_attempt(run->flow.stage))
      uses.push_back({memory_at(a->expected, a->cores), a->current_memory, a->cores});
  return uses;
}

std::optional<double> Scheduler::work_left(const FleetBuilder& b,
                                           std::chrono::steady_clock::time_point now) const {
  double left = 0;
  for (const auto& [id, run] : jobs_)
    if (const Attempt* a = run->attempt.get();
        a && a->builder == b.spec.name && in_attempt(run->flow.stage)) {
      if (a->expected.seconds <= 0) return std::nullopt;
      double elapsed = a->build_started == std::chrono::steady_clock::time_point{}
                           ? 0
                           : std::chrono::duration<double>(now - a->build_started).count();
      left += std::max(0.0, seconds_at(a->expected, a->cores) - elapsed) * std::max(1, a->cores);
    }
  return left;
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
      // The builds' own groups say what each holds now.
      std::vector<std::pair<int64_t, std::string>> groups;
      for (const auto& [id, run] : jobs_)
        if (run->attempt && !run->attempt->cgroup.empty()) groups.emplace_back(id, run->attempt->cgroup);
      struct Read {
        std::optional<MachineFacts> facts;
        std::map<int64_t, uint64_t> current;
      };
      off_loop_->run(
          [read = local_facts_, cgroups = cgroups_, groups] {
            Read r{read(), {}};
            for (const auto& [id, name] : groups)
              if (auto held = cgroups->read(name).current_memory) r.current[id] = *held;
            return r;
          },
          [this, name = b->spec.name](Read r) {
            if (FleetBuilder* same = builder_named(name))
              facts_read(*same, std::move(r.facts), r.facts ? "" : "its /proc/meminfo could not be read",
                         std::move(r.current));
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
                           std::map<int64_t, uint64_t> current) {
  b.reading_facts = false;
  b.facts_error = std::move(error);
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
  // The newest build there, and how many run.
  JobRun* newest = nullptr;
  int running = 0;
  for (auto& [id, run] : jobs_) {
    Attempt* a = run->attempt.get();
    if (!a || a->builder != b.spec.name || !in_attempt(run->flow.stage)) continue;
    if (auto c = current.find(id); c != current.end()) a->current_memory = c->second;
    if (run->flow.stage != Stage::building) continue;
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
