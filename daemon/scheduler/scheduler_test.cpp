// The scheduler with a fake runner: no processes, a real SQLite store.
#include "daemon/scheduler/scheduler_fixture.h"

using namespace ptbuild;
using namespace std::chrono_literals;
using ptbuild::testing::FakeRunner;
using ptbuild::testing::Fixture;
using ptbuild::testing::log_text;

TEST_CASE("scheduler: never more than max_parallel builds and the next starts when one ends") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"},
             {"b-python313-cpu-avx2", "pytorch"},
             {"c-python313-cpu-avx2", "pytorch"},
             {"d-python313-cpu-avx2", "pytorch"}});
  std::vector<int64_t> ids;
  for (const char* v :
       {"a-python313-cpu-avx2", "b-python313-cpu-avx2", "c-python313-cpu-avx2", "d-python313-cpu-avx2"})
    ids.push_back(f.queue(v));
  f.scheduler.poke();
  f.settle();
  CHECK(f.runner.live().size() == 2);
  CHECK(f.scheduler.summary().builders.front().running == 2);
  f.runner.live()[0]->exit(0);
  f.settle();
  CHECK(f.runner.builds.size() == 3);
  CHECK(f.runner.live().size() == 2);
  while (!f.runner.live().empty()) {
    f.runner.live()[0]->exit(0);
    f.settle();
    CHECK(f.runner.live().size() <= 2);
  }
  for (int64_t id : ids) CHECK(f.state(id) == JobState::succeeded);
  CHECK(f.scheduler.summary().builders.front().running == 0);
  // The nix backend's exact command (docs/backends.md).
  const BuildCommand& cmd = f.runner.builds[0]->command;
  CHECK(cmd.argv[0] == "nix");
  CHECK(cmd.argv[1] == "--extra-experimental-features");
  CHECK(cmd.argv[3] == "build");
  CHECK(cmd.result_link == f.dir / "results/a-python313-cpu-avx2");
}

TEST_CASE("scheduler: higher priority starts first and max_parallel from a reload applies") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"},
             {"b-python313-cpu-avx2", "pytorch"},
             {"c-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.max_parallel = 1;
  f.scheduler.reconfigure();
  int64_t low = f.queue("a-python313-cpu-avx2", 0);
  int64_t high = f.queue("b-python313-cpu-avx2", 10);
  f.scheduler.poke();
  f.settle();
  CHECK(f.state(high) == JobState::running);
  CHECK(f.state(low) == JobState::queued);
  f.config.daemon.max_parallel = 3;
  f.scheduler.reconfigure();
  f.queue("c-python313-cpu-avx2", 0);
  f.scheduler.poke();
  f.settle();
  CHECK(f.runner.live().size() == 3);
}

TEST_CASE("scheduler: events record every transition of a build") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.finish_live("[1/2] cc a.o\n[2/2] cc b.o\n", 0);
  auto events = f.store.events(id);
  REQUIRE(events.size() == 3);
  CHECK(events[1].to_state == "running");
  CHECK(events[2].to_state == "succeeded");
  Job j = *f.store.job(id);
  CHECK(j.attempt == 1);
  CHECK(j.exit_code == 0);
  CHECK(j.progress_done == 2);
  CHECK(j.progress_total == 2);
  CHECK(log_text(j.log_path).find("[2/2] cc b.o") != std::string::npos);
}

TEST_CASE("scheduler: a failed build carries its diagnosis") {
  Fixture f({{"pytorch-python313-cuda13_0-sm90-avx512", "pytorch"}});
  int64_t id = f.queue("pytorch-python313-cuda13_0-sm90-avx512");
  f.scheduler.poke();
  f.settle();
  f.runner.live()[0]->output(
      "-- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR)\n--   USE_CUDA : OFF\n");
  f.runner.live()[0]->exit(0);  // "succeeded" with CUDA off: still a failure
  f.settle();
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  REQUIRE(j.failure);
  CHECK(j.failure->failure_class == "cuda_not_found");
  CHECK(j.failure->hint.find("cudaSupport = true") != std::string::npos);
}

TEST_CASE("scheduler: a build that exits 0 without an output has failed") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.runner.live()[0]->leaves_result = false;
  f.runner.live()[0]->exit(0);
  f.settle();
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.failure->message.find("left no result") != std::string::npos);
}

