#include "core/gc_policy.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
GcBuild build(int64_t job, const std::string& variant, bool good = true) {
  return {job, variant, "/nix/store/" + std::to_string(job) + "-" + variant, good, false, false, false};
}
std::vector<int64_t> dropped(const GcPlan& p) {
  std::vector<int64_t> out;
  for (const GcBuild& b : p.drop) out.push_back(b.job);
  return out;
}
}  // namespace

TEST_CASE("gc policy: the last N good builds of each variant stay, older ones go") {
  // Newest first: a has 4 good builds, b one.
  std::vector<GcBuild> builds{build(9, "a"), build(8, "b"), build(7, "a"), build(5, "a"), build(3, "a")};
  GcPlan p = plan_gc(builds, 2);
  CHECK(dropped(p) == std::vector<int64_t>{5, 3});
  CHECK(p.keep[9] == "the newest good build of a");
  CHECK(p.keep[7] == "one of the last 2 good builds of a");
  CHECK(p.keep[8] == "the newest good build of b");
  // keep_good 0 still keeps the newest.
  CHECK(dropped(plan_gc(builds, 0)) == std::vector<int64_t>{7, 5, 3});
}

TEST_CASE("gc policy: published, verified-unpublished and pending publishes stay whatever their age") {
  GcBuild published = build(3, "a");
  published.published = true;
  // b's newest build was not verified (verify turned off since): its newest verified one stays too.
  GcBuild verified = build(5, "b");
  verified.verified = true;
  GcBuild pending = build(2, "a");
  pending.pending_publish = true;
  GcBuild old_verified = build(1, "b");
  old_verified.verified = true;
  std::vector<GcBuild> builds{build(9, "a"), build(8, "b"), verified, published, pending, old_verified};
  GcPlan p = plan_gc(builds, 1);
  CHECK(p.keep[3] == "published");
  CHECK(p.keep[2] == "a publish job takes it");
  CHECK(p.keep[5] == "verified, not published yet");
  CHECK(dropped(p) == std::vector<int64_t>{1});  // an older verified build of b: not the newest
  // An output two jobs share (a rebuild Nix found already built) stays with the kept one.
  GcBuild twin = build(4, "a");
  twin.out_path = builds[0].out_path;
  CHECK(plan_gc({builds[0], twin}, 1).keep[4] == "its output is kept for another build");
}

TEST_CASE("gc: Nix's summary of a collection is read, in any unit") {
  auto mib = parse_gc_summary("deleting '/nix/store/abc'\n3 store paths deleted, 1.50 MiB freed\n");
  REQUIRE(mib);
  CHECK(mib->paths == 3);
  CHECK(mib->bytes == 1572864);
  CHECK(parse_gc_summary("0 store paths deleted, 0.00 KiB freed")->bytes == 0);
  CHECK(parse_gc_summary("12 store paths deleted, 2.00 GiB freed")->bytes == uint64_t{2} << 30);
  CHECK_FALSE(parse_gc_summary("error: cannot connect to daemon"));
}
