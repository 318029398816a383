// The dispatch decision on its own: a snapshot in, what starts where and why the rest waits out.
#include "daemon/scheduler/dispatch.h"

#include <doctest/doctest.h>

using namespace ptbuild;
using namespace std::chrono_literals;

namespace {

struct Scenario {
  DispatchSnapshot s;
  std::vector<BuilderSpec> specs;
  int64_t next_id = 1;

  explicit Scenario(std::vector<BuilderSpec> fleet = {BuilderSpec{.name = "local", .max_jobs = 2}})
      : specs(std::move(fleet)) {
    s.now = std::chrono::steady_clock::time_point{} + 1000h;
    s.wall = std::chrono::system_clock::time_point{} + 1000h;
    s.repos["pytorch"] = {"/srv/pytorch", "", false};
    for (const BuilderSpec& b : specs) s.builders.push_back({&b, 0, true, "up"});
  }
  void variant(const std::string& name, const std::string& repo = "pytorch") {
    s.variants[name] =
        VariantRecord{name, repo, "/srv/" + repo, ".flox/pkgs/" + name + ".nix", parse_variant_name(name)};
  }
  int64_t queue(const std::string& name, JobKind kind = JobKind::build, int priority = 0,
                const std::string& repo = "pytorch") {
    Job j;
    j.id = next_id++;
    j.variant = name;
    j.repo = repo;
    j.kind = kind;
    j.priority = priority;
    j.state = JobState::queued;
    s.queued.push_back(j);
    return j.id;
  }
  // A build whose length and peak memory are known, queued: "v<n>-python313-cpu-avx2".
  int64_t queue_measured(double hours, uint64_t memory) {
    std::string name = "v" + std::to_string(next_id) + "-python313-cpu-avx2";
    variant(name);
    s.durations.by_variant[name] = hours * 3600;
    s.expected[name] = {memory, 0, 0, "measured"};
    return queue(name);
  }
  std::vector<int64_t> started(const DispatchDecision& d) const {
    std::vector<int64_t> out;
    for (const auto& start : d.builds) out.push_back(start.job);
    return out;
  }
};

// A machine with this much memory (all of it available) and cores, and 500 GiB free of 1000.
MachineFacts machine(uint64_t memory, int cores) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  return {.memory_total = memory,
          .memory_available = memory,
          .cores = cores,
          .store_free = 500 * kGiB,
          .store_size = 1000 * kGiB,
          .build_dir_free = 500 * kGiB};
}

}  // namespace

TEST_CASE("dispatch: builds fill the free slots in priority order, the rest wait for a slot") {
  Scenario sc;
  for (const char* n : {"a-python313-cpu-avx2", "b-python313-cpu-avx2", "c-python313-cpu-avx2"})
    sc.variant(n);
  int64_t a = sc.queue("a-python313-cpu-avx2");
  int64_t b = sc.queue("b-python313-cpu-avx2", JobKind::build, 5);
  int64_t c = sc.queue("c-python313-cpu-avx2", JobKind::build, 1);
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(sc.started(d) == std::vector<int64_t>{b, c});
  REQUIRE(d.waiting.count(a));
  CHECK(d.waiting[a].starts_with("no free slot"));
}

TEST_CASE("dispatch: a held queue starts nothing and says why, publish jobs included") {
  Scenario sc;
  sc.variant("a-python313-cpu-avx2");
  int64_t build = sc.queue("a-python313-cpu-avx2");
  int64_t publish = sc.queue("a-python313-cpu-avx2", JobKind::publish);
  sc.s.publishable["a-python313-cpu-avx2"] = "/nix/store/x-a";
  for (const char* why : {"draining", "paused", "ptbuildd is stopping"}) {
    sc.s.held = why;
    DispatchDecision d = decide_dispatch(sc.s);
    CHECK(d.builds.empty());
    CHECK(d.publishes.empty());
    CHECK(d.waiting[build] == why);
    CHECK(d.waiting[publish] == why);
  }
}

