// Packing by memory on a simulated nightly (docs/BENCHMARKS.md, docs/resources.md): the 237
// variants of the real matrix over 1, 4 and 8 builders, slot-only packing (today's: a number of
// slots, every build at the -j32 the real recipes hard-code) against resource-aware packing (the
// real fit_build()/room_of()/place()/KeptBuilders of core/), in one-minute steps. A
// simulation, not a measurement: deterministic and repeatable.
//
// The memory profile is an assumption, stated here and in docs/BENCHMARKS.md, not a measurement
// of real PyTorch builds (none can be made on this machine): at 32 parallel compile jobs a CUDA
// PyTorch build peaks at 30–44 GiB (nvcc at ~1–1.4 GiB a job, as the maintainer's "limit build
// parallelism to prevent memory saturation" and PyTorch's MAX_JOBS advice describe), a CPU one at
// 14–20 GiB, torchvision/torchaudio at 8–14 (CUDA) or 3–6 GiB (CPU). A quarter of the peak does not
// scale with the cores (memory_at()); the duration at c cores is D32·(0.15 + 0.85·32/c), slowed
// by cores/compilers where the builds on a machine run more compilers than it has cores. The
// learned figure is the true peak ±8% (a variant rebuilt nightly has its history); the true peak
// of a run varies ±5% around its mean.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/fleet.h"
#include "core/resources.h"

using namespace ptbuild;

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr int kCores = 64;
constexpr uint64_t kMemory = 256 * kGiB;
constexpr uint64_t kReserve = 8 * kGiB;
constexpr int kRecipeJobs = 32;     // -j32 / MAX_JOBS=32 in every real recipe
constexpr double kStep = 1.0 / 60;  // hours

struct SimJob {
  double hours32;  // at 32 cores
  double peak32;   // GiB at 32 cores
  double learned;  // what ptbuild expects, GiB at 32 cores
};

std::vector<SimJob> matrix() {
  std::mt19937 rng(237);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto between = [&](double lo, double hi) { return lo + (hi - lo) * u(rng); };
  std::normal_distribution<double> run_noise(1.0, 0.05);
  std::vector<SimJob> jobs;
  auto add = [&](double h_lo, double h_hi, double m_lo, double m_hi) {
    // ptbuild's figure is the most of the variant's last 3 builds (expect_from), each of which
    // varied ±5% around the true peak.
    double peak = between(m_lo, m_hi);
    double learned = 0;
    for (int i = 0; i < 3; ++i) learned = std::max(learned, peak * run_noise(rng));
    jobs.push_back({between(h_lo, h_hi), peak, learned});
  };
  for (int i = 0; i < 221; ++i) {
    if (i < 108)
      add(2.0, 3.0, 30, 44);  // pytorch CUDA
    else
      add(0.25, 0.67, 8, 14);  // torchvision / torchaudio CUDA
  }
  for (int i = 0; i < 16; ++i) i < 4 ? add(0.8, 1.2, 14, 20) : add(0.2, 0.4, 3, 6);
  std::sort(jobs.begin(), jobs.end(), [](const SimJob& a, const SimJob& b) { return a.hours32 > b.hours32; });
  return jobs;  // longest first, as ptbuildd orders a nightly
}

double peak_at(double peak32, int cores) {
  return peak32 * (0.25 + 0.75 * cores / kRecipeJobs);
}
double hours_at(double hours32, int cores) {
  return hours32 * (0.15 + 0.85 * kRecipeJobs / cores);
}

struct Running {
  size_t job;
  int builder;
  int cores;
  double started, left;  // hours of work left at these cores
  double actual;         // GiB it really takes (this run)
  double expected;       // GiB ptbuild expects at these cores
};

struct Result {
  double makespan = 0;
  int oom_kills = 0;
  double committed = 0;  // mean of Σ actual / (builders × RAM), over the makespan
};

