#include "core/resources.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

MachineFacts machine(uint64_t total, uint64_t available, int cores, uint64_t free = 500 * kGiB) {
  MachineFacts f;
  f.memory_total = total;
  f.memory_available = available;
  f.cores = cores;
  f.store_free = free;
  f.store_size = 1000 * kGiB;
  f.build_dir_free = free;
  return f;
}
}  // namespace

TEST_CASE("resources: /proc/meminfo and PSI are read as the kernel writes them") {
  auto m = parse_meminfo(
      "MemTotal:       24683880 kB\nMemFree:        23990432 kB\nMemAvailable:   24252364 kB\n");
  REQUIRE(m);
  CHECK(m->first == uint64_t{24683880} * 1024);
  CHECK(m->second == uint64_t{24252364} * 1024);
  CHECK_FALSE(parse_meminfo("MemTotal: 1 kB\n"));
  CHECK(parse_memory_pressure("some avg10=1.50 avg60=0.00 avg300=0.00 total=0\n"
                              "full avg10=72.25 avg60=3.00 avg300=0.00 total=5\n") == doctest::Approx(72.25));
  CHECK_FALSE(parse_memory_pressure("some avg10=1.50\n"));
}

TEST_CASE("resources: a remote builder's answer gives its facts, and a broken one says what is missing") {
  auto f = parse_remote_facts(
      "MemTotal:       263856128 kB\nMemAvailable:   200000000 kB\ncores: 64\nstore: 1000000000 300000000\n"
      "build_dir: 500000000 100000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  REQUIRE(f.facts);
  CHECK(f.facts->memory_total == uint64_t{263856128} * 1024);
  CHECK(f.facts->cores == 64);
  CHECK(f.facts->store_free == uint64_t{300000000} * 1024);
  CHECK(f.facts->store_size == uint64_t{1000000000} * 1024);
  CHECK(f.facts->build_dir_free == uint64_t{100000000} * 1024);
  CHECK(f.facts->pressure_full_avg10 == doctest::Approx(0.0));
  CHECK(f.facts->nix_systems.empty());  // its Nix did not say: nothing is checked
  CHECK(systems_not_built({"aarch64-linux"}, *f.facts) == "");

  auto nix = parse_remote_facts(
      "MemTotal: 1000 kB\nMemAvailable: 500 kB\ncores: 2\nstore: 100 50\nsystem = x86_64-linux\n"
      "extra-platforms = i686-linux x86_64-v2-linux\n");
  REQUIRE(nix.facts);
  CHECK(nix.facts->nix_systems == std::vector<std::string>{"x86_64-linux", "i686-linux", "x86_64-v2-linux"});
  CHECK(systems_not_built({"x86_64-linux", "i686-linux"}, *nix.facts) == "");
  CHECK(
      systems_not_built({"aarch64-linux", "x86_64-linux", "armv7l-linux"}, *nix.facts) ==
      "claims aarch64-linux, armv7l-linux but its Nix builds only x86_64-linux, i686-linux, x86_64-v2-linux: "
      "fix its systems (or that machine's extra-platforms)");
  CHECK(parse_remote_facts("cores: 4\n").error == "no MemTotal/MemAvailable in its /proc/meminfo");
  CHECK(parse_remote_facts("MemTotal: 1 kB\nMemAvailable: 1 kB\ncores: 4\n").error ==
        "df could not tell the free space of /nix/store");
}

TEST_CASE("resources: what a build used goes to JSON and back, unknown figures as null") {
  ResourceUse u;
  u.peak_memory = 629145600;
  u.wall_seconds = 12.5;
  u.cores = 8;
  u.measured_by = "cgroup-v1";
  std::string json = resource_use_json(u);
  CHECK(json.find("\"cpu_seconds\":null") != std::string::npos);
  auto back = parse_resource_use(json);
  REQUIRE(back);
  CHECK(back->peak_memory == u.peak_memory);
  CHECK_FALSE(back->cpu_seconds);
  CHECK(back->cores == 8);
  CHECK(back->measured_by == "cgroup-v1");
  CHECK_FALSE(parse_resource_use("[1]"));
}

TEST_CASE(
    "resources: a variant's figure is the most of its last builds, then its family's, then the default") {
  Expectation own = expect_from({{600 * kMiB, 2, 0, false},
                                 {500 * kMiB, 2, 0, false},
                                 {900 * kMiB, 2, 0, false},
                                 {5 * kGiB, 2, 0, false}},  // the fourth is older than what is learned from
                                {}, "", 16 * kGiB);
  CHECK(own.memory == 900 * kMiB);
  CHECK(own.at_cores == 2);
  CHECK(own.source == "measured (the most of its last 3 builds)");
  // OOM-killed at 1 GiB: it needed more, half as much again is expected.
  Expectation raised = expect_from({{kGiB, 2, 0, true}}, {}, "", 16 * kGiB);
  CHECK(raised.memory == kGiB * 3 / 2);
  CHECK(raised.source == "raised after an OOM kill");
  Expectation family = expect_from({}, {{kGiB, 4, 0, ""}, {3 * kGiB, 4, 0, ""}, {2 * kGiB, 4, 0, ""}},
                                   "pytorch cuda13_0", 16 * kGiB);
  CHECK(family.memory == 2 * kGiB);
  CHECK(family.source == "family pytorch cuda13_0 (3 variants measured)");
  CHECK(expect_from({}, {}, "", 16 * kGiB).memory == 16 * kGiB);
  CHECK(resource_family(parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512")) == "pytorch cuda13_0");
  CHECK(resource_family(parse_variant_name("pytorch-python313-cpu-avx2")) == "pytorch cpu");
}

TEST_CASE("resources: the expected peak scales with cores, a quarter of it fixed") {
  Expectation e{32 * kGiB, 32, 0, ""};
  CHECK(memory_at(e, 32) == 32 * kGiB);
  CHECK(memory_at(e, 16) == 20 * kGiB);  // 8 fixed + 24 × 16/32
  CHECK(memory_at(e, 1) == 8 * kGiB + 768 * kMiB);
  CHECK(memory_at(Expectation{kGiB, 0, 0, ""}, 4) == kGiB);  // a default: as it is
}

TEST_CASE("resources: a variant's builds at different cores teach its own fixed share") {
  // Its memory is one step whatever its cores (a linker, a loaded model): 600 MiB at 1, 2 and 4.
  Expectation flat = expect_from(
      {{600 * kMiB, 4, 0, false}, {610 * kMiB, 1, 0, false}, {590 * kMiB, 2, 0, false}}, {}, "", 16 * kGiB);
  CHECK(flat.fixed_share > 0.95);
  CHECK(memory_at(flat, 1) > 580 * kMiB);  // the default quarter would say 270 MiB
  CHECK(flat.source == "measured (the most of its last 3 builds; 100% of it fixed, learned from its cores)");
  // A compiler-bound one: 2 GiB fixed + 1 GiB a core, seen at 8 and 16 cores.
  Expectation scaling = expect_from({{18 * kGiB, 16, 0, false}, {10 * kGiB, 8, 0, false}}, {}, "", 16 * kGiB);
  CHECK(scaling.fixed_share == doctest::Approx(2.0 / 18));
  CHECK(memory_at(scaling, 4) == doctest::Approx(6.0 * kGiB).epsilon(0.001));
  // All at the same cores, or the only other one OOM-killed (a floor): the default quarter.
  CHECK(expect_from({{kGiB, 4, 0, false}, {kGiB, 4, 0, false}}, {}, "", 16 * kGiB).fixed_share == 0.25);
  CHECK(expect_from({{kGiB, 4, 0, false}, {kGiB, 8, 0, true}}, {}, "", 16 * kGiB).fixed_share == 0.25);
  // Built at one core count only, it borrows what its family's builds showed: here, a variant
  // whose memory did not grow with its cores.
  Expectation kin = expect_from({{600 * kMiB, 1, 0, false}, {590 * kMiB, 2, 0, false}}, {}, "", 16 * kGiB);
  Expectation borrowed = expect_from({{300 * kMiB, 1, 0, false}}, {kin}, "pytorch cpu", 16 * kGiB);
  CHECK(memory_at(borrowed, 2) == 300 * kMiB);
  CHECK(borrowed.source ==
        "measured (the most of its last 1 build; 100% of it fixed, learned from its family)");
  // Memory that falls as the cores rise (noise): all of it fixed, never a negative part.
  CHECK(expect_from({{kGiB, 8, 0, false}, {2 * kGiB, 4, 0, false}}, {}, "", 16 * kGiB).fixed_share == 1.0);
}

TEST_CASE("resources: a builder's room counts its cap, its reserve and what its builds will still take") {
  BuilderLimits capped;
  capped.memory = 1536 * kMiB;
  capped.reserve_set = true;  // reserve 0
  // The machine has 23 GiB free, the cap 1.5 GiB: one build holding 600 MiB of its expected 600.
  BuilderRoom room = room_of(machine(24 * kGiB, 23 * kGiB, 2), capped, {{600 * kMiB, 600 * kMiB, 1}});
  CHECK(room.memory_free == 936 * kMiB);
  CHECK(room.cores_taken == 1);
  // Just started (using nothing yet): all 600 still to come.
  room = room_of(machine(24 * kGiB, 23 * kGiB, 2), capped, {{600 * kMiB, 0, 1}, {600 * kMiB, 0, 1}});
  CHECK(room.memory_free == 336 * kMiB);
  // Uncapped: the machine's own figure, less the default reserve (an eighth of 24 GiB).
  room = room_of(machine(24 * kGiB, 20 * kGiB, 8), {}, {{10 * kGiB, 4 * kGiB, 4}});
  CHECK(room.memory_free == 20 * kGiB - 3 * kGiB - 6 * kGiB);
  CHECK(room.min_free == 50 * kGiB);  // a tenth of 1000 GiB is more
  CHECK(committed({{10 * kGiB, 4 * kGiB, 4}, {kGiB, 2 * kGiB, 1}}) == 12 * kGiB);
}

TEST_CASE(
    "resources: a build fits where its memory and disk do, with the cores that keep the set in memory") {
  BuilderRoom room = room_of(machine(64 * kGiB, 64 * kGiB, 32), {}, {});  // 56 GiB free after the reserve
  Expectation big{38 * kGiB, 32, 20 * kGiB, ""};
  // More to come: two of them at 16 cores each fill 85% of its memory.
  Fit shared = fit_build(big, room, "gpu-box", false);
  CHECK(shared.why_not.empty());
  CHECK(shared.cores == 16);
  CHECK(shared.memory_limit == 56 * kGiB);
  // The last build of the queue gets the whole machine.
  room.demand = 1;
  CHECK(fit_build(big, room, "gpu-box", false).cores == 32);
  // Beside one that took 16 cores and 38 GiB, 18 GiB are left: it waits rather than start on
  // fewer cores, which would save only the part of its memory that scales with them.
  BuilderRoom beside = room_of(machine(64 * kGiB, 64 * kGiB, 32), {}, {{38 * kGiB, 0, 16}});
  CHECK(fit_build(big, beside, "gpu-box", false).why_not ==
        "memory: needs ~23.8 GiB, gpu-box has 18.0 GiB free");
  // A build that fits there starts beside it.
  CHECK(fit_build({10 * kGiB, 32, 0, ""}, beside, "gpu-box", false).why_not.empty());
  BuilderRoom full = room_of(machine(64 * kGiB, 64 * kGiB, 32), {}, {{50 * kGiB, 0, 16}});
  CHECK(fit_build(big, full, "gpu-box", false).why_not ==
        "memory: needs ~23.8 GiB, gpu-box has 6.0 GiB free");
  // An idle builder takes it all the same: else it would never run.
  BuilderRoom small = room_of(machine(16 * kGiB, 16 * kGiB, 4), {}, {});
  CHECK(fit_build(big, small, "laptop", false).why_not.empty());
  // After an OOM kill it runs alone.
  CHECK(fit_build({kGiB, 0, 0, ""}, beside, "gpu-box", true).why_not ==
        "memory: runs alone after an OOM kill; waits for gpu-box's 1 build to end");
  // Disk: below min_free nothing starts; above it, the build's own use must fit.
  BuilderRoom low = room_of(machine(64 * kGiB, 64 * kGiB, 32, 40 * kGiB), {}, {});
  CHECK(fit_build({kGiB, 0, 0, ""}, low, "gpu-box", false).why_not ==
        "disk: gpu-box has 40.0 GiB free, below its min_free of 50.0 GiB (nothing new starts there)");
  BuilderRoom some = room_of(machine(64 * kGiB, 64 * kGiB, 32, 60 * kGiB), {}, {});
  CHECK(fit_build(big, some, "gpu-box", false).why_not ==
        "disk: needs ~20.0 GiB, gpu-box has 10.0 GiB above min_free");
  // Facts not read yet: slots only, Nix's own cores.
  CHECK(fit_build(big, BuilderRoom{}, "x", false).cores == 0);
}

TEST_CASE("resources: a build gets its share of the cores, and waits for half of it at least") {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  MachineFacts f{.memory_total = 256 * kGiB,
                 .memory_available = 256 * kGiB,
                 .cores = 64,
                 .store_free = 1000 * kGiB,
                 .store_size = 2000 * kGiB,
                 .build_dir_free = 1000 * kGiB};
  BuilderLimits l{.reserve = 8 * kGiB, .reserve_set = true};
  // 85% of 248 GiB holds 15 of them at 4 cores (13.75 GiB each), not 16: a share of 4 cores.
  Expectation big{40 * kGiB, 32, 0, ""};
  Fit first = fit_build(big, room_of(f, l, {}), "box", false);
  CHECK(first.cores == 4);
  CHECK(fit_build(big, room_of(f, l, {{100 * kGiB, 0, 58}}), "box", false).cores == 4);
  // With 2 cores left it starts on half its share; with 1 it waits rather than hold its memory
  // four times as long.
  CHECK(fit_build(big, room_of(f, l, {{100 * kGiB, 0, 62}}), "box", false).cores == 2);
  CHECK(fit_build(big, room_of(f, l, {{100 * kGiB, 0, 63}}), "box", false).why_not ==
        "cores: its share is 4, box has 1 free");
  // Two builds left for the machine: 32 cores each.
  BuilderRoom two = room_of(f, l, {});
  two.demand = 2;
  CHECK(fit_build(big, two, "box", false).cores == 32);
  // Near the end (the fleet's work done in 10 h) a 2-hour build at 32 cores would take 13.9 h
  // on 4: it gets the 6 that end it within the horizon, and waits for no fewer than those.
  Expectation timed{40 * kGiB, 32, 0, "", 2 * 3600.0};
  CHECK(seconds_at(timed, 4) == doctest::Approx(13.9 * 3600).epsilon(0.01));
  BuilderRoom tail = room_of(f, l, {});
  tail.horizon_seconds = 10 * 3600.0;
  CHECK(fit_build(timed, tail, "box", false).cores == 6);
  CHECK(fit_build(timed, room_of(f, l, {{100 * kGiB, 0, 59}}), "box", false).cores == 4);  // no horizon
  BuilderRoom tail_full = room_of(f, l, {{100 * kGiB, 0, 59}});
  tail_full.horizon_seconds = 10 * 3600.0;
  CHECK(fit_build(timed, tail_full, "box", false).why_not == "cores: its share is 6, box has 5 free");
  // Alone (after an OOM kill) it gets them all, where its memory allows.
  CHECK(fit_build({kGiB, 32, 0, ""}, room_of(f, l, {}), "box", true).cores == 64);
}
