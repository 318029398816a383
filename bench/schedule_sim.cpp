// Scheduling on a simulated matrix: the makespan of ptbuildd's dispatch order (the real
// dispatch_order() of daemon/scheduler/plan.h) with longest-first and with fifo, against the
// lower bound max(total / slots, longest). Durations are known and deterministic: a simulation,
// not a measurement, so the figures are exact and repeatable.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/eta.h"
#include "core/fleet.h"
#include "core/text.h"
#include "core/variant.h"
#include "daemon/scheduler/plan.h"

using namespace ptbuild;

namespace {

struct SimJob {
  int64_t id;
  std::string name;
  double hours;
};

// 237 variants named like the real matrix, with durations of their kind: GPU PyTorch 2–3 h,
// CPU PyTorch ~1 h, torchvision/torchaudio 15–40 min. Queued in name order, as `queue all` does.
std::vector<SimJob> matrix() {
  std::vector<SimJob> jobs;
  std::mt19937 rng(237);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  const char* archs[] = {"sm80", "sm86", "sm89", "sm90", "sm100", "sm103", "sm110", "sm120", "sm121"};
  const char* isas[] = {"avx2", "avx512", "avx512bf16", "avx512vnni"};
  auto add = [&](const std::string& name, double lo, double hi) {
    jobs.push_back({static_cast<int64_t>(jobs.size() + 1), name, lo + (hi - lo) * jitter(rng)});
  };
  for (const char* family : {"pytorch", "torchvision", "torchaudio"})
    for (const char* cuda : {"cuda12_8", "cuda12_9", "cuda13_0"})
      for (const char* arch : archs)
        for (const char* isa : isas) {
          if (jobs.size() >= 221) break;
          std::string name = std::string(family) + "-python313-" + cuda + "-" + arch + "-" + isa;
          if (std::string(family) == "pytorch")
            add(name, 2.0, 3.0);
          else
            add(name, 0.25, 0.67);
        }
  for (const char* family : {"pytorch", "torchvision", "torchaudio", "libtorch"})
    for (const char* isa : isas) {
      std::string name = std::string(family) + "-python313-cpu-" + isa;
      if (std::string(family) == "pytorch")
        add(name, 0.8, 1.2);
      else
        add(name, 0.2, 0.4);
    }
  std::sort(jobs.begin(), jobs.end(), [](const SimJob& a, const SimJob& b) { return a.name < b.name; });
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].id = static_cast<int64_t>(i + 1);
  return jobs;
}

// Event simulation: whenever a slot is free, start the first job of dispatch_order().
double makespan(const std::vector<SimJob>& jobs, int slots, bool longest_first) {
  PlanInput in;
  in.longest_first = longest_first;
  for (const SimJob& j : jobs)
    in.queued.push_back({j.id, 0, "repo", axes_key(parse_variant_name(j.name)), j.hours * 3600});
  std::priority_queue<double, std::vector<double>, std::greater<>> running;  // end times
  double now = 0, end = 0;
  while (!in.queued.empty()) {
    while (static_cast<int>(running.size()) < slots && !in.queued.empty()) {
      int64_t next = dispatch_order(in).front();
      auto it = std::find_if(in.queued.begin(), in.queued.end(),
                             [&](const QueuedBuild& q) { return q.id == next; });
      running.push(now + it->expected_seconds);
      end = std::max(end, now + it->expected_seconds);
      in.queued.erase(it);
    }
    now = running.top();
    running.pop();
  }
  return end / 3600;
}

void table(const char* title, const std::vector<SimJob>& jobs) {
  double total = 0, longest = 0;
  for (const SimJob& j : jobs) {
    total += j.hours;
    longest = std::max(longest, j.hours);
  }
  std::printf("### %s: %zu builds, %.0f build-hours\n\n", title, jobs.size(), total);
  std::printf(
      "| slots | lower bound max(total/K, longest) | longest-first | fifo | longest-first / bound | fifo / bound |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int slots : {1, 2, 4, 8, 16}) {
    double bound = std::max(total / slots, longest);
    double lf = makespan(jobs, slots, true), ff = makespan(jobs, slots, false);
    std::printf("| %d | %.2f h | %.2f h | %.2f h | %.3f | %.3f |\n", slots, bound, lf, ff, lf / bound,
                ff / bound);
  }
  std::printf("\n");
}

