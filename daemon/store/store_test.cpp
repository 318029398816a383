#include "daemon/store/store.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
const std::string kT0 = "2026-11-21T10:00:00.000Z";

RepoScan repo_with(std::initializer_list<const char*> packages) {
  RepoScan scan{"pytorch", "/srv/build-pytorch", ".flox/pkgs", {}};
  for (const char* p : packages) scan.recipes.push_back({p, std::string(".flox/pkgs/") + p + ".nix"});
  return scan;
}

int64_t queue(Store& store, const std::string& variant) {
  auto tx = store.begin();
  Job j = store.insert_job(tx, NewJob{variant, JobKind::build, 0, "test", false}, kT0);
  tx.commit();
  return j.id;
}

void move_job(Store& store, int64_t id, JobState from, JobState to) {
  auto tx = store.begin();
  store.transition(tx, id, from, to, {.started_at = kT0, .finished_at = kT0}, kT0, "");
  tx.commit();
}
}  // namespace

TEST_CASE("a new database gets every migration and WAL") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  CHECK(store.schema_version() == Store::latest_schema_version());
  CHECK(Store::latest_schema_version() >= 2);
  sql::Db raw(dir / "ptbuild.db");
  auto st = raw.prepare("PRAGMA journal_mode");
  REQUIRE(st.step());
  CHECK(st.text(0) == "wal");
}

TEST_CASE("an older database is migrated and keeps its jobs") {
  testing::TempDir dir;
  {
    // A database as ptbuild with only schema 1 left it.
    sql::Db old(dir / "ptbuild.db");
    old.exec(testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/schema/001_init.sql"));
    old.exec("PRAGMA user_version = 1");
    old.exec("INSERT INTO repos(name, path, recipes) VALUES('pytorch', '/srv', '.flox/pkgs')");
    old.exec("INSERT INTO variants(repo_id, name, recipe) VALUES(1, 'pytorch-python313-cpu-avx2', 'x.nix')");
    old.exec("INSERT INTO jobs(variant_id, kind, state, created_at) VALUES(1, 'build', 'succeeded', '" + kT0 +
             "')");
    old.exec("INSERT INTO job_events(job_id, at, to_state) VALUES(1, '" + kT0 + "', 'queued')");
  }
  Store store(dir / "ptbuild.db", dir / "logs");
  CHECK(store.schema_version() == Store::latest_schema_version());
  auto job = store.job(1);
  REQUIRE(job);
  CHECK(job->variant == "pytorch-python313-cpu-avx2");
  CHECK(job->state == JobState::succeeded);
  CHECK(job->log_path == dir / "logs/1.log");  // its plain log; new jobs' logs are zstd
  // The jobs table was rebuilt (schema 11): its events still point at it, and references are
  // enforced again.
  CHECK(store.events(1).size() == 1);
  auto tx = store.begin();
  CHECK(store
            .insert_job(tx, NewJob{"pytorch-python313-cpu-avx2", JobKind::bisect, -1, "bisect", false, "abc"},
                        kT0)
            .kind == JobKind::bisect);
  tx.commit();
  sql::Db raw(dir / "ptbuild.db");
  CHECK_NOTHROW(raw.exec("SELECT count(*) FROM hash_fixes"));
  auto dangling = store.begin();
  CHECK_THROWS_AS(
      store.add_hash_fix(dangling, {0, 99, "pytorch-python313-cpu-avx2", "d", "f", 1, "o", "n", kT0}),
      sql::Error);
}

TEST_CASE("a database from a newer ptbuild is refused with a clear message") {
  testing::TempDir dir;
  {
    sql::Db future(dir / "ptbuild.db");
    future.exec("PRAGMA user_version = 999");
  }
  try {
    Store store(dir / "ptbuild.db", dir / "logs");
    FAIL("the store opened a database from the future");
  } catch (const StoreError& e) {
    std::string msg = e.what();
    CHECK(msg.find("schema version 999") != std::string::npos);
    CHECK(msg.find("newer ptbuild") != std::string::npos);
  }
  sql::Db raw(dir / "ptbuild.db");
  auto st = raw.prepare("PRAGMA user_version");
  st.step();
  CHECK(st.integer(0) == 999);  // untouched
}

TEST_CASE("the catalog follows the recipes - vanished variants keep their history") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"pytorch-python313-cpu-avx2", "pytorch-python313-cuda13_0-sm90-avx512"})});
  auto variants = store.variants();
  REQUIRE(variants.size() == 2);
  CHECK(variants[1].axes.gpu_arch == "sm90");
  CHECK(variants[1].repo == "pytorch");
  int64_t id = queue(store, "pytorch-python313-cpu-avx2");

  store.sync_catalog({repo_with({"pytorch-python313-cuda13_0-sm90-avx512"})});
  CHECK(store.variants().size() == 1);
  CHECK(store.job(id)->variant == "pytorch-python313-cpu-avx2");  // history stays

  store.sync_catalog({repo_with({"pytorch-python313-cpu-avx2", "pytorch-python313-cuda13_0-sm90-avx512"})});
  CHECK(store.variants().size() == 2);
  CHECK(store.latest_job("pytorch-python313-cpu-avx2")->id == id);
}

