#include "core/fleet.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
BuilderSpec builder(std::string name, int slots, std::vector<std::string> systems = {"x86_64-linux"},
                    std::vector<std::string> features = {}, double speed = 1.0,
                    std::vector<std::string> mandatory = {}) {
  BuilderSpec b;
  b.name = name;
  b.uri = "ssh-ng://nix@" + name;
  b.max_jobs = slots;
  b.systems = std::move(systems);
  b.supported_features = std::move(features);
  b.mandatory_features = std::move(mandatory);
  b.speed_factor = speed;
  b.features_declared = true;
  return b;
}

std::optional<std::string> chosen(const BuildNeeds& needs, const std::vector<BuilderState>& states) {
  Placement p = place(needs, states);
  if (!p.chosen) return std::nullopt;
  return states[*p.chosen].spec->name;
}
}  // namespace

TEST_CASE("a machines file line has Nix's 8 fields, dashes for defaults, comments and blanks ignored") {
  auto r = parse_machines(
      "# the fleet\n"
      "\n"
      "ssh-ng://builder@gpu1 x86_64-linux /keys/id 2 1.5 big-parallel,cuda,gpu-sm90 - AAAAC3Nz  # a comment\n"
      "ssh://arm1:2222 aarch64-linux - 4\n"
      "ssh-ng://x86b - - - - - big-parallel\n",
      "/etc/nix/machines");
  REQUIRE(std::holds_alternative<std::vector<BuilderSpec>>(r));
  const auto& fleet = std::get<std::vector<BuilderSpec>>(r);
  REQUIRE(fleet.size() == 3);
  CHECK(fleet[0].name == "gpu1");
  CHECK(fleet[0].ssh_key == "/keys/id");
  CHECK(fleet[0].max_jobs == 2);
  CHECK(fleet[0].speed_factor == 1.5);
  CHECK(fleet[0].supported_features == std::vector<std::string>{"big-parallel", "cuda", "gpu-sm90"});
  CHECK(fleet[0].mandatory_features.empty());
  CHECK(fleet[0].public_host_key == "AAAAC3Nz");
  CHECK(fleet[0].line == 3);
  CHECK(fleet[1].name == "arm1");
  CHECK(fleet[1].systems == std::vector<std::string>{"aarch64-linux"});
  CHECK(fleet[1].max_jobs == 4);
  CHECK(fleet[1].speed_factor == 1.0);
  CHECK(fleet[2].systems == std::vector<std::string>{"x86_64-linux"});
  CHECK(fleet[2].max_jobs == 1);
  CHECK(fleet[2].mandatory_features == std::vector<std::string>{"big-parallel"});
}

TEST_CASE("a bad machines line names the file, the line and the field") {
  auto message = [](std::string_view text) {
    auto r = parse_machines(text, "machines");
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string("accepted");
  };
  CHECK(message("\nssh-ng://a x86_64-linux - two\n") ==
        "machines:2: max jobs (field 4): expected a number of slots, got 'two'");
  CHECK(message("ssh-ng://a x86_64-linux - 1 fast\n") ==
        "machines:1: speed factor (field 5): expected a finite positive number, got 'fast'");
  CHECK(message("ssh-ng://a x86_64-linux - 1 0\n") ==
        "machines:1: speed factor (field 5): expected a finite positive number, got '0'");
  // `inf` was shown as null; a bare scheme made a builder with an empty name nobody could disable.
  CHECK(message("ssh-ng://a x86_64-linux - 1 inf\n") ==
        "machines:1: speed factor (field 5): expected a finite positive number, got 'inf'");
  CHECK(message("ssh-ng://\n") == "machines:1: uri: 'ssh-ng://' names no host");
  CHECK(message("ssh://user@\n") == "machines:1: uri: 'ssh://user@' names no host");
  CHECK(message("http://a\n") == "machines:1: uri: expected ssh://, ssh-ng:// or local, got 'http://a'");
  CHECK(message("ssh://a a - 1 1 - - - extra\n") ==
        "machines:1: a machine line has at most 8 fields, this one has 9");
}