Result simulate(std::vector<SimJob> jobs, int builders, bool aware, int slots) {
  std::vector<bool> alone(jobs.size(), false);  // after an OOM kill (ptbuildd's rule)
  std::mt19937 rng(builders * 7 + aware);
  std::normal_distribution<double> run_noise(1.0, 0.05);
  std::vector<size_t> queue;
  for (size_t i = 0; i < jobs.size(); ++i) queue.push_back(i);
  std::vector<Running> running;
  std::vector<BuilderSpec> specs(builders);
  for (int b = 0; b < builders; ++b) {
    specs[b].name = "b" + std::to_string(b);
    specs[b].max_jobs = aware ? 64 : slots;
  }
  MachineFacts facts{kMemory, kMemory, kCores, 1000 * kGiB, 2000 * kGiB, 1000 * kGiB, std::nullopt};
  BuilderLimits limits{0, 0, 0, kReserve, false, true};
  Result r;
  double now = 0, mem_time = 0;
  while (!queue.empty() || !running.empty()) {
    // Start what may start, in order.
    // When the fleet should be done: the work queued (at one core each, its least core-hours)
    // and what the running builds have left, over all the cores.
    double core_hours = 0;
    for (size_t q : queue) core_hours += hours_at(jobs[q].hours32, 1);
    for (const Running& x : running) core_hours += x.left * x.cores;
    double horizon = core_hours * 3600 / (builders * kCores);
    KeptBuilders kept(builders);  // for a build before, which waits for room there
    for (size_t q = 0; q < queue.size();) {
      const SimJob& j = jobs[queue[q]];
      std::vector<BuilderState> states;
      std::vector<BuilderRoom> rooms;
      for (int b = 0; b < builders; ++b) {
        std::vector<RunningUse> uses;
        std::vector<double> ends;
        for (const Running& x : running)
          if (x.builder == b) {
            uses.push_back({static_cast<uint64_t>(x.expected * kGiB), 0, x.cores});
            ends.push_back(x.left * 3600);
          }
        int n = static_cast<int>(uses.size());
        states.push_back({&specs[b], n, true, ends});
        rooms.push_back(room_of(facts, limits, uses));
        rooms.back().demand = n + static_cast<int>((queue.size() - q + builders - 1) / builders);
        rooms.back().horizon_seconds = horizon;
      }
      Expectation e{static_cast<uint64_t>(j.learned * kGiB), kRecipeJobs, 0, "", j.hours32 * 3600};
      std::vector<Fit> fits(builders);
      Placement p = place({"x86_64-linux", {}}, states, [&](size_t b) {
        if (!aware) return std::string();
        fits[b] = fit_build(e, rooms[b], specs[b].name, alone[queue[q]]);
        if (fits[b].why_not.empty() && kept.keeps_out(b, q, seconds_at(e, fits[b].cores)))
          fits[b] = {0, 0, "kept"};
        return fits[b].why_not;
      });
      if (!p.chosen) {
        if (aware) kept.keep(0, q, fits, rooms, states);
        ++q;
        if (!aware) break;  // slot-only: nothing goes past a job that found no slot
        continue;
      }
      int b = static_cast<int>(*p.chosen);
      int cores = aware ? fits[b].cores : kRecipeJobs;
      running.push_back({queue[q], b, cores, now, hours_at(j.hours32, cores),
                         peak_at(j.peak32, cores) * run_noise(rng),
                         static_cast<double>(memory_at(e, cores)) / kGiB});
      queue.erase(queue.begin() + static_cast<long>(q));
    }
    // Out of memory: the kernel (or ptbuild) stops the newest build on a machine that overflows;
    // it goes back to the queue's front and its work is lost.
    for (int b = 0; b < builders; ++b)
      for (;;) {
        double used = 0;
        Running* newest = nullptr;
        for (Running& x : running)
          if (x.builder == b) {
            used += x.actual;
            if (!newest || x.started > newest->started) newest = &x;
          }
        if (used <= static_cast<double>(kMemory - kReserve) / kGiB || !newest) break;
        ++r.oom_kills;
        if (aware) {  // ptbuildd: its figure raised half as much again, and it runs alone next
          jobs[newest->job].learned *= 1.5;
          alone[newest->job] = true;
        }
        queue.insert(queue.begin(), newest->job);
        running.erase(running.begin() + (newest - running.data()));
      }
    double used = 0;
    for (const Running& x : running) used += x.actual;
    mem_time += used * kStep;
    now += kStep;
    // More compilers than cores share them: each build progresses at cores / compilers.
    std::vector<int> compilers(builders, 0);
    for (const Running& x : running) compilers[x.builder] += x.cores;
    for (Running& x : running)
      x.left -= kStep * std::min(1.0, static_cast<double>(kCores) / compilers[x.builder]);
    std::erase_if(running, [](const Running& x) { return x.left <= 0; });
    if (now > 10000) break;  // bounded: a packing that never ends is reported as such
  }
  r.makespan = now;
  r.committed = mem_time / (now * builders * static_cast<double>(kMemory) / kGiB);
  return r;
}