TEST_CASE("one package in two repos: the first repo keeps it and a warning says so") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  RepoScan other = repo_with({"pytorch-python313-cpu-avx2"});
  other.name = "fork";
  auto warnings = store.sync_catalog({repo_with({"pytorch-python313-cpu-avx2"}), other});
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("'pytorch' and 'fork'") != std::string::npos);
  CHECK(store.variants().at(0).repo == "pytorch");
}

TEST_CASE("every state change is one event row - written with the change") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"pytorch-python313-cpu-avx2"})});
  int64_t id = queue(store, "pytorch-python313-cpu-avx2");

  auto step = [&](JobState from, JobState to, JobChange change, const char* detail) {
    auto tx = store.begin();
    bool ok = store.transition(tx, id, from, to, change, kT0, detail);
    tx.commit();
    return ok;
  };
  CHECK(step(JobState::queued, JobState::running, {.started_at = kT0, .attempt = 1}, "started"));
  CHECK(step(JobState::running, JobState::queued, {.clear_outcome = true}, "daemon stopped"));
  CHECK(step(JobState::queued, JobState::running, {.started_at = kT0, .attempt = 2}, "started"));
  CHECK(step(
      JobState::running, JobState::failed,
      {.finished_at = kT0, .exit_code = 1, .failure = Failure{"network", "download failed", "retry", "x"}},
      "failed"));
  // A transition from the wrong state changes nothing and writes no event.
  CHECK_FALSE(step(JobState::running, JobState::succeeded, {}, "late"));
  CHECK(step(JobState::failed, JobState::queued, {.clear_outcome = true}, "retry"));
  CHECK(step(JobState::queued, JobState::cancelled, {.finished_at = kT0}, "cancelled"));

  auto events = store.events(id);
  REQUIRE(events.size() == 7);
  CHECK_FALSE(events[0].from_state);
  CHECK(events[0].to_state == "queued");
  const char* expected[][2] = {{"queued", "running"}, {"running", "queued"}, {"queued", "running"},
                               {"running", "failed"}, {"failed", "queued"},  {"queued", "cancelled"}};
  for (size_t i = 0; i < 6; ++i) {
    CHECK(events[i + 1].from_state == expected[i][0]);
    CHECK(events[i + 1].to_state == expected[i][1]);
  }
  Job j = *store.job(id);
  CHECK(j.state == JobState::cancelled);
  CHECK(j.attempt == 2);
  CHECK_FALSE(j.failure);  // cleared by the retry
  CHECK(j.log_path == dir / "logs" + "/" + std::to_string(id) + ".log.zst");
}

TEST_CASE("a transaction rolled back leaves neither the job nor its event") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"pytorch-python313-cpu-avx2"})});
  {
    auto tx = store.begin();
    store.insert_job(tx, NewJob{"pytorch-python313-cpu-avx2"}, kT0);
    CHECK_THROWS_AS(store.insert_job(tx, NewJob{"no-such-variant"}, kT0), StoreError);
    // tx is destroyed without commit: all of it is rolled back
  }
  CHECK(store.recent_jobs(std::nullopt, 10).empty());
  CHECK(store.events(1).empty());
}

TEST_CASE("history queries: newest first - state filter - latest finished per variant") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"a-python313-cpu-avx2", "b-python313-cpu-avx2"})});
  int64_t a1 = queue(store, "a-python313-cpu-avx2");
  int64_t a2 = queue(store, "a-python313-cpu-avx2");
  int64_t b1 = queue(store, "b-python313-cpu-avx2");
  for (int64_t id : {a1, a2}) move_job(store, id, JobState::queued, JobState::succeeded);
  auto recent = store.recent_jobs(std::nullopt, 2);
  REQUIRE(recent.size() == 2);
  CHECK(recent[0].id == b1);
  CHECK(store.recent_jobs(JobState::succeeded, 10).size() == 2);
  auto finished = store.latest_finished({});
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].id == a2);
  CHECK(store.latest_finished({"b-python313-cpu-avx2"}).empty());
  CHECK(store.active_job("b-python313-cpu-avx2", JobKind::build, JobState::queued)->id == b1);
}