TEST_CASE("the line given to Nix has the builder's own fields, the store URI its keys") {
  BuilderSpec b = builder("gpu1", 4, {"x86_64-linux"}, {"big-parallel", "cuda"}, 2.0);
  b.ssh_key = "/k/id";
  b.public_host_key = "QUJD";
  CHECK(b.machines_line() == "ssh-ng://nix@gpu1 x86_64-linux /k/id 4 2 big-parallel,cuda - QUJD");
  CHECK(b.store_uri() == "ssh-ng://nix@gpu1?ssh-key=/k/id&base64-ssh-public-host-key=QUJD");
  BuilderSpec bare = builder("b", 1);
  bare.speed_factor = 1.5;
  CHECK(bare.machines_line() == "ssh-ng://nix@b x86_64-linux - 1 1.500000 - - -");
  CHECK(bare.store_uri() == "ssh-ng://nix@b");
  CHECK(host_of("ssh://root@10.0.0.2:2222") == "10.0.0.2");
  CHECK(host_of("local") == "local");
  CHECK(host_of("ssh-ng://root@[::1]:22") == "::1");  // was "["
  CHECK(host_of("ssh://[fe80::1%eth0]") == "fe80::1%eth0");
}

TEST_CASE("a fleet with two builders of one name, or no slot at all, is refused") {
  CHECK(fleet_problem({builder("a", 1), builder("a", 2)}).find("two builders are named 'a'") !=
        std::string::npos);
  CHECK(fleet_problem({builder("a", 0)}).find("no slot") != std::string::npos);
  CHECK(fleet_problem({builder("a", 0), builder("b", 1)}).empty());
}

TEST_CASE("placement: platform, required and mandatory features decide who may build") {
  BuilderSpec x86 = builder("x86", 2, {"x86_64-linux"}, {"big-parallel"});
  BuilderSpec arm = builder("arm", 2, {"aarch64-linux"}, {"big-parallel"});
  BuilderSpec gpu = builder("gpu", 1, {"x86_64-linux"}, {"big-parallel", "cuda"}, 1.0, {"cuda"});
  std::vector<BuilderState> fleet{{&x86}, {&arm}, {&gpu}};

  CHECK(chosen({"aarch64-linux", {"big-parallel"}}, fleet) == "arm");
  CHECK(chosen({"x86_64-linux", {"big-parallel"}}, fleet) == "x86");  // gpu's cuda is mandatory
  CHECK(chosen({"x86_64-linux", {"big-parallel", "cuda"}}, fleet) == "gpu");
  CHECK(chosen({"x86_64-linux", {"kvm"}}, fleet) == std::nullopt);
  Placement none = place({"aarch64-darwin", {}}, fleet);
  CHECK(none.fitting == 0);
  CHECK(describe_unplaced({"aarch64-darwin", {}}, none) ==
        "no builder for aarch64-darwin: none of the configured builders can ever take it");
  CHECK(
      describe_unplaced({"x86_64-linux", {"kvm", "big-parallel"}},
                        place({"x86_64-linux", {"kvm", "big-parallel"}}, fleet)) ==
      "no builder for x86_64-linux with kvm,big-parallel: none of the configured builders can ever take it");
}

TEST_CASE("placement: full and down builders are skipped and said so") {
  BuilderSpec a = builder("a", 1);
  BuilderSpec b = builder("b", 2);
  BuildNeeds needs{"x86_64-linux", {}};
  CHECK(chosen(needs, {{&a, 1}, {&b, 1}}) == "b");
  Placement full = place(needs, {{&a, 1}, {&b, 2}});
  CHECK_FALSE(full.chosen);
  CHECK(describe_unplaced(needs, full) == "no free slot (2 builders fit)");
  Placement down = place(needs, {{&a, 0, false}, {&b, 0, false}});
  CHECK_FALSE(down.chosen);
  CHECK(describe_unplaced(needs, down) == "no builder up (2 builders fit, all down or disabled)");
  CHECK(chosen(needs, {{&a, 0, false}, {&b, 1, true}}) == "b");
}