// ---- The matrix over a fleet (docs/fleet.md) ----------------------------------------------------
// The real dispatch order, and for each build in it the real placement (core/fleet.h: platform,
// required and mandatory features, Hydra's running/speed order); a build takes hours/speed on
// the machine it lands on.

struct FleetJob {
  SimJob job;
  BuildNeeds needs;
};

// The matrix above plus its ARM variants (Grace machines: sm90/sm100 with armv9), pytorch needing
// big-parallel as the real recipes say.
std::vector<FleetJob> fleet_matrix(bool with_arm) {
  std::vector<SimJob> jobs = matrix();
  if (with_arm) {
    std::mt19937 rng(90);
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    for (const char* family : {"pytorch", "torchvision"})
      for (const char* cuda : {"cuda12_8", "cuda12_9", "cuda13_0"})
        for (const char* arch : {"sm90", "sm100"}) {
          bool torch = std::string(family) == "pytorch";
          double lo = torch ? 2.0 : 0.25, hi = torch ? 3.0 : 0.67;
          jobs.push_back({static_cast<int64_t>(jobs.size() + 1),
                          std::string(family) + "-python313-" + cuda + "-" + arch + "-armv9",
                          lo + (hi - lo) * jitter(rng)});
        }
  }
  std::vector<FleetJob> out;
  for (const SimJob& j : jobs) {
    VariantAxes axes = parse_variant_name(j.name);
    BuildNeeds needs{platform_of(axes.platform), {}};
    if (axes.family == "pytorch") needs.features.push_back("big-parallel");
    out.push_back({j, needs});
  }
  return out;
}

// n builders of mixed kinds: every 4th from the second is an ARM machine; slots 4, 2, 3, 2 and
// speed factors 1, 1, 1.5, 0.75 in turn; every 4th from the fourth has a GPU (gpu-sm90, cuda);
// every 8th from the seventh is a small box without big-parallel (torchvision/torchaudio only).
std::vector<BuilderSpec> fleet(int n) {
  std::vector<BuilderSpec> out;
  const int slots[] = {4, 2, 3, 2};
  const double speed[] = {1.0, 1.0, 1.5, 0.75};
  for (int i = 0; i < n; ++i) {
    BuilderSpec b;
    b.name = "b" + std::to_string(i);
    b.uri = "ssh-ng://nix@" + b.name;
    b.systems = {i % 4 == 1 ? "aarch64-linux" : "x86_64-linux"};
    b.max_jobs = slots[i % 4];
    b.speed_factor = speed[i % 4];
    b.features_declared = true;
    if (i % 8 != 6) b.supported_features.push_back("big-parallel");
    if (i % 4 == 3) b.supported_features.insert(b.supported_features.end(), {"gpu-sm90", "cuda"});
    out.push_back(b);
  }
  return out;
}

struct FleetRun {
  double makespan = 0;
  double busy = 0;  // slot-hours used, for utilisation
  // The daemon's ETA of the whole queue (status's scheduler.eta) as a quarter, half and three
  // quarters of the builds were done: when it said the matrix would end, in hours from the start.
  std::vector<std::pair<int, double>> etas;
  double longest_plan_ms = 0;  // the daemon's cost: the longest plan_slots() at one dispatch
};

