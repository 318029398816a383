// The scheduler's fleet (docs/fleet.md): the builders as the config gives them, their health and
// probes, and what a build needs of a machine.
#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/text.h"
#include "daemon/runner/async_command.h"
#include "core/clock.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/job_run.h"
#include "local/files.h"

namespace ptbuild {

namespace {
// The builder probe builds one empty output; minutes mean Nix is stuck (a store lock, say).
constexpr auto kBuilderProbeTimeout = std::chrono::minutes(5);
// Evaluating a real recipe against nixpkgs takes seconds to a minute.
constexpr auto kNeedsTimeout = std::chrono::minutes(3);

// `nix eval`'s answer {"system":…,"features":[…]}, the last JSON line of its output (warnings
// go to the same pipe); nullopt when it did not evaluate.
std::optional<BuildNeeds> parse_needs(const std::string& output) {
  size_t start = output.rfind("\n{");
  nlohmann::json j =
      nlohmann::json::parse(start == std::string::npos ? output : output.substr(start + 1), nullptr, false);
  if (!j.is_object() || !j.contains("features") || !j["features"].is_array()) return std::nullopt;
  BuildNeeds needs;
  if (j.contains("system") && j["system"].is_string()) needs.system = j["system"].get<std::string>();
  for (const auto& f : j["features"])
    if (f.is_string()) needs.features.push_back(f.get<std::string>());
  return needs;
}
}  // namespace

void Scheduler::reconfigure() {
  std::vector<std::unique_ptr<FleetBuilder>> fleet;
  std::optional<std::map<std::string, int>> done;  // read once, if a builder is new
  for (BuilderSpec& spec : config_.fleet()) {
    auto same = std::find_if(builders_.begin(), builders_.end(),
                             [&](const auto& b) { return b && b->spec.name == spec.name; });
    if (same != builders_.end()) {
      (*same)->spec = std::move(spec);
      fleet.push_back(std::move(*same));
    } else {
      fleet.push_back(std::make_unique<FleetBuilder>(io_, std::move(spec)));
      fleet.back()->disabled = store_.flag("builder disabled: " + fleet.back()->spec.name);
      if (!done) done = store_.builds_done_by_builder();
      fleet.back()->done = (*done)[fleet.back()->spec.name];
    }
  }
  builders_ = std::move(fleet);
  for (auto& b : builders_) b->running = 0;
  for (const auto& [id, run] : jobs_)
    if (run->attempt)
      if (FleetBuilder* b = builder_named(run->attempt->builder)) ++b->running;
  needs_.clear();  // whether features matter, and which builder has them, may have changed
  for (auto& b : builders_) collect_if_below_min_free(*b);  // a min_free raised applies now
  poke();
}

FleetBuilder* Scheduler::builder_named(const std::string& name) {
  for (auto& b : builders_)
    if (b->spec.name == name) return b.get();
  return nullptr;
}

std::string Scheduler::set_builder_enabled(const std::string& name, bool enabled) {
  FleetBuilder* b = builder_named(name);
  if (!b) {
    std::string names;
    for (const auto& each : builders_) names += (names.empty() ? "" : ", ") + each->spec.name;
    return "no builder named '" + name + "' (the builders: " + names + ")";
  }
  store_.set_flag("builder disabled: " + name, !enabled);
  b->disabled = !enabled;
  spdlog::info("builder {}: {} by the operator", name, enabled ? "enabled" : "disabled");
  poke();
  return "";
}

bool Scheduler::may_build(const std::string& variant, const std::string& builder) const {
  auto needs = needs_.find(variant);
  const FleetBuilder* b = nullptr;
  for (const auto& one : builders_)
    if (one->spec.name == builder) b = one.get();
  return needs == needs_.end() || !needs->second || !b || can_build(b->spec, *needs->second);
}

bool Scheduler::features_matter() const {
  return std::any_of(builders_.begin(), builders_.end(),
                     [](const auto& b) { return !b->spec.is_local() || b->spec.features_declared; });
}

// What a build needs of a machine (docs/fleet.md): the platform its name says, and the
// derivation's system and requiredSystemFeatures — read once per build, off the event loop, only
// where the fleet can tell builders apart (a remote builder, or declared features).
void Scheduler::read_needs(const VariantRecord& variant) {
  if (!needs_.try_emplace(variant.name, std::nullopt).second) return;  // known, or being read
  BuildNeeds by_name{platform_of(variant.axes.platform), {}};
  std::map<std::string, std::string> env;
  std::string recipe = variant.repo_path + "/" + variant.recipe;
  BuildCommand cmd = derivation_needs_command(config_.backend, recipe, env);
  cmd.cwd = variant.repo_path;
  auto known = [this, name = variant.name](BuildNeeds needs) {
    if (auto it = needs_.find(name); it != needs_.end() && !it->second) it->second = std::move(needs);
    poke();
  };
  run_async(
      io_, runner_, cmd, kNeedsTimeout,
      [this, name = variant.name, recipe, by_name, known](AsyncResult r) {
        BuildNeeds needs = by_name;
        if (std::optional<BuildNeeds> read = r.exit_code == 0 ? parse_needs(r.output) : std::nullopt) {
          if (needs.system.empty()) needs.system = read->system;
          needs.features = read->features;
          return known(std::move(needs));
        }
        // A callPackage-style recipe (flox's) does not evaluate alone: what it declares is read
        // from its text instead (off the loop: the repo may be on a network mount).
        spdlog::debug("{}: its derivation did not evaluate alone ({}); features from the recipe text", name,
                      std::string(trim(r.output)).substr(0, 200));
        off_loop_->run([recipe] { return declared_features(read_file(recipe).value_or("")); },
                       [needs = std::move(needs), known](std::vector<std::string> features) mutable {
                         needs.features = std::move(features);
                         known(std::move(needs));
                       });
      },
      env);
}

// A build failed for a cause that is the machine's (docs/failures.md, docs/fleet.md): no build starts on the
// builder until its back-off has passed and a probe has succeeded.
void Scheduler::builder_fault(FleetBuilder& b, const std::string& why) {
  b.health.fault(why, clock_.wall(), config_.daemon.builder_backoff);
  b.last_error = why;
  ++b.epoch;
  Millis rest = BuilderHealth::backoff(b.health.faults, config_.daemon.builder_backoff);
  // Up to a quarter longer, by name: builders that went down together are probed apart.
  rest += rest * static_cast<int64_t>(std::hash<std::string>{}(b.spec.name) % 25) / 100;
  spdlog::warn("builder {} {} (fault {} in a row); then a probe decides", b.spec.name, b.health.describe(),
               b.health.faults);
  b.probe_timer.expires_after(rest);
  b.probe_timer.async_wait([this, name = b.spec.name, epoch = b.epoch](const boost::system::error_code& ec) {
    FleetBuilder* same = builder_named(name);
    if (!ec && same && epoch == same->epoch) probe_builder(*same);
  });
}

void Scheduler::check_builders() {
  for (auto& b : builders_) {
    b->health.checking = true;
    probe_builder(*b);
  }
  refresh_facts();
}

// This machine: a tiny real build. A remote one: `nix store ping` over ssh (a build there would
// need a system it has; reaching its store is what fails when it is down).
void Scheduler::probe_builder(FleetBuilder& b) {
  std::string nonce = std::to_string(clock_.wall().time_since_epoch().count());
  BuildCommand probe = b.spec.is_local() ? builder_probe_command(config_.backend, nonce)
                                         : builder_ping_command(config_.backend, b.spec);
  machine_checks_.run(
      probe, kBuilderProbeTimeout, [this, name = b.spec.name, epoch = b.epoch](AsyncResult r) {
        FleetBuilder* same = builder_named(name);
        if (!same || epoch != same->epoch) return;  // resumed or reconfigured meanwhile
        Failure f = diagnose_text(r.output, r.exit_code);
        std::string wrong_systems =
            same->facts && !same->spec.is_local() ? systems_not_built(same->spec.systems, *same->facts) : "";
        if (r.exit_code == 0 && !wrong_systems.empty()) {
          builder_fault(*same,
                        wrong_systems);  // reachable, but its last facts say it cannot build all it claims
        } else if (r.exit_code == 0) {
          spdlog::info("builder {}: the probe {} succeeded; {}", name,
                       same->spec.is_local() ? "build" : "(nix store ping)",
                       same->health.checking ? "it can build" : "builds start again");
          same->health.probe_succeeded();
        } else if (!same->spec.is_local()) {
          std::string line = std::string(trim(r.output)).substr(0, 300);
          builder_fault(
              *same, "cannot be reached: " + (line.empty() ? "exit " + std::to_string(r.exit_code) : line));
        } else if (is_machine_fault(f)) {
          builder_fault(*same, "the probe build failed: " + f.failure_class + ": " + f.message);
        } else {
          // Not a fault we know (no nix to probe with beside flox, a Nix that builds nothing
          // locally…): the builds themselves decide.
          spdlog::warn("builder {}: the probe build failed ({}); taking builds all the same", name,
                       std::string(trim(r.output)).substr(0, 300));
          same->health.probe_succeeded();
        }
        poke();
      });
}

Scheduler::Summary Scheduler::summary() const {
  Summary s{paused_, draining_, 0, 0, {}, oom_kills_};
  for (const auto& [id, run] : jobs_) s.running += in_attempt(run->flow.stage);
  for (const auto& b : builders_) {
    s.slots += b->spec.max_jobs;
    std::vector<RunningUse> uses = running_uses(*b);
    BuilderSummary one{b->spec,       b->state(), b->running,     b->done,
                       b->last_error, b->facts,   b->facts_error, committed(uses)};
    if (b->facts) {
      one.reserve = reserve_of(*b->facts, b->spec.limits);
      one.min_free = min_free_of(*b->facts, b->spec.limits);
    }
    for (const auto& [id, run] : jobs_)
      if (const Attempt* a = run->attempt.get();
          a && a->builder == b->spec.name && in_attempt(run->flow.stage))
        one.holding.push_back(
            {id, std::max(memory_at(a->expected, a->cores), a->current_memory), a->build_dir_now});
    s.builders.push_back(std::move(one));
  }
  return s;
}

}  // namespace ptbuild