TEST_CASE("placement follows Hydra: fewest running per speed factor, then the faster machine") {
  BuilderSpec slow = builder("slow", 4, {"x86_64-linux"}, {}, 1.0);
  BuilderSpec fast = builder("fast", 4, {"x86_64-linux"}, {}, 2.0);
  BuildNeeds needs{"x86_64-linux", {}};
  CHECK(chosen(needs, {{&slow, 0}, {&fast, 0}}) == "fast");  // tie on load: higher speed
  CHECK(chosen(needs, {{&slow, 0}, {&fast, 1}}) == "slow");  // 0/1 < 1/2
  CHECK(chosen(needs, {{&slow, 1}, {&fast, 2}}) == "fast");  // 1/1 > 2/2? equal: faster wins
  CHECK(chosen(needs, {{&slow, 1}, {&fast, 3}}) == "slow");  // 1 < 1.5
}

TEST_CASE("placement by expected finish: a long build waits for the fast machine that frees soon") {
  BuilderSpec slow = builder("slow", 1, {"x86_64-linux"}, {}, 0.5);
  BuilderSpec fast = builder("fast", 1, {"x86_64-linux"}, {}, 2.0);
  BuildNeeds needs{"x86_64-linux", {}};
  constexpr double kHour = 3600;
  // 4 h of work: 8 h on the idle slow box, 10 min + 2 h on the fast one.
  std::vector<BuilderState> states{{&slow, 0, true, {}}, {&fast, 1, true, {600}}};
  Placement p = place_by_finish(needs, states, 4 * kHour);
  CHECK_FALSE(p.chosen);
  REQUIRE(p.waits_for);
  CHECK(*p.waits_for == 1);
  CHECK(p.slot_in == 600);
  // It holds that slot. The next ones still end first there (at 4 h 10 min, 6 h 10 min against
  // 8 h) and wait behind it; the fourth would end at 8 h 10 min and takes the slow box.
  hold_next_slot(states[1], 4 * kHour);
  CHECK(states[1].ends == std::vector<double>{600 + 2 * kHour});
  for (int i = 0; i < 2; ++i) {
    CHECK(place_by_finish(needs, states, 4 * kHour).waits_for == size_t{1});
    hold_next_slot(states[1], 4 * kHour);
  }
  Placement fourth = place_by_finish(needs, states, 4 * kHour);
  REQUIRE(fourth.chosen);
  CHECK(*fourth.chosen == 0);
  // A 10-minute build starts now on the slow box (20 min) rather than wait an hour for the fast.
  CHECK(place_by_finish(needs, {{&slow, 0, true, {}}, {&fast, 1, true, {kHour}}}, 600).chosen == size_t{0});
  // The fast one ends its build in 7 h: the long build starts on the slow box now.
  CHECK(place_by_finish(needs, {{&slow, 0, true, {}}, {&fast, 1, true, {7 * kHour}}}, 4 * kHour).chosen ==
        size_t{0});
  // Unknown length, or an unknown end on the full machine: Hydra's rule among the free ones.
  CHECK(place_by_finish(needs, {{&slow, 0, true, {}}, {&fast, 1, true, {600}}}, 0).chosen == size_t{0});
  CHECK(place_by_finish(needs, {{&slow, 0, true, {}}, {&fast, 1, true, {}}}, 4 * kHour).chosen == size_t{0});
  // A build of unknown length placed on the fast box leaves its next slot unknown: nobody waits
  // for it on a guess.
  std::vector<BuilderState> unknown{{&slow, 0, true, {}}, {&fast, 0, true, {}}};
  hold_next_slot(unknown[1], 0);
  CHECK(unknown[1].running == 1);
  CHECK(unknown[1].ends.empty());
  CHECK(place_by_finish(needs, unknown, 4 * kHour).chosen == size_t{0});
  // No free slot anywhere: it waits for the one where it ends first.
  Placement none = place_by_finish(needs, {{&slow, 1, true, {60}}, {&fast, 1, true, {3600}}}, 4 * kHour);
  CHECK_FALSE(none.chosen);
  CHECK(none.waits_for == size_t{1});
}