// What `ptbuild status` would say at `now` (hours from the start): the daemon's own estimate
// (core/eta.h) over the builds running and queued, with durations learned within ±10% of the
// true ones (seeded by the build: the same each time it is asked).
double eta_hours(const std::vector<FleetJob>& jobs, const std::vector<BuilderSpec>& builders,
                 const std::map<int64_t, std::pair<double, size_t>>& running, const std::set<int64_t>& queued,
                 double now) {
  SystemTime start = *parse_rfc3339("2026-01-01T00:00:00Z");
  auto at = [&](double hours) {
    return start +
           std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double>(hours * 3600));
  };
  std::map<int64_t, double> learned;
  std::vector<Job> listed;
  for (const FleetJob& f : jobs) {
    std::mt19937 rng(static_cast<unsigned>(f.job.id));
    learned[f.job.id] = f.job.hours * 3600 * std::uniform_real_distribution<double>(0.9, 1.1)(rng);
    Job j;
    j.id = f.job.id;
    j.variant = f.job.name;
    if (auto r = running.find(f.job.id); r != running.end()) {
      j.state = JobState::running;
      j.started_at = format_rfc3339(at(r->second.first));
      j.builder = builders[r->second.second].name;
    } else if (queued.count(f.job.id)) {
      j.state = JobState::queued;
    } else {
      continue;
    }
    listed.push_back(j);
  }
  auto expected = [&](const Job& j) { return learned.at(j.id); };
  std::vector<EtaSlot> slots;
  for (const BuilderSpec& b : builders)
    for (int i = 0; i < b.max_jobs; ++i) slots.push_back({b.name, b.speed_factor});
  order_as_dispatched(listed, expected, true);
  std::map<std::string, const BuilderSpec*> spec_of;
  for (const BuilderSpec& b : builders) spec_of[b.name] = &b;
  std::map<int64_t, const BuildNeeds*> needs_of;
  for (const FleetJob& f : jobs) needs_of[f.job.id] = &f.needs;
  auto can_take = [&](const Job& j, const EtaSlot& slot) {
    return can_build(*spec_of[slot.builder], *needs_of[j.id]);
  };
  SystemTime last = at(now);
  for (const auto& [id, end] : estimate_ends(listed, expected, slots, at(now), can_take))
    last = std::max(last, end);
  return std::chrono::duration<double>(last - start).count() / 3600;
}

enum class Placing { least_loaded, by_finish, by_plan };

FleetRun simulate(const std::vector<FleetJob>& jobs, const std::vector<BuilderSpec>& builders, Placing how) {
  PlanInput in;
  in.longest_first = true;
  std::map<int64_t, const FleetJob*> by_id;
  for (const FleetJob& j : jobs) {
    in.queued.push_back({j.job.id, 0, "repo", axes_key(parse_variant_name(j.job.name)), j.job.hours * 3600});
    by_id[j.job.id] = &j;
  }
  std::vector<int> running(builders.size(), 0);
  // (end time, builder, job) of the builds running
  std::priority_queue<std::tuple<double, size_t, int64_t>, std::vector<std::tuple<double, size_t, int64_t>>,
                      std::greater<>>
      ends;
  std::map<int64_t, std::pair<double, size_t>> active;  // job -> (start, builder)
  std::set<int64_t> waiting;
  for (const FleetJob& j : jobs) waiting.insert(j.job.id);
  // build -> (builder, planned start in hours), as the daemon keeps it between dispatches
  std::map<int64_t, std::pair<size_t, double>> last_plan;
  size_t done = 0, next_quarter = 1;
  FleetRun r;
  double now = 0;
  while (!in.queued.empty()) {
    std::vector<int64_t> order = dispatch_order(in);
    std::set<int64_t> started;
    // What each builder runs, and when each of those builds ends (as the daemon's snapshot).
    std::vector<BuilderState> states;
    for (size_t b = 0; b < builders.size(); ++b) states.push_back({&builders[b], 0, true, {}});
    auto all = ends;
    for (; !all.empty(); all.pop()) {
      auto [end, b, id] = all.top();
      ++states[b].running;
      states[b].ends.push_back((end - now) * 3600);
    }
    std::vector<PlannedBuild> planned;
    for (int64_t id : order) {
      PlannedBuild build{by_id[id]->needs, by_id[id]->job.hours * 3600, std::nullopt, 0};
      if (auto before = last_plan.find(id); before != last_plan.end()) {
        build.planned_on = before->second.first;
        build.planned_in = (before->second.second - now) * 3600;
      }
      planned.push_back(build);
    }
    auto planning = std::chrono::steady_clock::now();
    std::vector<std::optional<PlanSpot>> plan =
        how == Placing::by_plan ? plan_slots(planned, states) : std::vector<std::optional<PlanSpot>>{};
    r.longest_plan_ms = std::max(
        r.longest_plan_ms,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - planning).count());
    for (size_t k = 0; k < plan.size(); ++k)
      if (plan[k]) last_plan[order[k]] = {plan[k]->builder, now + plan[k]->starts_in / 3600};
    for (size_t k = 0; k < order.size(); ++k) {
      int64_t id = order[k];
      double seconds = by_id[id]->job.hours * 3600;
      Placement p = how == Placing::by_plan     ? place_by_plan(by_id[id]->needs, states, seconds,
                                                            k < plan.size() ? plan[k] : std::nullopt)
                    : how == Placing::by_finish ? place_by_finish(by_id[id]->needs, states, seconds)
                                                : place(by_id[id]->needs, states);
      if (p.waits_for && !p.planned) hold_next_slot(states[*p.waits_for], seconds);
      if (!p.chosen) continue;
      hold_next_slot(states[*p.chosen], seconds);
      double hours = by_id[id]->job.hours / builders[*p.chosen].speed_factor;
      ++running[*p.chosen];
      ends.push({now + hours, *p.chosen, id});
      active[id] = {now, *p.chosen};
      waiting.erase(id);
      r.makespan = std::max(r.makespan, now + hours);
      r.busy += hours;
      started.insert(id);
    }
    std::erase_if(in.queued, [&](const QueuedBuild& q) { return started.count(q.id) > 0; });
    if (in.queued.empty()) break;
    if (ends.empty()) {
      std::printf("(a build no builder can take: the simulation stops)\n");
      break;
    }
    now = std::get<0>(ends.top());
    while (!ends.empty() && std::get<0>(ends.top()) <= now) {
      --running[std::get<1>(ends.top())];
      active.erase(std::get<2>(ends.top()));
      ends.pop();
      ++done;
    }
    if (next_quarter < 4 && done * 4 >= next_quarter * jobs.size()) {
      r.etas.emplace_back(25 * static_cast<int>(next_quarter),
                          eta_hours(jobs, builders, active, waiting, now));
      ++next_quarter;
    }
  }
  return r;
}

