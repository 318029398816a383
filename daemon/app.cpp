#include "daemon/app.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/bisect/bisector.h"
#include "daemon/provenance/provenance.h"
#include "daemon/notifier/alerts.h"
#include "daemon/notifier/notifier.h"
#include "daemon/notify.h"
#include "daemon/runner/async_command.h"
#include "daemon/resources/gc.h"
#include "daemon/runner/build_log.h"
#include "daemon/runner/off_loop.h"
#include "daemon/runner/process_runner.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/server/ops.h"
#include "daemon/server/server.h"
#include "daemon/store/store.h"
#include "daemon/system.h"
#include "daemon/web/web_server.h"
#include "local/recipes.h"

namespace ptbuild {

namespace asio = boost::asio;

namespace {

constexpr int kExitNeedsOperator = 78;  // EX_CONFIG: RestartPreventExitStatus= in the unit
constexpr auto kDatabaseCheck = std::chrono::seconds(2);
// Recipes added or deleted in a repo (a git pull, an edit), or a repo that comes back (a mount),
// show in the matrix within seconds, without a SIGHUP.
constexpr auto kRecipeFollow = std::chrono::seconds(5);

// What the recipe folders hold now: read off the loop (a repo may be on a hung network mount).
struct CatalogScan {
  std::vector<RepoScan> scans;
  std::vector<std::string> missing;  // repos whose folder could not be read: their jobs wait
  std::vector<std::string> errors;
  std::string seen;  // everything found, to tell whether anything changed
};

CatalogScan scan_catalog(const std::vector<RepoConfig>& repos) {
  CatalogScan out;
  for (const RepoConfig& repo : repos) {
    RecipeScan scan = scan_recipes(repo.path, repo.recipes);
    if (!scan.error.empty()) {
      out.missing.push_back(repo.name);
      out.errors.push_back("repo '" + repo.name + "': " + scan.error + "; its jobs wait for it");
    }
    out.seen += repo.name + "\n" + repo.path + "\n" + scan.error + "\n";
    for (const Recipe& r : scan.recipes) out.seen += r.package + " " + r.file + "\n";
    out.scans.push_back({repo.name, repo.path, repo.recipes, std::move(scan.recipes)});
  }
  return out;
}

// GET /metrics: the database's counts and the scheduler's builders, read on the loop.
MetricsSnapshot metrics_snapshot(Store& store, Scheduler& scheduler) {
  MetricsSnapshot m;
  store.fill_metrics(m);
  Scheduler::Summary summary = scheduler.summary();
  for (const Scheduler::BuilderSummary& b : summary.builders) {
    MetricsSnapshot::Builder one{b.spec.name, b.running, b.spec.max_jobs, b.state == "up"};
    if (b.facts) {
      one.facts = true;
      one.memory_total = memory_total_of(*b.facts, b.spec.limits);
      one.memory_available = std::min(b.facts->memory_available, one.memory_total);
      one.memory_committed = b.committed;
      one.store_free = b.facts->store_free;
      one.build_dir_free = b.facts->build_dir_free;
    }
    m.builders.push_back(one);
  }
  m.oom_kills = summary.oom_kills;
  m.gc_freed_bytes = gc_freed_total();
  m.log_bytes_written = BuildLog::bytes_taken_total();
  return m;
}

// The state folder exists, is ours, and no other ptbuildd uses it; the lock's descriptor or -1.
int claim_state_dir(const Config& config) {
  for (const std::string& dir : {config.daemon.state_dir, config.logs_dir(), config.results_dir()})
    if (std::string err = make_dirs(dir, 0750); !err.empty()) {
      spdlog::critical("{}", err);
      return -1;
    }
  if (std::string err = check_state_owner(config.daemon.state_dir); !err.empty()) {
    spdlog::critical("{}", err);
    return -1;
  }
  LockResult lock = lock_state_dir(config.daemon.state_dir);
  if (lock.fd < 0) spdlog::critical("{}", lock.error);
  return lock.fd;
}

// ptbuildd's parts on one event loop, built and started in the order run_daemon() reads.
class App {
 public:
  App(const DaemonOptions& options, Config config)
      : options_(options),
        config_(std::move(config)),
        runner_(io_),
        off_loop_(io_),
        stop_signals_(io_, SIGTERM, SIGINT),
        reload_signal_(io_, SIGHUP),
        follow_(io_),
        watch_db_(io_) {}