TEST_CASE("a build that waits for cores or memory keeps the builder where most of them are free") {
  BuilderSpec a = builder("a", 8), b = builder("b", 8), c = builder("c", 8);
  std::vector<BuilderState> states{{&a, 2, true, {600, 7200}}, {&b, 2, true, {1800, 300}}, {&c, 1, true, {}}};
  CHECK(first_end(states[0]) == 600);
  CHECK(first_end(states[1]) == 300);
  CHECK_FALSE(first_end(states[2]));          // its build's length is not known
  CHECK_FALSE(first_end({&c, 0, true, {}}));  // nothing runs: nothing to wait for
  std::vector<BuilderRoom> rooms(3);
  for (BuilderRoom& r : rooms) r.cores = 16;
  rooms[0].cores_taken = 14;
  rooms[1].cores_taken = 12;
  rooms[2].cores_taken = 2;
  Fit waits{0, 0, "cores: its share is 8", 8};
  // Where it does not wait for cores or memory (disk, or it fits), nothing is kept for it.
  CHECK(KeptBuilders(3).keep(9, 0, {waits, Fit{0, 0, "disk: …"}, waits}, rooms, states) == size_t{0});
  KeptBuilders kept(3);
  // c has the most free cores, but when anything there ends is not known: b, with 4 free.
  CHECK(kept.keep(7, 0, {waits, waits, waits}, rooms, states) == size_t{1});
  CHECK(kept.keep(8, 1, {waits, waits, waits}, rooms, states) == size_t{0});
  CHECK_FALSE(kept.keep(9, 2, {waits, waits, waits}, rooms, states));
  // Kept until the first build there ends: a build after it that ends by then delays nothing.
  CHECK_FALSE(kept.keeps_out(1, 3, 300));
  REQUIRE(kept.keeps_out(1, 3, 301));
  CHECK(kept.keeps_out(1, 3, 301)->job == 7);
  CHECK(kept.keeps_out(1, 3, 0));           // a length not known may be any
  CHECK_FALSE(kept.keeps_out(1, 0, 301));   // the build ahead of it is not kept out
  CHECK_FALSE(kept.keeps_out(2, 3, 7200));  // c is kept for nobody
}