TEST_CASE("scheduler: longest-first starts the variant with the longest recorded builds") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}, {"b-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.max_parallel = 1;
  f.scheduler.reconfigure();
  // History: a takes a minute, b an hour.
  for (auto [variant, end] : {std::pair{"a-python313-cpu-avx2", "2026-01-01T00:01:00.000Z"},
                              std::pair{"b-python313-cpu-avx2", "2026-01-01T01:00:00.000Z"}}) {
    int64_t old = f.queue(variant);
    auto tx = f.store.begin();
    f.store.transition(tx, old, JobState::queued, JobState::succeeded,
                       {.started_at = "2026-01-01T00:00:00.000Z", .finished_at = end}, end, "");
    tx.commit();
  }
  int64_t a = f.queue("a-python313-cpu-avx2");
  int64_t b = f.queue("b-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  CHECK(f.state(b) == JobState::running);
  CHECK(f.state(a) == JobState::queued);
  f.config.daemon.order = "fifo";
  f.runner.live()[0]->exit(0);
  f.settle();
  CHECK(f.state(a) == JobState::running);
}

TEST_CASE("scheduler: cancel a queued job and a running one") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"},
             {"b-python313-cpu-avx2", "pytorch"},
             {"c-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.max_parallel = 1;
  f.scheduler.reconfigure();
  int64_t running = f.queue("a-python313-cpu-avx2");
  int64_t queued = f.queue("b-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  CHECK(f.scheduler.cancel(queued, "uid 0") == Scheduler::CancelOutcome::cancelled);
  CHECK(f.state(queued) == JobState::cancelled);
  CHECK(f.scheduler.cancel(running, "uid 0") == Scheduler::CancelOutcome::stopping);
  CHECK(f.runner.live()[0]->terminated == 1);
  f.runner.live()[0]->exit(143);
  f.settle();
  Job j = *f.store.job(running);
  CHECK(j.state == JobState::cancelled);
  CHECK(j.failure->failure_class == "cancelled");
  CHECK(f.scheduler.cancel(running, "uid 0") == Scheduler::CancelOutcome::already_finished);
}

TEST_CASE("scheduler: a build that ignores SIGTERM is killed after kill_grace") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.kill_grace = 20ms;
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  f.scheduler.cancel(id, "uid 0");
  auto build = f.runner.live()[0];
  CHECK(f.run_until([&] { return build->killed > 0; }));
  build->exit(137);
  f.settle();
  CHECK(f.state(id) == JobState::cancelled);
}

TEST_CASE("scheduler: build_timeout and max_silent fail the job with class timeout") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}, {"b-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.build_timeout = 50ms;
  f.config.daemon.max_silent = 1h;
  int64_t whole = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  auto b1 = f.runner.live()[0];
  CHECK(f.run_until([&] { return b1->terminated > 0; }));
  b1->exit(143);
  f.settle();
  Job j1 = *f.store.job(whole);
  CHECK(j1.failure->failure_class == "timeout");
  CHECK(j1.failure->message.find("build_timeout") != std::string::npos);

  f.config.daemon.build_timeout = 1h;
  f.config.daemon.max_silent = 60ms;
  int64_t silent = f.queue("b-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  auto b2 = f.runner.live()[0];
  // Output keeps it alive; silence stops it.
  for (int i = 0; i < 4; ++i) {
    b2->output("still working\n");
    f.run_until([] { return false; }, 20ms);
  }
  CHECK(b2->terminated == 0);
  CHECK(f.run_until([&] { return b2->terminated > 0; }));
  b2->exit(143);
  f.settle();
  Job j2 = *f.store.job(silent);
  CHECK(j2.failure->failure_class == "timeout");
  CHECK(j2.failure->message.find("max_silent") != std::string::npos);
}

TEST_CASE("scheduler: a download failure is retried with back-off, then fails") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  f.config.daemon.retries = 2;
  f.config.daemon.retry_backoff = 10ms;
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  for (int round = 0; round < 3; ++round) {
    REQUIRE(f.run_until([&] { return f.runner.live().size() == 1; }));
    f.runner.live()[0]->output(
        "curl: (6) Could not resolve host: github.com\nerror: cannot download source\n");
    f.runner.live()[0]->exit(1);
    f.settle();
  }
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.attempt == 3);
  CHECK(j.failure->failure_class == "network");
  CHECK(f.runner.builds.size() == 3);
}

