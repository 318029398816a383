// Prediction error (docs/resources.md): how far the expected peak memory of a build was from
// what its cgroup then measured, over repeated real builds (bench/prediction.sh runs them and
// hands their history here). The expectation is the daemon's own expect_from(), given what the
// store had of the variant and of its family before each build, newest first, as the scheduler
// gives it.
//
// Input (stdin): {"variants": {"<name>": [{"peak_memory": bytes, "cores": n}, … oldest first]}}.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/resources.h"

using namespace ptbuild;

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(v.size() - 1, std::ceil(p * v.size()) - 1))];
}

}  // namespace

int main() {
  nlohmann::json in = nlohmann::json::parse(std::cin);
  // Error |expected − measured| / measured, by how many builds of the variant came before
  // (3 and more together: the figure is learned from the last 3).
  std::map<int, std::vector<double>> errors, under;
  int builds = 0;
  // The variants are of one family (pytorch cpu) and were built in rounds, one build of each a
  // round: before a build, the store had every variant's builds of the rounds before.
  std::map<std::string, std::vector<PastUse>> past;  // newest first, as Store::resource_history gives it
  size_t rounds = 0;
  for (const auto& [name, runs] : in["variants"].items()) rounds = std::max(rounds, runs.size());
  for (size_t round = 0; round < rounds; ++round) {
    std::vector<Expectation> family;
    for (const auto& [name, own] : past) family.push_back(expect_from(own, {}, "", uint64_t{16} << 30));
    std::map<std::string, PastUse> built;
    for (const auto& [name, runs] : in["variants"].items()) {
      if (round >= runs.size()) continue;
      uint64_t measured = runs[round]["peak_memory"].get<uint64_t>();
      int cores = runs[round]["cores"].get<int>();
      ++builds;
      const std::vector<PastUse>& own = past[name];
      if (!own.empty()) {
        Expectation e = expect_from(own, family, "pytorch cpu", uint64_t{16} << 30);
        double expected = static_cast<double>(memory_at(e, cores));
        double err = (expected - static_cast<double>(measured)) / static_cast<double>(measured);
        int k = std::min<int>(3, static_cast<int>(own.size()));
        errors[k].push_back(std::fabs(err));
        under[k].push_back(err < 0 ? 1 : 0);
      }
      built[name] = PastUse{measured, cores, 0, false};
    }
    for (const auto& [name, use] : built) past[name].insert(past[name].begin(), use);
  }
  std::printf("%d real builds of %zu variants\n\n", builds, in["variants"].size());
  std::printf(
      "| builds of the variant before | predictions | error p50 | error p90 | under the measured peak |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const auto& [k, e] : errors) {
    double below = 0;
    for (double u : under[k]) below += u;
    std::printf("| %s | %zu | %.1f%% | %.1f%% | %.0f%% |\n", k == 3 ? "3 or more" : std::to_string(k).c_str(),
                e.size(), 100 * percentile(e, 0.5), 100 * percentile(e, 0.9), 100 * below / e.size());
  }
  return 0;
}