TEST_CASE("dispatch: a job backing off waits until its time, and the decision says when to look again") {
  Scenario sc;
  sc.variant("a-python313-cpu-avx2");
  int64_t id = sc.queue("a-python313-cpu-avx2");
  sc.s.backoffs[id] = {sc.s.now + 90s, 2};
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(d.builds.empty());
  CHECK(d.waiting[id].starts_with("back-off until "));
  CHECK(d.waiting[id].ends_with("(retry 2 of a network failure)"));
  REQUIRE(d.wake_at);
  CHECK(*d.wake_at == sc.s.now + 90s);
  sc.s.now += 90s;  // the fake clock moves: no waiting
  CHECK(sc.started(decide_dispatch(sc.s)) == std::vector<int64_t>{id});
}

TEST_CASE("dispatch: a vanished recipe fails its job, a missing repo keeps it waiting") {
  Scenario sc;
  int64_t gone = sc.queue("gone-python313-cpu-avx2");
  DispatchDecision d = decide_dispatch(sc.s);
  REQUIRE(d.refused.size() == 1);
  CHECK(d.refused[0].first == gone);
  CHECK(d.refused[0].second.failure_class == "eval_error");
  sc.s.repos["pytorch"].missing = true;
  d = decide_dispatch(sc.s);
  CHECK(d.refused.empty());
  CHECK(d.waiting[gone] == "repo pytorch is missing (/srv/pytorch): waiting for it to come back");
}

TEST_CASE("dispatch: a dependent waits for its upstream's unfinished build, and is held by a failed one") {
  Scenario sc;
  sc.s.repos["torchvision"] = {"/srv/torchvision", "pytorch", false};
  sc.variant("pytorch-python313-cpu-avx2");
  sc.variant("torchvision-python313-cpu-avx2", "torchvision");
  int64_t up = sc.queue("pytorch-python313-cpu-avx2");
  int64_t down = sc.queue("torchvision-python313-cpu-avx2", JobKind::build, 0, "torchvision");
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(sc.started(d) == std::vector<int64_t>{up});
  CHECK(d.waiting[down] == "after #" + std::to_string(up));

  sc.s.queued.erase(sc.s.queued.begin());  // the upstream build ran and failed
  std::pair key{std::string("pytorch"), axes_key(sc.s.variants["pytorch-python313-cpu-avx2"].axes)};
  sc.s.upstream[key] = {"pytorch-python313-cpu-avx2", up, JobState::failed};
  d = decide_dispatch(sc.s);
  CHECK(d.builds.empty());
  CHECK(d.waiting[down] == "after #" + std::to_string(up) +
                               " failed: starts when a build of pytorch-python313-cpu-avx2 succeeds");
  sc.s.upstream[key].state = JobState::succeeded;
  CHECK(sc.started(decide_dispatch(sc.s)) == std::vector<int64_t>{down});
}

TEST_CASE("dispatch: placement follows the needs, the fleet's health and its slots") {
  BuilderSpec x86{.name = "x86", .uri = "ssh-ng://x86", .max_jobs = 1};
  BuilderSpec arm{.name = "arm", .uri = "ssh-ng://arm", .systems = {"aarch64-linux"}, .max_jobs = 1};
  Scenario sc({x86, arm});
  sc.s.features_matter = true;
  sc.variant("a-python313-cpu-avx2");
  sc.variant("b-python313-cpu-armv9");
  sc.variant("c-python313-cpu-avx512");
  int64_t a = sc.queue("a-python313-cpu-avx2");
  int64_t b = sc.queue("b-python313-cpu-armv9");
  int64_t c = sc.queue("c-python313-cpu-avx512");
  // Needs not read yet: each variant is read once, and its job waits meanwhile.
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(d.builds.empty());
  CHECK(d.read_needs.size() == 3);
  CHECK(d.waiting[a] == "reading what its derivation needs (system, requiredSystemFeatures)");
  sc.s.needs["a-python313-cpu-avx2"] = {"x86_64-linux", {}};
  sc.s.needs["b-python313-cpu-armv9"] = {"aarch64-linux", {}};
  sc.s.needs["c-python313-cpu-avx512"] = {"x86_64-linux", {}};
  d = decide_dispatch(sc.s);
  REQUIRE(d.builds.size() == 2);
  CHECK(d.builds[0].job == a);
  CHECK(sc.s.builders[d.builds[0].builder].spec->name == "x86");
  CHECK(d.builds[1].job == b);
  CHECK(sc.s.builders[d.builds[1].builder].spec->name == "arm");
  CHECK(d.waiting[c].starts_with("no free slot"));
  // The only machine that fits rests: it says which and until when.
  sc.s.builders[0] = {&sc.specs[0], 0, false, "down until 2026-12-06T10:00:00.000Z: cannot be reached"};
  d = decide_dispatch(sc.s);
  CHECK(d.waiting[a] == "builder x86 down until 2026-12-06T10:00:00.000Z: cannot be reached");
}