  // The database, the catalog as it is now, and the scheduler with what a crash left. A damaged
  // or read-only database needs an operator: 78 (EX_CONFIG), which the unit does not restart; a
  // lock or a full disk may pass, so systemd may try again. 0 when all is well.
  int open_state() {
    try {
      store_.emplace(config_.db_path(), config_.logs_dir());
      finish_interrupted_repairs();
      CatalogScan scan = scan_catalog(config_.repos);  // before the loop runs: nothing waits on it
      scheduler_.emplace(io_, *store_, config_, runner_);
      notifier_.emplace(io_, off_loop_, system_clock());
      notifier_->configure(config_.notify);
      alerts_.emplace(io_, *store_, *scheduler_, off_loop_, *notifier_, system_clock(), config_);
      bisector_.emplace(*store_, *scheduler_, off_loop_, system_clock(), config_);
      provenance_.emplace(*store_, *scheduler_, off_loop_, config_);
      apply(std::move(scan), true);
      scheduler_->recover();
    } catch (const StoreError& e) {
      spdlog::critical("cannot use the state database: {}", e.what());
      return e.kind == StoreError::Kind::transient ? 1 : kExitNeedsOperator;
    } catch (const sql::Error& e) {
      spdlog::critical("cannot use the state database: {}: {} — {}", config_.db_path(), e.what(),
                       sql::advice(e.code, config_.db_path()));
      return sql::is_transient(e.code) ? 1 : kExitNeedsOperator;
    }
    if (std::string warning = builds_priority_warning(); !warning.empty()) spdlog::warn("{}", warning);
    return 0;
  }

  // Hash repairs that a stop (kill -9 included) cut between writing a recipe and recording it:
  // what is in the recipes is committed (hashfix.commit) and goes into the history, once. Before
  // the loop runs: git may take a moment, and nothing builds until the history is whole.
  void finish_interrupted_repairs() {
    std::vector<Store::HashFixRecord> known = store_->hash_fixes();
    for (const InterruptedRepair& r :
         ptbuild::finish_interrupted_repairs(repair_journal_dir(config_.daemon.state_dir))) {
      auto tx = store_->begin();
      int added = 0;
      for (const HashFix& fx : r.written) {
        bool recorded = std::any_of(known.begin(), known.end(), [&](const Store::HashFixRecord& k) {
          return k.job_id == r.job_id && k.file == fx.file && k.line == fx.line && k.new_hash == fx.new_text;
        });
        if (recorded) continue;
        store_->add_hash_fix(tx, {0, r.job_id, r.variant, fx.drv, fx.file, fx.line, fx.old_text, fx.new_text,
                                  system_clock().rfc3339()});
        ++added;
      }
      tx.commit();
      spdlog::warn("job #{} {}: a hash repair cut short by a stop was finished: {}; {} recorded now",
                   r.job_id, r.variant, r.message, added);
      std::error_code ignored;
      std::filesystem::remove(r.journal, ignored);
    }
  }

  // The socket the clients use and the dashboard; false when the socket cannot listen.
  bool serve() {
    ops_.emplace(
        OpsContext{*store_, config_, *scheduler_, [this] { exit_now(); },
                   [this](auto targets, auto resolve, auto progress, auto done) {
                     plan_nightly({io_, runner_, off_loop_, *store_, config_,
                                   [this](std::function<void()> then) { refresh_catalog(std::move(then)); },
                                   std::move(resolve), std::move(progress)},
                                  std::move(targets), std::move(done));
                   },
                   [this](const std::string& variant) {
                     auto it = git_tracked_.find(variant);
                     return it == git_tracked_.end() ? std::nullopt : std::optional<bool>(it->second);
                   },
                   system_clock(), off_loop_, nullptr, &*notifier_, &*bisector_});
    Dispatch dispatch = [this](const protocol::Request& req, const Caller& caller,
                               const std::shared_ptr<Channel>& channel) {
      return ops_->handle(req, caller, channel);
    };
    server_.emplace(io_, dispatch);
    if (std::string err = server_->listen(config_.daemon.socket, config_.daemon.admin_group); !err.empty()) {
      spdlog::critical("{}", err);
      return false;
    }
    spdlog::info("ptbuildd {} listening on {} (state in {}, backend {})", PTBUILD_VERSION,
                 config_.daemon.socket, config_.daemon.state_dir, config_.backend.kind);
    dispatch_ = dispatch;
    listen_web();
    return true;
  }

