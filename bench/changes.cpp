// What changed and bisect (docs/changes.md, docs/bisect.md), measured:
//  1. `changes` on two derivation closures of PyTorch's size (a stand-in: 1,000 derivations with
//     realistic names, versions, environments and a cmakeFlags of 200 words), from the text
//     `nix show-derivation -r` prints to the summary: parse both, diff, summarize.
//  2. bisect's builds against a linear search over 16 and 64 commits, for every position of the
//     first bad commit; and with derivations compared, when only some commits touch what the
//     recipe reads (the rest cost no build).
// Prints figures; docs/BENCHMARKS.md records them.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "core/bisect.h"
#include "core/changes.h"

using namespace ptbuild;
using json = nlohmann::json;

namespace {

std::string hash_of(std::mt19937& rng) {
  static const char* kAlphabet = "0123456789abcdfghijklmnpqrsvwxyz";
  std::string h;
  for (int i = 0; i < 32; ++i) h += kAlphabet[rng() % 32];
  return h;
}

// A closure of `n` derivations; with seed 2, the first `moved` at another version and two sources
// (20 and 30) with other hashes.
json closure(int n, unsigned seed, int moved, std::string& top) {
  std::mt19937 rng(seed);
  std::mt19937 names(7);  // the same names and versions in both closures
  json c = json::object();
  std::string inputs;
  for (int i = 0; i < n; ++i) {
    std::string name = (i % 3 ? "python3.13-" : "") + std::string("pkg") + std::to_string(i);
    std::string version =
        std::to_string(names() % 5) + "." + std::to_string(names() % 20) + "." + std::to_string(names() % 9);
    if (i < moved) version += "-next";
    bool source = i % 10 == 0;
    std::string full = name + "-" + version + (source ? ".tar.gz" : "");
    std::string path = "/nix/store/" + hash_of(rng) + "-" + full;
    json env = {
        {"name", full}, {"out", path}, {"builder", "/nix/store/" + hash_of(rng) + "-bash-5.2/bin/bash"}};
    for (int k = 0; k < 12; ++k)
      env["var" + std::to_string(k)] = "value " + std::to_string(k) + " of " + name;
    // Phases and hooks: a real derivation's environment is kilobytes of shell.
    env["buildPhase"] = std::string(4000, 'x') + "\nmake -j$NIX_BUILD_CORES " + name + "\n";
    json outputs = {{"out", {{"path", path}}}};
    if (source) {
      env["url"] = "https://example.org/" + full;
      std::string hash = "sha256-" + std::to_string(i) + (i >= 20 && i < 40 && seed == 2 ? "new" : "old");
      outputs["out"]["hash"] = hash;
    }
    c["/nix/store/" + hash_of(rng) + "-" + full + ".drv"] = {
        {"outputs", outputs},
        {"inputSrcs", json::array({"/nix/store/" + hash_of(rng) + "-setup.sh"})},
        {"inputDrvs", json::object()},
        {"env", env}};
    inputs += path + " ";
  }
  std::string flags;
  for (int k = 0; k < 200; ++k) flags += "-DFLAG_" + std::to_string(k) + "=ON ";
  if (seed == 2) flags += "-DUSE_NEW=ON";
  top = "/nix/store/" + hash_of(rng) + "-pytorch-python313-cuda13_0-sm90-avx512.drv";
  c[top] = {
      {"outputs", {{"out", {{"path", "/nix/store/x-pytorch"}}}}},
      {"inputSrcs", json::array()},
      {"inputDrvs", json::object()},
      {"env",
       {{"name", "pytorch-python313-cuda13_0-sm90-avx512"}, {"cmakeFlags", flags}, {"buildInputs", inputs}}}};
  return c;
}

// Builds a bisection of `n` commits needs with its first bad commit at `bad`; with `relevant`,
// only the commits marked change the derivation (the others are judged by it, without a build).
int bisect_builds(size_t n, size_t bad, const std::vector<bool>* relevant) {
  std::vector<BisectCommit> commits(n);
  std::vector<int> drv(n);
  int current = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!relevant || (*relevant)[i] || i == bad) ++current;
    drv[i] = current;
  }
  commits.back().verdict = "bad";
  commits.back().drv = std::to_string(drv.back());
  std::string good_drv = "0";
  int builds = 0;
  for (size_t step = 0; step <= n; ++step) {
    BisectNext next = next_step(commits);
    if (next.kind != BisectNext::Kind::test) break;
    BisectCommit& c = commits[next.index];
    c.drv = std::to_string(drv[next.index]);
    if (relevant && c.drv == good_drv) {
      c.verdict = "good";
      continue;
    }
    bool judged = false;
    for (const BisectCommit& other : commits)
      if (relevant && !other.verdict.empty() && other.drv == c.drv) {
        c.verdict = other.verdict;
        judged = true;
        break;
      }
    if (judged) continue;
    ++builds;
    c.verdict = next.index >= bad ? "bad" : "good";
  }
  return builds;
}

}  // namespace

int main() {
  std::string top_a, top_b;
  std::string a = closure(1000, 1, 0, top_a).dump();
  std::string b = closure(1000, 2, 12, top_b).dump();
  constexpr int kRuns = 20;
  auto start = std::chrono::steady_clock::now();
  DerivationDiff d;
  std::vector<std::string> summary;
  for (int run = 0; run < kRuns; ++run) {
    d = diff_derivations(json::parse(a), top_a, json::parse(b), top_b);
    Changes c{.job = 2, .variant = "v", .since = 1};
    c.derivation = d;
    summary = summarize(c);
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / kRuns;
  std::printf("changes: two closures of 1,001 derivations (%.1f MB and %.1f MB of show-derivation JSON)\n",
              a.size() / 1e6, b.size() / 1e6);
  std::printf("  parse both + diff + summary: %.1f ms (mean of %d)\n", ms, kRuns);
  std::printf("  found: %zu versions moved, %zu sources, %zu variables; first line: %s\n", d.versions.size(),
              d.sources.size(), d.variables.size(), summary.empty() ? "" : summary.front().c_str());

  std::printf("\nbisect: builds to find the first bad commit, over every position of it\n");
  std::printf("  %8s  %18s  %18s  %26s\n", "commits", "linear mean/max", "bisect mean/max",
              "bisect, 1 in 4 relevant");
  for (size_t n : {16, 64}) {
    double linear_sum = 0, bisect_sum = 0, dedupe_sum = 0;
    int linear_max = 0, bisect_max = 0, dedupe_max = 0;
    std::mt19937 rng(42);
    std::vector<bool> relevant(n);
    for (size_t i = 0; i < n; ++i) relevant[i] = rng() % 4 == 0;
    for (size_t bad = 0; bad < n; ++bad) {
      int linear = static_cast<int>(std::min(bad + 1, n - 1));  // oldest first; the bad end is known
      int bisect = bisect_builds(n, bad, nullptr);
      int dedupe = bisect_builds(n, bad, &relevant);
      linear_sum += linear, bisect_sum += bisect, dedupe_sum += dedupe;
      linear_max = std::max(linear_max, linear), bisect_max = std::max(bisect_max, bisect);
      dedupe_max = std::max(dedupe_max, dedupe);
    }
    std::printf("  %8zu  %11.1f / %3d  %11.1f / %3d  %19.1f / %3d   (bound log2(n)+1 = %d)\n", n,
                linear_sum / n, linear_max, bisect_sum / n, bisect_max, dedupe_sum / n, dedupe_max,
                max_builds(n));
  }
  return 0;
}