TEST_CASE("dispatch: a publish job starts with a build to publish, after flox's check, else fails") {
  Scenario sc;
  sc.variant("a-python313-cpu-avx2");
  sc.variant("b-python313-cpu-avx2");
  int64_t ready = sc.queue("a-python313-cpu-avx2", JobKind::publish);
  int64_t nothing = sc.queue("b-python313-cpu-avx2", JobKind::publish);
  sc.s.publishable["a-python313-cpu-avx2"] = "/nix/store/x-a";
  sc.s.publishable["b-python313-cpu-avx2"] = "";
  sc.s.publish_needs_check = true;
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(d.publish_checks == std::vector<int64_t>{ready});
  REQUIRE(d.refused.size() == 1);
  CHECK(d.refused[0].first == nothing);
  CHECK(d.refused[0].second.message == "nothing to publish: b-python313-cpu-avx2 has no successful build");
  sc.s.publish_checking.insert(ready);  // asked once, not again while git answers
  CHECK(decide_dispatch(sc.s).publish_checks.empty());
  sc.s.publish_checked.insert(ready);
  CHECK(decide_dispatch(sc.s).publishes == std::vector<int64_t>{ready});
}

TEST_CASE(
    "dispatch: builds are packed by memory: big ones two at a time on 1.5 GiB, small ones beside them") {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  Scenario sc({BuilderSpec{.name = "local", .max_jobs = 8}});
  MachineFacts f{.memory_total = 24 * 1024 * kMiB,
                 .memory_available = 23 * 1024 * kMiB,
                 .cores = 2,
                 .store_free = uint64_t{70} << 30,
                 .store_size = uint64_t{250} << 30,
                 .build_dir_free = uint64_t{70} << 30};
  BuilderLimits cap{.memory = 1536 * kMiB, .reserve_set = true};
  sc.s.builders[0].room = room_of(f, cap, {});
  std::vector<int64_t> big, small;
  for (int i = 0; i < 3; ++i) {
    std::string name = "big" + std::to_string(i) + "-python313-cpu-avx2";
    sc.variant(name);
    sc.s.expected[name] = {600 * kMiB, 0, 0, "measured"};
    big.push_back(sc.queue(name, JobKind::build, 1));
  }
  for (int i = 0; i < 2; ++i) {
    std::string name = "small" + std::to_string(i) + "-python313-cpu-avx2";
    sc.variant(name);
    sc.s.expected[name] = {20 * kMiB, 0, 0, "measured"};
    small.push_back(sc.queue(name));
  }
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(sc.started(d) == std::vector<int64_t>{big[0], big[1], small[0], small[1]});
  CHECK(d.waiting[big[2]] == "memory: needs ~600 MiB, local has 336 MiB free");
  // The cores: 1.5 GiB holds two builds of 600 MiB, so each one's share of the 2 cores is one.
  CHECK(d.builds[0].cores == 1);
  CHECK(d.builds[1].cores == 1);
  // Each is held to the room there was when it started: the newest gets the least.
  CHECK(d.builds[0].memory_limit == 1536 * kMiB);
  CHECK(d.builds[1].memory_limit == 936 * kMiB);
}