TEST_CASE(
    "status jobs: running, queued, latest finished - read again after every write but progress, not before") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"a-python313-cpu-avx2", "b-python313-cpu-avx2"})});
  int64_t a1 = queue(store, "a-python313-cpu-avx2");
  int64_t b1 = queue(store, "b-python313-cpu-avx2");
  int64_t a2 = queue(store, "a-python313-cpu-avx2");
  move_job(store, a1, JobState::queued, JobState::failed);
  move_job(store, b1, JobState::queued, JobState::running);
  auto ids = [](const std::vector<Job>& jobs) {
    std::vector<int64_t> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  };
  auto first = store.status_jobs();
  CHECK(ids(*first) == std::vector<int64_t>{b1, a2, a1});
  CHECK(store.status_jobs() == first);  // nothing written: the same snapshot, not read again
  // A running build's progress, written every second, is not read again for: `status` has it
  // from the scheduler. Any other write is.
  store.set_progress(b1, 5, 10);
  CHECK(store.status_jobs() == first);
  store.set_drv_path(b1, "/nix/store/aaaa-b.drv");
  auto second = store.status_jobs();
  REQUIRE(second != first);
  CHECK((*second)[0].progress_done == 5);
  {  // a write rolled back leaves what was read before it valid
    auto tx = store.begin();
    store.set_drv_path(b1, "/nix/store/bbbb-b.drv");
    CHECK((*store.status_jobs())[0].drv_path == "/nix/store/bbbb-b.drv");  // read inside: not kept
  }
  CHECK((*store.status_jobs())[0].drv_path == "/nix/store/aaaa-b.drv");
  move_job(store, a2, JobState::queued, JobState::cancelled);
  CHECK(ids(*store.status_jobs()) == std::vector<int64_t>{b1, a2});
}

TEST_CASE("typical durations: the median of a variant's recent successful builds") {
  testing::TempDir dir;
  Store store(dir / "ptbuild.db", dir / "logs");
  store.sync_catalog({repo_with({"a-python313-cpu-avx2"})});
  // Builds of 60, 120 and 600 seconds, and a failed one of 5 seconds that does not count.
  int minutes[][2] = {{0, 1}, {10, 12}, {20, 30}};
  for (auto [start, end] : minutes) {
    int64_t id = queue(store, "a-python313-cpu-avx2");
    auto at = [](int m) {
      return "2026-11-21T10:" + std::string(m < 10 ? "0" : "") + std::to_string(m) + ":00.000Z";
    };
    auto tx = store.begin();
    store.transition(tx, id, JobState::queued, JobState::succeeded,
                     {.started_at = at(start), .finished_at = at(end)}, kT0, "");
    tx.commit();
  }
  int64_t failed = queue(store, "a-python313-cpu-avx2");
  auto tx = store.begin();
  store.transition(tx, failed, JobState::queued, JobState::failed,
                   {.started_at = "2026-11-21T11:00:00.000Z", .finished_at = "2026-11-21T11:00:05.000Z"}, kT0,
                   "");
  tx.commit();
  auto durations = store.typical_durations();
  CHECK(durations.expected("a-python313-cpu-avx2", std::nullopt) == doctest::Approx(120.0));
  CHECK(durations.expected("never-built", std::string("a")) == doctest::Approx(120.0));  // its family's
  CHECK(durations.expected("never-built", std::string("other")) == -1);

  // A build that ends changes them (they are kept between asks), one rolled back does not.
  auto succeed = [&](int64_t id, const std::string& finished_at, bool commit) {
    auto t = store.begin();
    store.transition(t, id, JobState::queued, JobState::succeeded,
                     {.started_at = "2026-11-21T12:00:00.000Z", .finished_at = finished_at}, kT0, "");
    CHECK(store.typical_durations().by_variant.count("a-python313-cpu-avx2"));  // asked inside: not kept
    if (commit) t.commit();
  };
  succeed(queue(store, "a-python313-cpu-avx2"), "2026-11-21T13:00:00.000Z", false);
  CHECK(store.typical_durations().expected("a-python313-cpu-avx2", std::nullopt) == doctest::Approx(120.0));
  succeed(queue(store, "a-python313-cpu-avx2"), "2026-11-21T14:00:00.000Z", true);  // 2 hours
  succeed(queue(store, "a-python313-cpu-avx2"), "2026-11-21T14:00:00.000Z", true);
  CHECK(store.typical_durations().expected("a-python313-cpu-avx2", std::nullopt) == doctest::Approx(600.0));
}