  // The repos, the signals and the database file are watched from now on.
  void watch() {
    scheduler_->check_builders();  // after the socket listens: a thousand probes take a while
    alerts_->start();
    bisector_->start();
    provenance_->start();
    follow_repos();
    stop_signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      spdlog::info("signal {}: stopping; running builds go back to the queue", signo);
      stop_gracefully();
    });
    wait_reload();
    check_db();
  }

  // Serves until stopped. A handler that throws (the database locked by another process for too
  // long, say) must not take the daemon down: log it and keep serving. What it left undone is
  // found again at the next start, as after a crash.
  int run() {
    scheduler_->poke();
    sd_notify("READY=1\nSTATUS=serving " + config_.daemon.socket);
    while (true) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        spdlog::error("event loop: {}", e.what());
      }
    }
    spdlog::info("stopped");
    return exit_code_;
  }

 private:
  // The dashboard is a window on the daemon, not part of its work: when its port is taken the
  // builds go on and the log says why there is no page.
  // Called again by a reload that changes [web]: the old listener and its pages close first.
  void listen_web() {
    web_.reset();
    if (config_.web.listen.empty()) return;
    web_.emplace(io_, dispatch_, [this] {
      MetricsSnapshot m = metrics_snapshot(*store_, *scheduler_);
      m.notifications = notifier_->counts();
      return render_prometheus(m);
    });
    auto at = std::get<web::ListenAddress>(web::parse_listen(config_.web.listen));  // checked with the config
    if (std::string err = web_->listen(at, config_.web.hosts); !err.empty())
      spdlog::error("web dashboard off: {} (set [web] listen, or \"\" to turn it off)", err);
    else
      spdlog::info("web dashboard on http://{}:{}/",
                   at.host.find(':') == std::string::npos ? at.host : "[" + at.host + "]", web_->port());
  }

  // The catalog follows what was found; the database is written only when something changed
  // (`force`: whatever was found).
  void apply(CatalogScan scan, bool force) {
    if (!force && scan.seen == last_scan_) return;
    if (!last_scan_.empty() && scan.seen != last_scan_)
      spdlog::info("the recipes changed on disk: the matrix follows");
    if (scan.seen != last_scan_)
      for (const std::string& e : scan.errors) spdlog::error("{}", e);
    last_scan_ = scan.seen;
    for (const std::string& w : store_->sync_catalog(scan.scans)) spdlog::warn("{}", w);
    size_t total = 0;
    for (const RepoScan& s : scan.scans) total += s.recipes.size();
    spdlog::info("matrix: {} variants in {} repos", total, scan.scans.size());
    scheduler_->set_missing_repos(std::move(scan.missing));
    check_tracked();
    scheduler_->poke();
  }

  // Scans the repos again (after a reload, or before a nightly decides), then `then`.
  void refresh_catalog(std::function<void()> then = nullptr) {
    off_loop_.run([repos = config_.repos] { return scan_catalog(repos); },
                  [this, then = std::move(then)](CatalogScan scan) {
                    apply(std::move(scan), true);
                    if (then) then();
                  });
  }

  void follow_repos() {
    follow_.expires_after(kRecipeFollow);
    follow_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      off_loop_.run([repos = config_.repos] { return scan_catalog(repos); },
                    [this](CatalogScan scan) {
                      apply(std::move(scan), false);
                      follow_repos();
                    });
    });
  }

  // Which recipes git tracks (flox refuses the others): asked of git (a command, so
  // asynchronously) whenever the recipes changed; the matrix marks the untracked ones.
  void check_tracked() {
    for (const RepoConfig& repo : config_.repos) {
      BuildCommand ls{{"git", "-C", repo.path, "ls-files", "-z", "--", repo.recipes}, repo.path, ""};
      run_async(io_, runner_, ls, std::chrono::seconds(60), [this, name = repo.name](AsyncResult r) {
        if (r.exit_code != 0) return;  // no git checkout: nothing to say
        std::set<std::string> files;
        for (size_t start = 0, end; (end = r.output.find('\0', start)) != std::string::npos; start = end + 1)
          files.insert(r.output.substr(start, end - start));
        for (const VariantRecord& v : store_->variants())
          if (v.repo == name) {
            bool tracked = files.count(v.recipe) > 0;
            auto [it, fresh] = git_tracked_.insert_or_assign(v.name, tracked);
            if (!tracked && (fresh || it->second != tracked))
              spdlog::warn("{}: its recipe {} is not tracked by git: flox refuses to build it (git add it)",
                           v.name, v.recipe);
          }
      });
    }
  }

  // drain: once the running builds have ended.
  void exit_now() {
    sd_notify("STOPPING=1");
    server_->stop();
    web_.reset();
    io_.stop();
  }

  void stop_gracefully() {
    sd_notify("STOPPING=1");
    server_->stop();
    web_.reset();
    scheduler_->shutdown([this] { io_.stop(); });
  }

  // The database file is watched: deleted under the daemon, it is written back from the open
  // connection; replaced by another file, the daemon stops rather than mix two histories.
  void check_db() {
    watch_db_.expires_after(kDatabaseCheck);
    watch_db_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      Store::FileCheck file = Store::FileCheck::same;
      try {
        file = store_->check_file();
      } catch (const std::exception& e) {  // writing it back failed (disk full, no descriptors): next time
        spdlog::error("{} is gone and could not be written back yet: {}", config_.db_path(), e.what());
      }
      if (file == Store::FileCheck::restored)
        spdlog::error("{} was deleted while ptbuildd ran; written back from the open database, nothing lost",
                      config_.db_path());
      if (file == Store::FileCheck::replaced) {
        spdlog::critical(
            "{} was replaced by another file while ptbuildd ran; stopping (the running builds go back to the "
            "queue of the database they came from); start ptbuildd again to use the new one",
            config_.db_path());
        exit_code_ = kExitNeedsOperator;
        return stop_gracefully();
      }
      check_db();
    });
  }

  // SIGHUP: the config file is read again off the loop; a broken one is refused by line.
  void wait_reload() {
    reload_signal_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      off_loop_.run([path = options_.config_path] { return load_config(path); },
                    [this](ConfigResult fresh) { reload(std::move(fresh)); });
    });
  }

  void reload(ConfigResult fresh) {
    if (auto* err = std::get_if<ConfigError>(&fresh)) {
      spdlog::error("reload refused, keeping the running config: {}", err->message);
    } else {
      Config next = std::get<Config>(std::move(fresh));
      if (next.daemon.socket != config_.daemon.socket || next.daemon.state_dir != config_.daemon.state_dir)
        spdlog::warn("reload: socket and state_dir changes take effect at the next start");
      next.daemon.socket = config_.daemon.socket;
      next.daemon.state_dir = config_.daemon.state_dir;
      bool web_changed = next.web.listen != config_.web.listen || next.web.hosts != config_.web.hosts;
      config_ = std::move(next);
      if (web_changed) {
        if (config_.web.listen.empty()) spdlog::info("reload: web dashboard off");
        listen_web();
      }
      server_->set_admin_group(config_.daemon.admin_group);
      notifier_->configure(config_.notify);
      scheduler_->reconfigure();
      spdlog::info("reloaded config from {}", config_.source);
    }
    refresh_catalog([this] {
      sd_notify("READY=1\nSTATUS=reloaded");
      wait_reload();
    });
  }

  const DaemonOptions& options_;
  Config config_;
  asio::io_context io_;
  ProcessRunner runner_;
  OffLoop off_loop_;  // for files and configs: before everything whose callbacks it may run
  std::optional<Store> store_;
  std::optional<Scheduler> scheduler_;
  std::optional<Notifier> notifier_;
  std::optional<Alerts> alerts_;
  std::optional<Bisector> bisector_;
  std::optional<ProvenanceWriter> provenance_;
  std::optional<Ops> ops_;
  std::optional<Server> server_;
  Dispatch dispatch_;  // the ops, for the socket and the dashboard alike
  std::optional<WebServer> web_;
  asio::signal_set stop_signals_, reload_signal_;
  asio::steady_timer follow_, watch_db_;
  std::map<std::string, bool> git_tracked_;  // variant -> tracked, for repos that are git checkouts
  std::string last_scan_;
  int exit_code_ = 0;
};

}  // namespace

int run_daemon(const DaemonOptions& options, Config config) {
  int lock_fd = claim_state_dir(config);
  if (lock_fd < 0) return 1;
  int exit_code = [&] {
    App app(options, std::move(config));
    if (int failed = app.open_state()) return failed;
    if (!app.serve()) return 1;
    app.watch();
    return app.run();
  }();
  ::close(lock_fd);
  return exit_code;
}

}  // namespace ptbuild