TEST_CASE("dispatch: a build that waits for memory keeps its builder from the longer builds after it") {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  Scenario sc({BuilderSpec{.name = "gpu-box", .max_jobs = 8}});
  MachineFacts f = machine(64 * kGiB, 16);
  BuilderLimits reserve{.reserve = 4 * kGiB, .reserve_set = true};
  // A build that holds 40 of its 60 GiB runs for another hour.
  sc.s.builders[0].running = 1;
  sc.s.builders[0].builds.push_back({3600.0, 8});
  sc.s.builders[0].room = room_of(f, reserve, {{40 * kGiB, 0, 8}});
  std::vector<int64_t> ids{sc.queue_measured(3, 30 * kGiB), sc.queue_measured(2, kGiB),
                           sc.queue_measured(0.5, kGiB)};
  // The 30 GiB build waits for the hour-long one to end. The 2 h build after it would still hold
  // its memory and cores then: it waits; the half-hour one ends before and goes.
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(sc.started(d) == std::vector<int64_t>{ids[2]});
  CHECK(d.waiting[ids[0]] == "memory: needs ~30.0 GiB, gpu-box has 20.0 GiB free; gpu-box is kept for it");
  CHECK(d.waiting[ids[1]] == "gpu-box is kept for #" + std::to_string(ids[0]) +
                                 ", ahead in the queue, which waits for room there; builds that end within "
                                 "60 min may still go");
  // Without the big build, the 2 h one starts at once.
  std::erase_if(sc.s.queued, [&](const Job& j) { return j.id == ids[0]; });
  CHECK(sc.started(decide_dispatch(sc.s)) == std::vector<int64_t>{ids[1], ids[2]});
}

TEST_CASE("dispatch: after an OOM kill a build waits to run alone, and below min_free nothing starts") {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  Scenario sc({BuilderSpec{.name = "local", .max_jobs = 4}});
  MachineFacts f{.memory_total = 64 * kGiB,
                 .memory_available = 60 * kGiB,
                 .cores = 16,
                 .store_free = 70 * kGiB,
                 .store_size = 250 * kGiB,
                 .build_dir_free = 70 * kGiB};
  sc.s.builders[0].running = 1;
  sc.s.builders[0].room = room_of(f, {}, {{kGiB, 0, 8}});
  sc.variant("a-python313-cpu-avx2");
  int64_t a = sc.queue("a-python313-cpu-avx2");
  sc.s.expected["a-python313-cpu-avx2"] = {kGiB, 0, 0, "raised after an OOM kill"};
  sc.s.alone.insert(a);
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(d.builds.empty());
  CHECK(d.waiting[a] == "memory: runs alone after an OOM kill; waits for local's 1 build to end");
  sc.s.alone.clear();
  BuilderLimits strict{.min_free = 80 * kGiB, .min_free_set = true};
  sc.s.builders[0].room = room_of(f, strict, {});
  d = decide_dispatch(sc.s);
  CHECK(d.builds.empty());
  CHECK(d.waiting[a] ==
        "disk: local has 70.0 GiB free, below its min_free of 80.0 GiB (nothing new starts there)");
}