// A lower bound no schedule beats. Every job runs at some cores c, and the schedule must hold
// both its core-hours (c · hours(c)) within builders × cores × T and its memory-hours
// (peak(c) · hours(c)) within builders × usable memory × T; so must any weighted sum of the two
// (weight w on memory), with each job at the c that makes its own weighted sum least. The bound
// is the best such sum over w, and the longest job at all the cores. (Taking each resource on
// its own at different cores, as before, is looser: no job runs at two core counts at once.)
double lower_bound(const std::vector<SimJob>& jobs, int builders) {
  double core_cap = builders * static_cast<double>(kCores);
  double mem_cap = builders * static_cast<double>(kMemory - kReserve) / kGiB;
  double longest = 0, best = 0;
  for (const SimJob& j : jobs) longest = std::max(longest, hours_at(j.hours32, kCores));
  for (int step = 0; step <= 100; ++step) {
    double w = step / 100.0, t = 0;
    for (const SimJob& j : jobs) {
      double least = 1e18;
      for (int c = 1; c <= kCores; ++c)
        least = std::min(
            least, hours_at(j.hours32, c) * ((1 - w) * c / core_cap + w * peak_at(j.peak32, c) / mem_cap));
      t += least;
    }
    best = std::max(best, t);
  }
  return std::max(longest, best);
}

// The most memory a schedule that ends within `hours` can commit on average, if it runs no more
// compilers than cores: each build at c cores holds its peak at c for its hours at c, which must
// end within the makespan; that product shrinks as c grows (up to ~44 cores here), so the most is
// each build at the fewest cores that end in time, and never more than the usable memory all along.
double most_committed(const std::vector<SimJob>& jobs, int builders, double hours) {
  double memory_hours = 0;
  for (const SimJob& j : jobs) {
    int c = 1;
    while (c < kCores && hours_at(j.hours32, c) > hours) ++c;
    memory_hours += peak_at(j.peak32, c) * hours_at(j.hours32, c);
  }
  double usable = builders * static_cast<double>(kMemory - kReserve) / kGiB;
  return std::min(memory_hours, usable * hours) / (builders * static_cast<double>(kMemory) / kGiB * hours);
}

}  // namespace

int main() {
  std::vector<SimJob> jobs = matrix();
  std::printf("237 variants; builders of %d cores and %llu GiB (%llu reserved); times in hours\n\n", kCores,
              static_cast<unsigned long long>(kMemory / kGiB),
              static_cast<unsigned long long>(kReserve / kGiB));
  std::printf("| builders | packing | makespan | × bound | OOM kills | mean committed memory |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int builders : {1, 4, 8}) {
    double bound = lower_bound(jobs, builders);
    for (int slots : {2, 4, 8}) {
      Result s = simulate(jobs, builders, false, slots);
      std::printf("| %d | slots: %d × -j32 | %.1f | %.2f | %d | %.0f%% |\n", builders, slots, s.makespan,
                  s.makespan / bound, s.oom_kills, 100 * s.committed);
    }
    Result a = simulate(jobs, builders, true, 0);
    std::printf("| %d | by memory (fit_build) | %.1f | %.2f | %d | %.0f%% (at most %.0f%%) |\n", builders,
                a.makespan, a.makespan / bound, a.oom_kills, 100 * a.committed,
                100 * most_committed(jobs, builders, a.makespan));
    std::printf("| %d | lower bound | %.1f | 1.00 | | |\n", builders, bound);
  }
  return 0;
}
