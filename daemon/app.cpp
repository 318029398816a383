#include "daemon/app.h"

#include <set>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "daemon/runner/async_command.h"
#include "daemon/runner/off_loop.h"
#include "daemon/notify.h"
#include "local/recipes.h"
#include "daemon/runner/build_log.h"
#include "daemon/runner/process_runner.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/server/ops.h"
#include "daemon/server/server.h"
#include "daemon/web/web_server.h"
#include "daemon/store/store.h"
#include "daemon/system.h"

namespace ptbuild {

namespace asio = boost::asio;

namespace {

constexpr int kExitNeedsOperator = 78;  // EX_CONFIG: RestartPreventExitStatus= in the unit
constexpr auto kDatabaseCheck = std::chrono::seconds(2);

// Scans every repo's recipes into the catalog. Returns the repos that could not be read (a mount
// not there yet): their variants are absent meanwhile and their jobs wait for them.
// `last` is what the previous scan found: when nothing changed, the database is not written.
std::vector<std::string> rescan(Store& store, const Config& config, std::string* last = nullptr) {
  std::vector<RepoScan> scans;
  std::vector<std::string> missing;
  std::string seen;
  for (const RepoConfig& repo : config.repos) {
    RecipeScan scan = scan_recipes(repo.path, repo.recipes);
    if (!scan.error.empty()) {
      if (!last) spdlog::error("repo '{}': {}; its jobs wait for it", repo.name, scan.error);
      missing.push_back(repo.name);
    }
    seen += repo.name + "\n" + repo.path + "\n" + scan.error + "\n";
    for (const Recipe& r : scan.recipes) seen += r.package + " " + r.file + "\n";
    scans.push_back({repo.name, repo.path, repo.recipes, std::move(scan.recipes)});
  }
  if (last) {
    if (seen == *last) return missing;
    if (!last->empty()) spdlog::info("the recipes changed on disk: the matrix follows");
    *last = seen;
  }
  for (const std::string& w : store.sync_catalog(scans)) spdlog::warn("{}", w);
  size_t total = 0;
  for (const RepoScan& s : scans) total += s.recipes.size();
  spdlog::info("matrix: {} variants in {} repos", total, scans.size());
  return missing;
}

// While a repo is missing, look again every few seconds; when it is back, its jobs can start.
constexpr auto kMissingRepoRecheck = std::chrono::seconds(5);
constexpr auto kRecipeFollow = std::chrono::seconds(5);

// GET /metrics: the database's counts and the scheduler's builders, read on the loop.
MetricsSnapshot metrics_snapshot(Store& store, Scheduler& scheduler) {
  MetricsSnapshot m;
  store.fill_metrics(m);
  for (const Scheduler::BuilderSummary& b : scheduler.summary().builders)
    m.builders.push_back({b.spec.name, b.running, b.spec.max_jobs, b.state == "up"});
  m.log_bytes_written = BuildLog::bytes_taken_total();
  return m;
}

}  // namespace

int run_daemon(const DaemonOptions& options, Config config) {
  for (const std::string& dir : {config.daemon.state_dir, config.logs_dir(), config.results_dir()})
    if (std::string err = make_dirs(dir, 0750); !err.empty()) {
      spdlog::critical("{}", err);
      return 1;
    }
  if (std::string err = check_state_owner(config.daemon.state_dir); !err.empty()) {
    spdlog::critical("{}", err);
    return 1;
  }
  LockResult lock = lock_state_dir(config.daemon.state_dir);
  if (lock.fd < 0) {
    spdlog::critical("{}", lock.error);
    return 1;
  }

  std::optional<Store> store;
  asio::io_context io;
  ProcessRunner runner(io);
  std::optional<Scheduler> scheduler_slot;
  // Every start-up failure of the state database ends here in one line that names the file and
  // what to do. A damaged or read-only database needs an operator: exit 78 (EX_CONFIG), which
  // the unit does not restart; a lock or a full disk may pass, so systemd may try again.
  try {
    store.emplace(config.db_path(), config.logs_dir());
    std::vector<std::string> missing = rescan(*store, config);
    scheduler_slot.emplace(io, *store, config, runner);
    scheduler_slot->set_missing_repos(std::move(missing));
    scheduler_slot->recover();
  } catch (const StoreError& e) {
    spdlog::critical("cannot use the state database: {}", e.what());
    return e.kind == StoreError::Kind::transient ? 1 : kExitNeedsOperator;
  } catch (const sql::Error& e) {
    spdlog::critical("cannot use the state database: {}: {} — {}", config.db_path(), e.what(),
                     sql::advice(e.code, config.db_path()));
    return sql::is_transient(e.code) ? 1 : kExitNeedsOperator;
  }
  Scheduler& scheduler = *scheduler_slot;
  scheduler.check_builders();
  if (std::string warning = builds_priority_warning(); !warning.empty()) spdlog::warn("{}", warning);

  // The catalog follows the repos; one that is missing (not mounted yet) is looked for again
  // every few seconds, and its jobs start once it is back.
  asio::steady_timer recheck(io);
  std::function<void()> refresh_catalog = [&] {
    std::vector<std::string> missing = rescan(*store, config);
    bool any_missing = !missing.empty();
    scheduler.set_missing_repos(std::move(missing));
    if (!any_missing) return;
    recheck.expires_after(kMissingRepoRecheck);
    recheck.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      refresh_catalog();
      scheduler.poke();
    });
  };

  // Which recipes git tracks (flox refuses the others): asked of git (a command, so
  // asynchronously) whenever the recipes changed; the matrix marks the untracked ones.
  std::map<std::string, bool> git_tracked;  // variant -> tracked, for repos that are git checkouts
  auto check_tracked = [&] {
    for (const RepoConfig& repo : config.repos) {
      BuildCommand ls{{"git", "-C", repo.path, "ls-files", "-z", "--", repo.recipes}, repo.path, ""};
      run_async(io, runner, ls, std::chrono::seconds(60), [&, name = repo.name](AsyncResult r) {
        if (r.exit_code != 0) return;  // no git checkout: nothing to say
        std::set<std::string> files;
        for (size_t start = 0, end; (end = r.output.find('\0', start)) != std::string::npos; start = end + 1)
          files.insert(r.output.substr(start, end - start));
        for (const VariantRecord& v : store->variants())
          if (v.repo == name) {
            bool tracked = files.count(v.recipe) > 0;
            auto [it, fresh] = git_tracked.insert_or_assign(v.name, tracked);
            if (!tracked && (fresh || it->second != tracked))
              spdlog::warn("{}: its recipe {} is not tracked by git: flox refuses to build it (git add it)",
                           v.name, v.recipe);
          }
      });
    }
  };

  // Recipes added or deleted in a repo (a git pull, an edit) show in the matrix within seconds,
  // without a SIGHUP: the folders are listed again (no command runs), the database written only
  // when something changed.
  asio::steady_timer follow(io);
  std::string last_scan;
  scheduler.set_missing_repos(rescan(*store, config, &last_scan));
  check_tracked();
  std::function<void()> follow_repos = [&] {
    follow.expires_after(kRecipeFollow);
    follow.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      std::string before = last_scan;
      scheduler.set_missing_repos(rescan(*store, config, &last_scan));
      if (last_scan != before) {
        check_tracked();
        scheduler.poke();
      }
      follow_repos();
    });
  };
  follow_repos();

  std::function<void()> exit_daemon;  // set below, once the server exists
  auto plan = [&](std::vector<std::string> targets,
                  std::function<Resolution(const std::vector<std::string>&)> resolve,
                  std::function<void(size_t, size_t)> progress, std::function<void(NightlyPlan)> done) {
    plan_nightly(
        {io, runner, *store, config, [&] { refresh_catalog(); }, std::move(resolve), std::move(progress)},
        std::move(targets), std::move(done));
  };
  OffLoop ops_off_loop(io);
  Ops ops(OpsContext{*store, config, scheduler, [&] { exit_daemon(); }, plan,
                     [&](const std::string& variant) {
                       return git_tracked.count(variant) ? std::optional<bool>(git_tracked.at(variant))
                                                         : std::nullopt;
                     },
                     system_clock(), ops_off_loop});
  Dispatch dispatch = [&ops](const protocol::Request& req, const Caller& caller,
                             const std::shared_ptr<Channel>& channel) {
    return ops.handle(req, caller, channel);
  };
  Server server(io, dispatch);
  if (std::string err = server.listen(config.daemon.socket, config.daemon.admin_group); !err.empty()) {
    spdlog::critical("{}", err);
    return 1;
  }
  spdlog::info("ptbuildd {} listening on {} (state in {}, backend {})", PTBUILD_VERSION, config.daemon.socket,
               config.daemon.state_dir, config.backend.kind);

  // The dashboard is a window on the daemon, not part of its work: when its port is taken the
  // builds go on and the log says why there is no page.
  WebServer web(io, dispatch, [&] { return render_prometheus(metrics_snapshot(*store, scheduler)); });
  if (!config.web.listen.empty()) {
    auto at = std::get<web::ListenAddress>(web::parse_listen(config.web.listen));  // checked with the config
    if (std::string err = web.listen(at); !err.empty())
      spdlog::error("web dashboard off: {} (set [web] listen, or \"\" to turn it off)", err);
    else
      spdlog::info("web dashboard on http://{}:{}/",
                   at.host.find(':') == std::string::npos ? at.host : "[" + at.host + "]", web.port());
  }

  exit_daemon = [&] {
    sd_notify("STOPPING=1");
    server.stop();
    web.stop();
    io.stop();
  };
  int exit_code = 0;
  auto stop_gracefully = [&] {
    sd_notify("STOPPING=1");
    server.stop();
    web.stop();
    scheduler.shutdown([&] { io.stop(); });
  };
  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("signal {}: stopping; running builds go back to the queue", signo);
    stop_gracefully();
  });

  // The database file is watched: deleted under the daemon, it is written back from the open
  // connection; replaced by another file, the daemon stops rather than mix two histories.
  asio::steady_timer watch_db(io);
  std::function<void()> check_db = [&] {
    watch_db.expires_after(kDatabaseCheck);
    watch_db.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      Store::FileCheck file = Store::FileCheck::same;
      try {
        file = store->check_file();
      } catch (const std::exception& e) {  // writing it back failed (disk full, no descriptors): next time
        spdlog::error("{} is gone and could not be written back yet: {}", config.db_path(), e.what());
      }
      switch (file) {
        case Store::FileCheck::same:
          break;
        case Store::FileCheck::restored:
          spdlog::error(
              "{} was deleted while ptbuildd ran; written back from the open database, nothing lost",
              config.db_path());
          break;
        case Store::FileCheck::replaced:
          spdlog::critical(
              "{} was replaced by another file while ptbuildd ran; stopping (the running builds go "
              "back to the queue of the database they came from); start ptbuildd again to use the new one",
              config.db_path());
          exit_code = kExitNeedsOperator;
          stop_gracefully();
          return;
      }
      check_db();
    });
  };
  check_db();

  asio::signal_set reload_signal(io, SIGHUP);
  std::function<void()> wait_reload = [&] {
    reload_signal.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      ConfigResult fresh = load_config(options.config_path);
      if (auto* err = std::get_if<ConfigError>(&fresh)) {
        spdlog::error("reload refused, keeping the running config: {}", err->message);
      } else {
        Config next = std::get<Config>(std::move(fresh));
        if (next.daemon.socket != config.daemon.socket || next.daemon.state_dir != config.daemon.state_dir)
          spdlog::warn("reload: socket and state_dir changes take effect at the next start");
        next.daemon.socket = config.daemon.socket;
        next.daemon.state_dir = config.daemon.state_dir;
        config = std::move(next);
        server.set_admin_group(config.daemon.admin_group);
        scheduler.reconfigure();
        spdlog::info("reloaded config from {}", config.source);
      }
      refresh_catalog();
      scheduler.poke();
      sd_notify("READY=1\nSTATUS=reloaded");
      wait_reload();
    });
  };
  wait_reload();

  refresh_catalog();  // arms the recheck if a repo was missing at start
  scheduler.poke();
  sd_notify("READY=1\nSTATUS=serving " + config.daemon.socket);
  // A handler that throws (the database locked by another process for too long, say) must not
  // take the daemon down: log it and keep serving. What it left undone is found again at the
  // next start, as after a crash.
  while (true) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("event loop: {}", e.what());
    }
  }
  ::close(lock.fd);
  spdlog::info("stopped");
  return exit_code;
}

}  // namespace ptbuild