TEST_CASE("scheduler: a back-off is waited out on the scheduler's clock, not the machine's") {
  ManualClock clock;
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}}, &clock);
  f.config.daemon.retries = 2;
  f.config.daemon.retry_backoff = std::chrono::hours(1);
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  REQUIRE(f.runner.live().size() == 1);
  f.runner.live()[0]->output("curl: (6) Could not resolve host: github.com\nerror: cannot download source\n");
  f.runner.live()[0]->exit(1);
  f.settle();
  CHECK(f.state(id) == JobState::queued);
  REQUIRE(f.scheduler.waiting(id));
  CHECK(f.scheduler.waiting(id)->starts_with(
      "back-off until " + format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(
                              clock.wall() + std::chrono::hours(1)))));
  clock.advance(std::chrono::minutes(59));
  f.scheduler.poke();
  f.settle();
  CHECK(f.runner.live().empty());  // an hour has not passed on its clock
  clock.advance(std::chrono::minutes(1));
  f.scheduler.poke();
  f.settle();
  CHECK(f.runner.live().size() == 1);
  CHECK(f.state(id) == JobState::running);
  CHECK(f.store.job(id)->attempt == 2);
}

TEST_CASE("scheduler: a cancel while the recipe is read stops the job before anything runs") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  // The dispatch and the reading of the recipe are two turns of the loop: cancel between them.
  f.io.restart();
  f.io.run_one();
  CHECK(f.state(id) == JobState::running);
  CHECK(f.scheduler.cancel(id, "test") == Scheduler::CancelOutcome::stopping);
  f.settle();
  CHECK(f.state(id) == JobState::cancelled);
  CHECK(f.runner.builds.empty());
  CHECK(f.store.job(id)->failure->message == "cancelled by test");
}

TEST_CASE("scheduler: a program that cannot start fails the job and says why") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}});
  f.runner.fail_to_start = true;
  int64_t id = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  Job j = *f.store.job(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.failure->message.find("No such file or directory") != std::string::npos);
  CHECK(f.scheduler.summary().builders.front().running == 0);
}

TEST_CASE("scheduler: shutdown requeues running builds and recover requeues what a crash left") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}, {"b-python313-cpu-avx2", "pytorch"}});
  int64_t a = f.queue("a-python313-cpu-avx2");
  int64_t b = f.queue("b-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  bool stopped = false;
  f.scheduler.shutdown([&] { stopped = true; });
  f.settle();
  CHECK_FALSE(stopped);
  for (auto& build : f.runner.live()) {
    CHECK(build->terminated == 1);
    build->exit(143);
  }
  f.settle();
  CHECK(stopped);
  CHECK(f.state(a) == JobState::queued);
  CHECK(f.state(b) == JobState::queued);

  // A crash: the store says running, no scheduler knows of it.
  {
    auto tx = f.store.begin();
    f.store.transition(tx, a, JobState::queued, JobState::running, {.attempt = 1}, "2026-01-01T00:00:00.000Z",
                       "");
    tx.commit();
  }
  Scheduler fresh(f.io, f.store, f.config, f.runner);
  fresh.recover();
  CHECK(f.state(a) == JobState::queued);
  CHECK(f.store.events(a).back().detail.find("restarted") != std::string::npos);
}

TEST_CASE("scheduler: pause holds new builds and drain reports when the last one ends") {
  Fixture f({{"a-python313-cpu-avx2", "pytorch"}, {"b-python313-cpu-avx2", "pytorch"}});
  f.scheduler.pause();
  int64_t a = f.queue("a-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  CHECK(f.state(a) == JobState::queued);
  f.scheduler.resume();
  f.settle();
  CHECK(f.state(a) == JobState::running);
  bool drained = false;
  f.scheduler.drain([&] { drained = true; });
  f.queue("b-python313-cpu-avx2");
  f.scheduler.poke();
  f.settle();
  CHECK(f.runner.live().size() == 1);
  CHECK_FALSE(drained);
  f.runner.live()[0]->exit(0);
  f.settle();
  CHECK(drained);
}

TEST_CASE("scheduler: a torchvision build waits for pytorch of the same axes") {
  Fixture f({{"pytorch-python313-cuda13_0-sm90-avx512", "pytorch"},
             {"torchvision-python313-cuda13_0-sm90-avx512", "torchvision"},
             {"torchvision-python313-cuda13_0-sm120-avx512", "torchvision"}});
  f.config.repos[1].after = "pytorch";
  f.config.repos[2].after = "pytorch";
  int64_t tv90 = f.queue("torchvision-python313-cuda13_0-sm90-avx512", 10);
  int64_t tv120 = f.queue("torchvision-python313-cuda13_0-sm120-avx512");
  int64_t pt90 = f.queue("pytorch-python313-cuda13_0-sm90-avx512");
  f.scheduler.poke();
  f.settle();
  CHECK(f.state(tv90) == JobState::queued);  // despite its priority
  CHECK(f.state(tv120) == JobState::running);
  CHECK(f.state(pt90) == JobState::running);
  for (auto& b : f.runner.live()) b->exit(0);
  f.settle();
  CHECK(f.state(tv90) == JobState::running);
}