// A reference, not the daemon's rule: the whole matrix planned at once, offline, with every
// duration known — longest first each to the slot where it ends first, then builds moved or
// swapped between slots while that shortens the longest slot (a bounded local search). It shows
// how much of the gap to the bound a dispatcher that plans the queue could close.
double planned_makespan(const std::vector<FleetJob>& jobs, const std::vector<BuilderSpec>& builders) {
  struct Slot {
    const BuilderSpec* spec;
    double load = 0;
    std::vector<const FleetJob*> builds;
  };
  std::vector<Slot> slots;
  for (const BuilderSpec& b : builders)
    for (int i = 0; i < b.max_jobs; ++i) slots.push_back({&b});
  std::vector<const FleetJob*> order;
  for (const FleetJob& j : jobs) order.push_back(&j);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->job.hours > b->job.hours; });
  auto on = [](const Slot& s, const FleetJob* j) { return j->job.hours / s.spec->speed_factor; };
  for (const FleetJob* j : order) {
    Slot* best = nullptr;
    for (Slot& s : slots)
      if (can_build(*s.spec, j->needs) && (!best || s.load + on(s, j) < best->load + on(*best, j))) best = &s;
    if (!best) return 0;
    best->load += on(*best, j);
    best->builds.push_back(j);
  }
  for (int step = 0; step < 100000; ++step) {
    Slot& top =
        *std::max_element(slots.begin(), slots.end(), [](auto& a, auto& b) { return a.load < b.load; });
    bool moved = false;
    for (size_t k = 0; k < top.builds.size() && !moved; ++k) {
      const FleetJob* j = top.builds[k];
      for (Slot& other : slots) {
        if (&other == &top || !can_build(*other.spec, j->needs)) continue;
        if (double a = top.load - on(top, j), b = other.load + on(other, j);
            std::max(a, b) < top.load - 1e-9) {
          top.load = a, other.load = b;
          other.builds.push_back(j);
          top.builds.erase(top.builds.begin() + static_cast<long>(k));
          moved = true;
          break;
        }
        for (size_t m = 0; m < other.builds.size(); ++m) {
          const FleetJob* x = other.builds[m];
          if (!can_build(*top.spec, x->needs)) continue;
          double a = top.load - on(top, j) + on(top, x), b = other.load - on(other, x) + on(other, j);
          if (std::max(a, b) < top.load - 1e-9) {
            top.load = a, other.load = b;
            std::swap(top.builds[k], other.builds[m]);
            moved = true;
            break;
          }
        }
        if (moved) break;
      }
    }
    if (!moved) break;
  }
  double end = 0;
  for (const Slot& s : slots) end = std::max(end, s.load);
  return end;
}