TEST_CASE("the queue planned onto the slots ends where one build at a time cannot") {
  constexpr double kHour = 3600;
  BuilderSpec a = builder("a", 1), b = builder("b", 1), arm = builder("arm", 1, {"aarch64-linux"});
  BuildNeeds x86{"x86_64-linux", {}};
  // 3, 3, 2, 2 and 2 h on two slots: one at a time (the longest first, each where it ends first)
  // ends at 7 h; planned, the 3 h builds share one builder and the 2 h ones the other: 6 h.
  std::vector<PlannedBuild> builds;
  for (double hours : {3.0, 3.0, 2.0, 2.0, 2.0}) builds.push_back({x86, hours * kHour, std::nullopt, 0});
  std::vector<BuilderState> states{{&a, 0, true, {}}, {&b, 0, true, {}}};
  double ends = 0;
  std::vector<std::optional<PlanSpot>> plan = plan_slots(builds, states, 1000, &ends);
  REQUIRE(plan.size() == 5);
  for (const auto& spot : plan) REQUIRE(spot);
  CHECK(ends == 6 * kHour);
  CHECK(plan[0]->builder == plan[1]->builder);
  CHECK(plan[2]->builder == plan[3]->builder);
  CHECK(plan[3]->builder == plan[4]->builder);
  CHECK(plan[0]->builder != plan[2]->builder);
  // Each slot runs its builds in the order given: when each starts.
  std::vector<double> starts;
  for (const auto& spot : plan) starts.push_back(spot->starts_in / kHour);
  CHECK(starts == std::vector<double>{0, 3, 0, 2, 4});
  // Two slots of one builder are planned the same way: the second 3 h build waits for the first
  // one's slot, though the other frees first (at 2 h), where it would end at 7 h.
  BuilderSpec pair = builder("pair", 2);
  double pair_ends = 0;
  std::vector<std::optional<PlanSpot>> paired = plan_slots(builds, {{&pair, 0, true, {}}}, 1000, &pair_ends);
  CHECK(pair_ends == 6 * kHour);
  CHECK(paired[1]->starts_in == 3 * kHour);
  // The next plan starts from this one: each build on the builder it was planned on, in the order
  // it was to start there, where that is as good.
  for (size_t k = 0; k < builds.size(); ++k) {
    builds[k].planned_on = plan[k]->builder == 0 ? 1 : 0;
    builds[k].planned_in = plan[k]->starts_in;
  }
  std::vector<std::optional<PlanSpot>> again = plan_slots(builds, states);
  for (size_t k = 0; k < builds.size(); ++k) {
    CHECK(again[k]->builder == builds[k].planned_on);
    CHECK(again[k]->starts_in == builds[k].planned_in);
  }
  // A build not planned before goes ahead of those that were where it comes first in the order.
  std::vector<PlannedBuild> urgent{{x86, kHour, std::nullopt, 0}};
  urgent.insert(urgent.end(), builds.begin(), builds.end());
  std::vector<std::optional<PlanSpot>> with_urgent = plan_slots(urgent, states);
  CHECK(with_urgent[0]->starts_in == 0);
  // What a builder cannot build is never planned on it; nothing can take it: none.
  std::vector<BuilderState> with_arm{{&arm, 0, true, {}}, {&a, 0, true, {}}};
  std::vector<std::optional<PlanSpot>> arm_plan =
      plan_slots({{x86, kHour, std::nullopt, 0},
                  {{"aarch64-linux", {}}, kHour, std::nullopt, 0},
                  {{"riscv64-linux", {}}, kHour, std::nullopt, 0}},
                 with_arm);
  CHECK(arm_plan[0]->builder == 1);
  CHECK(arm_plan[1]->builder == 0);
  CHECK_FALSE(arm_plan[2]);
  // A length or a running build's end unknown: no plan.
  CHECK(plan_slots({{x86, 0, std::nullopt, 0}}, states).empty());
  CHECK(plan_slots({{x86, kHour, std::nullopt, 0}}, {{&a, 1, true, {}}, {&b, 0, true, {}}}).empty());
  // Placed by the plan: on its builder when it starts now there, else it waits for it.
  CHECK(place_by_plan(x86, states, 2 * kHour, PlanSpot{1, 0}).chosen == size_t{1});
  Placement later = place_by_plan(x86, states, 2 * kHour, PlanSpot{1, 2 * kHour});
  CHECK_FALSE(later.chosen);
  CHECK(later.waits_for == size_t{1});
  CHECK(later.slot_in == 2 * kHour);
  CHECK(later.planned);
  Placement full = place_by_plan(x86, {{&a, 0, true, {}}, {&b, 1, true, {kHour}}}, 2 * kHour, PlanSpot{1, 0});
  CHECK(full.waits_for == size_t{1});
  CHECK(full.slot_in == kHour);
  // Planned on a builder without room (memory): placement as without a plan.
  Placement no_room = place_by_plan(x86, states, 2 * kHour, PlanSpot{1, 0}, [](size_t i) {
    return i == 1 ? std::string("memory: …") : std::string();
  });
  CHECK(no_room.chosen == size_t{0});
}

TEST_CASE("local without declared features takes what Nix allows here, its systems still count") {
  BuilderSpec local;
  local.name = "local";
  local.max_jobs = 2;
  CHECK(can_build(local, {"x86_64-linux", {"big-parallel", "kvm"}}));
  CHECK_FALSE(can_build(local, {"aarch64-linux", {}}));
  CHECK(can_build(local, {"", {}}));  // a name that does not say its platform
  CHECK(platform_of(std::string("darwin")) == "aarch64-darwin");
  CHECK(platform_of(std::nullopt).empty());
}

TEST_CASE("a recipe that does not evaluate alone still says its features in its text") {
  CHECK(
      declared_features(
          "{ stdenv, ... }:\nstdenv.mkDerivation {\n  requiredSystemFeatures = [ \"big-parallel\" \"cuda\" ];\n}") ==
      std::vector<std::string>{"big-parallel", "cuda"});
  CHECK(declared_features("requiredSystemFeatures=[\"kvm\"]; x.requiredSystemFeatures or [];") ==
        std::vector<std::string>{"kvm"});
  CHECK(declared_features("{ }: derivation { }").empty());
}
