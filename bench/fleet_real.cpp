// The fleet for real (docs/fleet.md): the same sleep-builds through the real ptbuildd on 1 and on 2
// builders, each an sshd in a network namespace with an empty /nix of its own, reached by Nix
// over ssh-ng:// (tests/support/netns_builder.h). Prints the wall time of each side by side with
// the bound max(Σwork / Σslots, longest) and the speed-up. Needs root.
//   build/bench_fleet_real [BUILDS] [SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/netns_builder.h"

using namespace ptbuild::testing;

namespace {

constexpr int kSlots = 2;

double run(int builders, int builds, int seconds) {
  TempDir space;
  std::vector<std::unique_ptr<NetnsBuilder>> fleet;
  std::string config;
  for (int i = 0; i < builders; ++i) {
    fleet.push_back(std::make_unique<NetnsBuilder>(space, "b" + std::to_string(i), 60 + i));
    config += fleet.back()->config(kSlots, {"x86_64-linux"});
  }
  Daemon d("", config);
  for (int i = 0; i < builds; ++i) {
    std::string name = "pytorch-python313-cuda13_0-sm" + std::to_string(100 + i) + "-avx512";
    d.add_sh_recipe(name, "sleep " + std::to_string(seconds) + "\necho $(cat /nix/builder-name) > $out");
  }
  d.start();
  // Every builder answers its probe before the clock starts: the figure is the builds' own.
  for (int tries = 0; tries < 600; ++tries) {
    nlohmann::json all = d.client_json({"builders"});
    bool up = true;
    for (const auto& b : all["builders"]) up = up && b["state"] == "up";
    if (up) break;
    ::usleep(100 * 1000);
  }
  auto start = std::chrono::steady_clock::now();
  d.client_json({"queue", "all"});
  ProcessResult waited = d.client({"wait", "all", "--timeout", "30m"});
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (waited.exit_code != 0) {
    std::fprintf(stderr, "the builds did not all succeed:\n%s%s\n%s\n", waited.out.c_str(),
                 waited.err.c_str(), d.log().c_str());
    std::exit(1);
  }
  return wall;
}

}  // namespace

int main(int argc, char** argv) {
  if (std::string why = NetnsBuilder::unavailable(); !why.empty()) {
    std::fprintf(stderr, "cannot run: %s\n", why.c_str());
    return 1;
  }
  int builds = argc > 1 ? std::atoi(argv[1]) : 24;
  int seconds = argc > 2 ? std::atoi(argv[2]) : 3;
  std::printf("### The fleet for real: 1 against 2 namespaced builders\n\n");
  std::printf(
      "%d builds that each sleep %d s, through the real ptbuildd and real Nix over ssh-ng:// to sshd's in\n"
      "network namespaces (each with an empty /nix of its own), %d slots a builder; wall time from `queue`\n"
      "to the end of `wait`, the builders probed up first.\n\n",
      builds, seconds, kSlots);
  std::printf(
      "| builders | slots | bound max(Σwork/Σslots, longest) | wall time | over the bound | speed-up |\n");
  std::printf("|---|---|---|---|---|---|\n");
  double one = 0;
  for (int n : {1, 2}) {
    double wall = run(n, builds, seconds);
    if (n == 1) one = wall;
    double bound = std::max(double(builds) * seconds / (n * kSlots), double(seconds));
    std::printf("| %d | %d | %.1f s | %.1f s | +%.1f s | %.2f× |\n", n, n * kSlots, bound, wall, wall - bound,
                one / wall);
    std::fflush(stdout);
  }
  std::printf("\n");
  return 0;
}