// Lower bounds on the makespan. The issue's: max(Σwork / Σ(slots × speed), longest / fastest).
// Where builds may go only to some machines (ARM only on ARM, pytorch only with big-parallel),
// a set S of kinds of build cannot finish before work(S) / capacity(machines that take any of
// S); the tight bound is the largest over every S, and the longest build on its fastest machine.
struct Bounds {
  double simple = 0, tight = 0;
};

Bounds bounds(const std::vector<FleetJob>& jobs, const std::vector<BuilderSpec>& builders) {
  std::map<std::string, std::pair<BuildNeeds, double>> kinds;  // kind -> needs, work
  double total = 0, capacity = 0, fastest = 0;
  for (const BuilderSpec& b : builders) {
    capacity += b.max_jobs * b.speed_factor;
    fastest = std::max(fastest, b.speed_factor);
  }
  Bounds out;
  for (const FleetJob& j : jobs) {
    total += j.job.hours;
    std::string kind = j.needs.system + " " + join(j.needs.features, ",");
    kinds[kind].first = j.needs;
    kinds[kind].second += j.job.hours;
    double best = 0;
    for (const BuilderSpec& b : builders)
      if (can_build(b, j.needs)) best = std::max(best, b.speed_factor);
    out.tight = std::max(out.tight, j.job.hours / best);
    out.simple = std::max(out.simple, j.job.hours / fastest);
  }
  out.simple = std::max(out.simple, total / capacity);
  std::vector<std::pair<BuildNeeds, double>> list;
  for (auto& [_, k] : kinds) list.push_back(k);
  for (unsigned mask = 1; mask < (1u << list.size()); ++mask) {
    double work = 0, cap = 0;
    for (size_t k = 0; k < list.size(); ++k)
      if (mask & (1u << k)) work += list[k].second;
    for (const BuilderSpec& b : builders) {
      bool takes = false;
      for (size_t k = 0; k < list.size(); ++k)
        if ((mask & (1u << k)) && can_build(b, list[k].first)) takes = true;
      if (takes) cap += b.max_jobs * b.speed_factor;
    }
    if (cap > 0) out.tight = std::max(out.tight, work / cap);
  }
  return out;
}

