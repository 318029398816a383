#include "daemon/scheduler/dispatch.h"

#include <cmath>
#include <cstdio>

#include "core/diagnosis.h"
#include "core/text.h"
#include "daemon/scheduler/plan.h"

namespace ptbuild {

namespace {

using Key = std::pair<std::string, std::string>;  // (repo, axes key)

void decide_publish(const DispatchSnapshot& s, const Job& j, DispatchDecision& d) {
  if (!s.held.empty()) {
    d.waiting[j.id] = s.held;
    return;
  }
  auto out = s.publishable.find(j.variant);
  if (!s.variants.count(j.variant) || out == s.publishable.end() || out->second.empty()) {
    d.refused.emplace_back(
        j.id, Failure{failure_class::kPublishFailed,
                      "nothing to publish: " + j.variant + " has no successful build", "build it first", ""});
    return;
  }
  if (s.publish_needs_check && !s.publish_checked.count(j.id)) {
    d.waiting[j.id] = "checking that flox publish would take the build repo (git)";
    if (!s.publish_checking.count(j.id)) d.publish_checks.push_back(j.id);
    return;
  }
  d.publishes.push_back(j.id);
}

// A build whose variant is not in the catalog: its repo is not there (wait) or its recipe is gone.
void decide_vanished(const DispatchSnapshot& s, const Job& j, DispatchDecision& d) {
  auto repo = s.repos.find(j.repo);
  if (repo != s.repos.end() && repo->second.missing) {
    d.waiting[j.id] =
        "repo " + j.repo + " is missing (" + repo->second.path + "): waiting for it to come back";
    return;
  }
  d.refused.emplace_back(
      j.id, Failure{failure_class::kEvalError, "the recipe of " + j.variant + " is gone from the repo",
                    "restore the recipe or cancel the job", ""});
}

std::string backoff_reason(const DispatchSnapshot& s, const DispatchSnapshot::Backoff& b) {
  auto at = s.wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(b.not_before - s.now);
  return "back-off until " + format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(at)) +
         " (retry " + std::to_string(b.network_retries) + " of a network failure)";
}

// Every builder that could take it is down or disabled: say which and until when.
std::string unplaced_reason(const DispatchSnapshot& s, const BuildNeeds& needs, const Placement& p) {
  if (p.fitting == 0 || p.fitting_up > 0) return describe_unplaced(needs, p);
  std::string out;
  for (const auto& b : s.builders)
    if (can_build(*b.spec, needs))
      out += (out.empty() ? "builder " : "; builder ") + b.spec->name + " " + b.state;
  return out;
}

// The queued builds that may start now, in plan_dispatch's terms; the rest get their reason.
PlanInput plan_input(const DispatchSnapshot& s, std::map<int64_t, const Job*>& by_id, DispatchDecision& d) {
  PlanInput plan;
  plan.longest_first = s.longest_first;
  for (const auto& [name, repo] : s.repos)
    if (!repo.after.empty()) plan.after[name] = repo.after;
  for (const Job& j : s.queued) {
    if (j.kind == JobKind::publish) continue;
    auto v = s.variants.find(j.variant);
    if (v == s.variants.end()) {
      decide_vanished(s, j, d);
      continue;
    }
    plan.unfinished.emplace(Key{j.repo, axes_key(v->second.axes)}, j.id);
    if (auto b = s.backoffs.find(j.id); b != s.backoffs.end() && b->second.not_before > s.now) {
      d.waiting[j.id] = backoff_reason(s, b->second);
      d.wake_at = std::min(d.wake_at.value_or(b->second.not_before), b->second.not_before);
      continue;
    }
    plan.queued.push_back({j.id, j.priority, j.repo, axes_key(v->second.axes),
                           s.durations.expected(j.variant, v->second.axes.family)});
    by_id[j.id] = &j;
  }
  for (const auto& [key, id] : s.running) plan.unfinished.emplace(key, id);
  // An upstream whose latest build failed holds its dependents, unless it has an unfinished build.
  for (const QueuedBuild& q : plan.queued) {
    auto upstream = plan.after.find(q.repo);
    if (upstream == plan.after.end()) continue;
    Key key{upstream->second, q.axes_key};
    auto last = s.upstream.find(key);
    if (plan.unfinished.count(key) || last == s.upstream.end()) continue;
    if (last->second.state == JobState::failed || last->second.state == JobState::cancelled)
      plan.failed.emplace(key, last->second.job);
  }
  return plan;
}

// "40 min", "2.5 h": how soon, as people read it.
std::string minutes(double seconds) {
  char out[32];
  if (seconds < 5400)
    std::snprintf(out, sizeof out, "%d min", static_cast<int>(std::lround(seconds / 60)));
  else
    std::snprintf(out, sizeof out, "%.1f h", seconds / 3600);
  return out;
}

Expectation expectation_of(const DispatchSnapshot& s, const VariantRecord& variant) {
  auto known = s.expected.find(variant.name);
  Expectation e = known == s.expected.end() ? Expectation{} : known->second;
  if (double seconds = s.durations.expected(variant.name, variant.axes.family); seconds > 0)
    e.seconds = seconds;
  return e;
}

// When the fleet should be done with what it has (docs/resources.md): the queued builds' work
// at one core each (their least core-seconds) and what the running ones have left, over the
// cores of the builders whose room is known. A build that would end long after it gets more
// cores. Where a build's length is not known yet there is none: counted as nothing, it would
// make every other build look long.
struct Horizon {
  double seconds = 0;
  int builders = 0;
  int share_of_rest(size_t left) const {
    return builders == 0 ? 0 : static_cast<int>((left + builders - 1) / builders);
  }
};

Horizon horizon_of(const DispatchSnapshot& s, const std::vector<int64_t>& order,
                   const std::map<int64_t, const Job*>& by_id) {
  Horizon h;
  double work = 0, cores = 0;
  bool known = true;
  for (const auto& b : s.builders)
    if (b.up && b.room.known) {
      ++h.builders;
      cores += b.room.cores;
      for (const auto& r : b.builds) {
        if (!r.seconds_left) known = false;
        work += r.seconds_left.value_or(0) * std::max(1, r.cores);
      }
    }
  for (int64_t id : order) {
    auto job = by_id.find(id);
    auto v = job == by_id.end() ? s.variants.end() : s.variants.find(job->second->variant);
    if (v == s.variants.end()) continue;
    Expectation e = expectation_of(s, v->second);
    if (e.seconds <= 0) known = false;
    work += seconds_at(e, 1);
  }
  if (known && cores > 0) h.seconds = work / cores;
  return h;
}

// The queue planned onto the fleet's slots (plan_slots), starting from where and when the last
// plan started each build; none for one builder (nothing to choose), while the queue is held, or
// while a build's needs or length are not known (the plan would be of a different queue).
std::vector<std::optional<PlanSpot>> plan_queue(const DispatchSnapshot& s, const std::vector<int64_t>& order,
                                                const std::map<int64_t, const Job*>& by_id,
                                                const std::vector<std::optional<BuildNeeds>>& needs_of,
                                                const std::vector<BuilderState>& states) {
  if (s.builders.size() < 2 || !s.held.empty()) return {};
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < s.builders.size(); ++i) index[s.builders[i].spec->name] = i;
  std::vector<PlannedBuild> builds;
  for (size_t k = 0; k < order.size(); ++k) {
    double seconds = expectation_of(s, s.variants.at(by_id.at(order[k])->variant)).seconds;
    if (!needs_of[k] || seconds <= 0) return {};
    PlannedBuild build{*needs_of[k], seconds, std::nullopt, 0};
    if (auto last = s.planned_before.find(order[k]); last != s.planned_before.end())
      if (auto i = index.find(last->second.builder); i != index.end()) {
        build.planned_on = i->second;
        build.planned_in = std::chrono::duration<double>(last->second.at - s.now).count();
      }
    builds.push_back(build);
  }
  return plan_slots(builds, states);
}

