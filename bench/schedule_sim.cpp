// Scheduling on a simulated matrix: the makespan of ptbuildd's dispatch order (the real
// dispatch_order() of daemon/scheduler/plan.h) with longest-first and with fifo, against the
// lower bound max(total / slots, longest). Durations are known and deterministic: a simulation,
// not a measurement, so the figures are exact and repeatable.
#include <algorithm>
#include <cstdio>
#include <queue>
#include <random>
#include <string>
#include <vector>

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
          if (std::string(family) == "pytorch") add(name, 2.0, 3.0); else add(name, 0.25, 0.67);
        }
  for (const char* family : {"pytorch", "torchvision", "torchaudio", "libtorch"})
    for (const char* isa : isas) {
      std::string name = std::string(family) + "-python313-cpu-" + isa;
      if (std::string(family) == "pytorch") add(name, 0.8, 1.2); else add(name, 0.2, 0.4);
    }
  std::sort(jobs.begin(), jobs.end(), [](const SimJob& a, const SimJob& b) { return a.name < b.name; });
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].id = static_cast<int64_t>(i + 1);
  return jobs;
}

// Event simulation: whenever a slot is free, start the first job of dispatch_order().
double makespan(const std::vector<SimJob>& jobs, int slots, bool longest_first) {
  PlanInput in;
  in.longest_first = longest_first;
  for (const SimJob& j : jobs) in.queued.push_back({j.id, 0, "repo", axes_key(parse_variant_name(j.name)), j.hours * 3600});
  std::priority_queue<double, std::vector<double>, std::greater<>> running;  // end times
  double now = 0, end = 0;
  while (!in.queued.empty()) {
    while (static_cast<int>(running.size()) < slots && !in.queued.empty()) {
      int64_t next = dispatch_order(in).front();
      auto it = std::find_if(in.queued.begin(), in.queued.end(), [&](const QueuedBuild& q) { return q.id == next; });
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
  std::printf("| slots | lower bound max(total/K, longest) | longest-first | fifo | longest-first / bound | fifo / bound |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int slots : {1, 2, 4, 8, 16}) {
    double bound = std::max(total / slots, longest);
    double lf = makespan(jobs, slots, true), ff = makespan(jobs, slots, false);
    std::printf("| %d | %.2f h | %.2f h | %.2f h | %.3f | %.3f |\n", slots, bound, lf, ff, lf / bound, ff / bound);
  }
  std::printf("\n");
}

}  // namespace

int main() {
  std::vector<SimJob> all = matrix();
  std::printf("## Scheduling: simulated matrix\n\n");
  std::printf("Known durations (GPU PyTorch 2–3 h, CPU PyTorch ~1 h, torchvision/torchaudio 15–40 min), queued in\n"
              "name order; the makespan of ptbuildd's own dispatch order (plan.cpp) in an event simulation.\n\n");
  table("The whole matrix", all);
  // A night's rebuild: a pin bump touched every 10th variant, short ones queued first by name.
  std::vector<SimJob> night;
  for (size_t i = 0; i < all.size(); i += 10) night.push_back(all[i]);
  table("A nightly rebuild of every 10th variant", night);
  return 0;
}