TEST_CASE(
    "dispatch: with every length known the queue is planned, and a build waits for its planned builder") {
  BuilderSpec one{.name = "one", .uri = "ssh-ng://one", .max_jobs = 1};
  BuilderSpec two{.name = "two", .uri = "ssh-ng://two", .max_jobs = 1};
  Scenario sc({one, two});
  // 3, 3, 2, 2 and 2 h: one at a time they end at 7 h; planned, the 3 h builds share a builder
  // and the 2 h ones the other, 6 h.
  std::vector<int64_t> ids;
  int n = 0;
  for (double hours : {3.0, 3.0, 2.0, 2.0, 2.0}) {
    std::string name = "v" + std::to_string(n++) + "-python313-cpu-avx2";
    sc.variant(name);
    sc.s.durations.by_variant[name] = hours * 3600;
    ids.push_back(sc.queue(name));
  }
  DispatchDecision d = decide_dispatch(sc.s);
  CHECK(sc.started(d) == std::vector<int64_t>{ids[0], ids[2]});
  REQUIRE(d.planned.size() == 5);
  std::string first = d.planned[ids[0]].builder;
  CHECK(d.planned[ids[1]].builder == first);
  CHECK(d.planned[ids[3]].builder == d.planned[ids[2]].builder);
  CHECK(d.planned[ids[4]].builder == d.planned[ids[2]].builder);
  CHECK(d.planned[ids[2]].builder != first);
  CHECK(d.planned[ids[4]].at == sc.s.now + 4h);
  CHECK(d.waiting[ids[1]] ==
        "waits for a slot on " + first + ", where the queue's plan puts it (one frees in ~3.0 h)");
  CHECK(d.waiting[ids[3]].ends_with("where the queue's plan puts it (one frees in ~2.0 h)"));
  // The next dispatch, an hour on, starts from this plan: each build where and when it was planned.
  sc.s.planned_before = d.planned;
  sc.s.now += 1h;
  for (const DispatchDecision::Start& start : d.builds) ++sc.s.builders[start.builder].running;
  for (auto& b : sc.s.builders) b.builds.push_back(RunningLeft{});
  sc.s.builders[d.builds[0].builder].builds.back().seconds_left = 2 * 3600;
  sc.s.builders[d.builds[1].builder].builds.back().seconds_left = 1 * 3600;
  std::erase_if(sc.s.queued, [&](const Job& j) { return j.id == ids[0] || j.id == ids[2]; });
  DispatchDecision next = decide_dispatch(sc.s);
  CHECK(next.builds.empty());
  for (int64_t id : {ids[1], ids[3], ids[4]}) CHECK(next.planned[id] == d.planned[id]);
}

TEST_CASE("dispatch: a slot the plan gave to a build with no room there now goes to a later one that fits") {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  BuilderSpec one{.name = "one", .uri = "ssh-ng://one", .max_jobs = 2};
  BuilderSpec two{.name = "two", .uri = "ssh-ng://two", .max_jobs = 1};
  Scenario sc({one, two});
  MachineFacts f = machine(16 * kGiB, 8);
  BuilderLimits reserve{.reserve = kGiB, .reserve_set = true};
  // "one" runs a build for another hour that holds 12 of its 15 GiB; "two" is idle.
  sc.s.builders[0].running = 1;
  sc.s.builders[0].builds.push_back({3600.0, 4});
  sc.s.builders[0].room = room_of(f, reserve, {{12 * kGiB, 0, 4}});
  sc.s.builders[1].room = room_of(f, reserve, {});
  std::vector<int64_t> ids{sc.queue_measured(3, 8 * kGiB), sc.queue_measured(3, kGiB),
                           sc.queue_measured(3, kGiB), sc.queue_measured(2, kGiB)};
  // The plan starts the 8 GiB build now on "one" (3 h there, then the 2 h one), 3 h on "two", and
  // 3 h on "one"'s second slot once its build ends. "one" has 3 GiB free: the big build goes to
  // "two" (where it ends first of those with room), and its slot on "one" to the next build
  // planned there, which fits; the rest wait for their turn.
  DispatchDecision d = decide_dispatch(sc.s);
  REQUIRE(d.planned.size() == 4);
  CHECK(d.planned[ids[0]] == PlannedStart{"one", sc.s.now});
  CHECK(d.planned[ids[2]].builder == "one");
  CHECK(d.planned[ids[2]].at > sc.s.now);
  REQUIRE(sc.started(d) == std::vector<int64_t>{ids[0], ids[2]});
  CHECK(d.builds[0].builder == 1);
  CHECK(d.builds[1].builder == 0);
  CHECK(d.waiting[ids[1]].starts_with("waits for a slot on two, where the queue's plan puts it"));
  CHECK(d.waiting[ids[3]].starts_with("waits for a slot on one, where the queue's plan puts it"));
}