// A build placed on a builder holds its share of it for the placements after it.
void take_room(BuilderRoom& room, const Expectation& e, int cores) {
  uint64_t memory = memory_at(e, cores);
  room.memory_free = room.memory_free > memory ? room.memory_free - memory : 0;
  room.disk_free = room.disk_free > e.disk ? room.disk_free - e.disk : 0;
  room.cores_taken += cores;
  ++room.running;
}

std::string held_by_failed_reason(const DispatchSnapshot& s, int64_t failed) {
  for (const auto& [key, up] : s.upstream)
    if (up.job == failed)
      return "after #" + std::to_string(failed) + " " + std::string(to_string(up.state)) +
             ": starts when a build of " + up.variant + " succeeds";
  return "after #" + std::to_string(failed) + " failed: starts when a build of it succeeds";
}

}  // namespace

DispatchDecision decide_dispatch(const DispatchSnapshot& s) {
  DispatchDecision d;
  for (const Job& j : s.queued)
    if (j.kind == JobKind::publish) decide_publish(s, j, d);

  std::map<int64_t, const Job*> by_id;
  Plan order = plan_dispatch(plan_input(s, by_id, d));
  for (const auto& [id, upstream] : order.held_by) d.waiting[id] = "after #" + std::to_string(upstream);
  for (const auto& [id, failed] : order.held_by_failed) d.waiting[id] = held_by_failed_reason(s, failed);

  std::vector<BuilderState> states;
  std::vector<BuilderRoom> rooms;
  for (const auto& b : s.builders) {
    states.push_back({b.spec, b.running, b.up, {}});
    for (const auto& r : b.builds)
      if (r.seconds_left) states.back().ends.push_back(*r.seconds_left);
    rooms.push_back(b.room);
  }
  Horizon horizon = horizon_of(s, order.order, by_id);
  // What each build needs of a machine: from its name, or its derivation where builders differ.
  std::vector<std::optional<BuildNeeds>> needs_of;
  for (int64_t id : order.order) {
    const VariantRecord& variant = s.variants.at(by_id[id]->variant);
    auto known = s.needs.find(variant.name);
    needs_of.push_back(!s.features_matter       ? BuildNeeds{platform_of(variant.axes.platform), {}}
                       : known != s.needs.end() ? std::optional(known->second)
                                                : std::nullopt);
  }
  std::vector<std::optional<PlanSpot>> plan = plan_queue(s, order.order, by_id, needs_of, states);
  for (size_t k = 0; k < plan.size(); ++k)
    if (plan[k])
      d.planned[order.order[k]] = {s.builders[plan[k]->builder].spec->name,
                                   s.now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double>(plan[k]->starts_in))};
  // Builders kept for a build that waits there for cores or memory: the builds after it start
  // there only where they end before anything there frees.
  KeptBuilders kept(states.size());
  // Few builds left, bigger shares: the demand is what runs there and its part of the rest.
  auto fit_on = [&](size_t k, size_t i, const Expectation& expected, bool alone) {
    rooms[i].demand = states[i].running + horizon.share_of_rest(order.order.size() - k);
    rooms[i].horizon_seconds = horizon.seconds;
    const std::string& name = s.builders[i].spec->name;
    Fit fit = fit_build(expected, rooms[i], name, alone);
    if (fit.why_not.empty())
      if (const KeptBuilders::Kept* keep =
              kept.keeps_out(i, k, seconds_at(expected, fit.cores) / s.builders[i].spec->speed_factor))
        return Fit{0, 0,
                   name + " is kept for #" + std::to_string(keep->job) +
                       ", ahead in the queue, which waits for room there; builds that end within " +
                       minutes(keep->until) + " may still go"};
    return fit;
  };
  auto start = [&](int64_t id, size_t at, Fit fit, const Expectation& expected) {
    if (auto cap = s.max_cores.find(id); cap != s.max_cores.end())
      fit.cores = std::min(fit.cores > 0 ? fit.cores : cap->second, cap->second);
    hold_next_slot(states[at], expected.seconds);  // the next placement sees the slot taken, and the room
    take_room(rooms[at], expected, fit.cores);
    d.builds.push_back({id, at, fit.cores, fit.memory_limit, expected});
  };
  std::vector<int> released(states.size(), 0);   // slots the plan gave to builds that did not start
  std::vector<std::pair<size_t, size_t>> later;  // builds waiting for their turn on a builder
  std::set<std::string> reading;
  for (size_t k = 0; k < order.order.size(); ++k) {
    int64_t id = order.order[k];
    if (!s.held.empty()) {
      d.waiting[id] = s.held;
      continue;
    }
    const VariantRecord& variant = s.variants.at(by_id[id]->variant);
    if (!needs_of[k]) {
      d.waiting[id] = "reading what its derivation needs (system, requiredSystemFeatures)";
      if (reading.insert(variant.name).second) d.read_needs.push_back(variant.name);
      continue;
    }
    const BuildNeeds& needs = *needs_of[k];
    Expectation expected = expectation_of(s, variant);
    bool alone = s.alone.count(id) > 0;
    std::vector<Fit> fits(states.size());  // of the builders placement asked about
    std::optional<PlanSpot> spot = k < plan.size() ? plan[k] : std::nullopt;
    Placement placement = place_by_plan(needs, states, expected.seconds, spot, [&](size_t i) {
      return (fits[i] = fit_on(k, i, expected, alone)).why_not;
    });
    if (spot && spot->starts_in < 1 && placement.chosen != spot->builder) ++released[spot->builder];
    if (placement.waits_for) {
      if (placement.planned)
        later.emplace_back(k, *placement.waits_for);
      else
        hold_next_slot(states[*placement.waits_for], expected.seconds);
      d.waiting[id] = "waits for a slot on " + s.builders[*placement.waits_for].spec->name +
                      (placement.planned ? ", where the queue's plan puts it" : ", where it ends first") +
                      " (one frees in ~" + minutes(placement.slot_in) + ")";
      continue;
    }
    if (!placement.chosen) {
      d.waiting[id] = unplaced_reason(s, needs, placement);
      if (auto keep = kept.keep(id, k, fits, rooms, states))
        d.waiting[id] += "; " + s.builders[*keep].spec->name + " is kept for it";
      continue;
    }
    start(id, *placement.chosen, fits[*placement.chosen], expected);
  }
  // A slot the plan gave to a build with no room there now (memory, disk) is not left idle: a
  // build planned on that builder for later takes it where it fits — a small build beside a big
  // one. The next dispatch plans from what started.
  for (auto [k, at] : later) {
    if (released[at] == 0 || states[at].running >= states[at].spec->max_jobs) continue;
    int64_t id = order.order[k];
    Expectation expected = expectation_of(s, s.variants.at(by_id[id]->variant));
    Fit fit = fit_on(k, at, expected, s.alone.count(id) > 0);
    if (!fit.why_not.empty()) continue;
    --released[at];
    d.waiting.erase(id);
    start(id, at, fit, expected);
  }
  return d;
}

}  // namespace ptbuild