void fleet_table() {
  std::printf("### The matrix over a fleet (docs/fleet.md)\n\n");
  std::printf(
      "The 237-variant mix plus 12 ARM variants (sm90/sm100 armv9) where the fleet has an ARM machine;\n"
      "pytorch needs big-parallel. Builders of mixed kinds: every 4th from the second is ARM; slots 4, 2, 3, 2\n"
      "and speed factors 1, 1, 1.5, 0.75 in turn; every 4th from the fourth has a GPU; every 8th from the\n"
      "seventh lacks big-parallel. Dispatch order and placement are the daemon's own functions.\n\n");
  std::printf(
      "| builders | slots | builds | build-hours | bound: Σwork/Σ(slots×speed) | bound: per kind of build | makespan: least loaded (Hydra) | / per-kind bound | makespan: by expected finish | / per-kind bound | makespan: planned (the daemon) | / per-kind bound | utilisation | longest plan | planned offline (reference) | / per-kind bound |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int n : {1, 2, 4, 8, 16}) {
    std::vector<BuilderSpec> builders = fleet(n);
    std::vector<FleetJob> jobs = fleet_matrix(n >= 2);
    int slots = 0;
    double capacity = 0, work = 0;
    for (const BuilderSpec& b : builders) {
      slots += b.max_jobs;
      capacity += b.max_jobs * b.speed_factor;
    }
    for (const FleetJob& j : jobs) work += j.job.hours;
    FleetRun hydra = simulate(jobs, builders, Placing::least_loaded);
    FleetRun r = simulate(jobs, builders, Placing::by_finish);
    FleetRun by_plan = simulate(jobs, builders, Placing::by_plan);
    Bounds b = bounds(jobs, builders);
    double planned = planned_makespan(jobs, builders);
    std::printf(
        "| %d | %d | %zu | %.0f | %.2f h | %.2f h | %.2f h | %.3f | %.2f h | %.3f | %.2f h | %.3f | %.0f%% | %.1f ms | %.2f h | %.3f |\n",
        n, slots, jobs.size(), work, b.simple, b.tight, hydra.makespan, hydra.makespan / b.tight, r.makespan,
        r.makespan / b.tight, by_plan.makespan, by_plan.makespan / b.tight,
        100.0 * by_plan.busy / (slots * by_plan.makespan), by_plan.longest_plan_ms, planned,
        planned / b.tight);
  }
  std::printf(
      "\nThe simple bound assumes any build may run anywhere. Here x86 builds cannot go to an ARM machine nor\n"
      "pytorch to a box without big-parallel, so it cannot be reached (with 2 builders the one x86 machine\n"
      "has all the x86 build-hours). The per-kind bound is the largest work(S) / capacity(machines that take\n"
      "any of S) over every set S of kinds of build, and the longest build on its fastest machine. Against it\n"
      "a build-by-build dispatch is within 5%% up to 8 builders; at 16 the loss is the tail: about 3.5 long\n"
      "builds a slot, the last of them started on slow machines while fast ones idle. Hydra's rule puts a build\n"
      "on the least loaded machine for its speed; by expected finish (place_by_finish) a build waits for a\n"
      "faster machine's slot where it ends clearly first: 1.124 to 1.116 at 16. Planned (plan_slots, the\n"
      "daemon's rule since #28): at each dispatch the whole queue is planned onto the slots, starting from the\n"
      "last dispatch's plan (each build on its builder, in the order it was to start there), the rest longest\n"
      "first where each ends first, then moved and swapped between slots while the slot that ends last ends\n"
      "sooner; a build starts where and when the plan starts it, or waits for that builder. Keeping the last\n"
      "plan's order is what makes the run follow it: a plan that kept only each build's builder, its builds\n"
      "then started in dispatch order, ended at 1.063 (and 1.051 where judged in that order). Longest plan: the\n"
      "most one dispatch spent planning (this machine, one core). The last columns are a reference: the same\n"
      "kind of plan made once, offline, from nothing, which the daemon's plan, improved at every dispatch, beats.\n\n");

  std::printf("### The ETA of the whole matrix against its real finish\n\n");
  std::printf(
      "What `ptbuild status` says (scheduler.eta: core/eta.h's estimate over the fleet's slots at their\n"
      "speed, the queue in dispatch order) when a quarter, half and three quarters of the builds are done,\n"
      "against the real finish of the same run; the learned durations are within ±10%% of the true ones.\n\n");
  std::printf("| builders | real finish | ETA at 25%% done | error | at 50%% | error | at 75%% | error |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int n : {1, 2, 4, 8, 16}) {
    FleetRun r = simulate(fleet_matrix(n >= 2), fleet(n), Placing::by_plan);
    std::printf("| %d | %.2f h |", n, r.makespan);
    for (const auto& [quarter, eta] : r.etas)
      std::printf(" %.2f h | %+.1f%% |", eta, 100 * (eta - r.makespan) / r.makespan);
    std::printf("\n");
  }
  std::printf("\n");
}

}  // namespace

int main() {
  std::vector<SimJob> all = matrix();
  std::printf("## Scheduling: simulated matrix\n\n");
  std::printf(
      "Known durations (GPU PyTorch 2–3 h, CPU PyTorch ~1 h, torchvision/torchaudio 15–40 min), queued in\n"
      "name order; the makespan of ptbuildd's own dispatch order (plan.cpp) in an event simulation.\n\n");
  table("The whole matrix", all);
  // A night's rebuild: a pin bump touched every 10th variant, short ones queued first by name.
  std::vector<SimJob> night;
  for (size_t i = 0; i < all.size(); i += 10) night.push_back(all[i]);
  table("A nightly rebuild of every 10th variant", night);
  fleet_table();
  return 0;
}
