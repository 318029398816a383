// The scheduler's unit-test fixture: a fake runner (no processes), a real SQLite store, the
// loop driven by hand. Shared by the scheduler's two test files.
#pragma once

#include "daemon/scheduler/scheduler.h"
#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include "core/clock.h"
#include "core/hash.h"
#include "core/text.h"
#include "daemon/command.h"
#include "daemon/log_reader.h"
#include "daemon/store/store.h"
#include "tests/support/fake_runner.h"
#include "tests/support/temp_dir.h"

namespace ptbuild::testing {

using namespace std::chrono_literals;

inline std::string log_text(const std::string& path) {
  std::string out;
  for (const std::string& chunk : read_log(path, 0)) out += chunk;
  return out;
}

struct Fixture {
  testing::TempDir dir;
  Config config;
  boost::asio::io_context io;
  Store store{dir / "ptbuild.db", dir / "logs"};
  FakeRunner runner;
  Clock* clock;                       // nullptr: the system's
  std::optional<MachineFacts> facts;  // this machine's, as the scheduler reads them (none: slots only)
  // Blocking work (reading recipes) runs at once, so that settle() sees its result.
  Scheduler scheduler{io,
                      store,
                      config,
                      runner,
                      {.clock = clock,
                       .blocking_work_inline = true,
                       .local_facts = [this] { return facts; },
                       .build_cgroups = false}};

  explicit Fixture(std::initializer_list<std::pair<const char*, const char*>> variants, Clock* c = nullptr)
      : clock(c) {
    std::filesystem::create_directories(dir / "logs");
    config.daemon.state_dir = dir.path();
    config.backend = {"nix", "nix", {}};
    config.verify.enabled = false;         // the verification tests turn it on
    scheduler.set_source_lister(nullptr);  // the fake runner builds nothing: no sources to realise first
    std::map<std::string, RepoScan> repos;
    for (auto [name, repo] : variants) {
      RepoScan& r = repos[repo];
      r.name = repo;
      r.path = dir / repo;
      r.recipes_dir = ".flox/pkgs";
      r.recipes.push_back({name, std::string(".flox/pkgs/") + name + ".nix"});
      config.repos.push_back({repo, r.path});
    }
    std::vector<RepoScan> scans;
    for (auto& [_, r] : repos) scans.push_back(r);
    store.sync_catalog(scans);
  }

  int64_t queue(const std::string& variant, int priority = 0) {
    auto tx = store.begin();
    Job j = store.insert_job(tx, NewJob{variant, JobKind::build, priority, "test", false},
                             "2026-01-01T00:00:00.000Z");
    tx.commit();
    return j.id;
  }
  // Runs the loop until nothing is ready to run right now.
  void settle() {
    io.restart();
    io.poll();
  }
  // Runs the loop until `done` holds, for at most `limit` (timers need real time to pass).
  template <class F>
  bool run_until(F done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(5ms);
    }
    return done();
  }
  JobState state(int64_t id) { return store.job(id)->state; }
  // The one build that runs prints `output` and exits with `code`; then the loop settles.
  void finish_live(const std::string& output, int code) {
    REQUIRE(runner.live().size() == 1);
    auto build = runner.live()[0];
    if (!output.empty()) build->output(output);
    build->exit(code);
    settle();
    // A hash mismatch is repaired on the repair thread: wait for its answer.
    run_until([&] { return !scheduler.repairing(); });
    settle();
  }
};

}  // namespace ptbuild::testing
