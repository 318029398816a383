#include "daemon/scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/build_verdict.h"
#include "core/diagnosis.h"
#include "core/duration.h"
#include "core/hash_mismatch.h"
#include "core/output_reader.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/runner/async_command.h"
#include "daemon/nightly/fingerprint.h"
#include "core/text.h"
#include "core/verify.h"
#include "daemon/runner/build_log.h"
#include "daemon/runner/process_tree.h"
#include "daemon/runner/runner.h"
#include "daemon/runner/spawn.h"
#include "daemon/scheduler/plan.h"
#include "daemon/scheduler/steps.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/scheduler_parts.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace {
constexpr auto kProgressWriteInterval = std::chrono::seconds(1);
constexpr size_t kMaxProbeOutput = 1024 * 1024;
constexpr Millis kRecordRetry = std::chrono::seconds(5);
std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "" : target.string();
}
}  // namespace

Scheduler::Scheduler(asio::io_context& io, Store& store, const Config& config, Runner& runner)
    : io_(io),
      store_(store),
      config_(config),
      runner_(runner),
      timers_(std::make_unique<SchedulerTimers>(io)),
      source_lister_(fixed_output_inputs),
      off_loop_(std::make_unique<OffLoop>(io)) {
  reconfigure();
}

Scheduler::~Scheduler() {
  if (repair_thread_.joinable()) repair_thread_.join();
}

void Scheduler::recover() {
  // What the operator said before the restart still holds: a paused or draining daemon starts
  // nothing, a job backing off waits out its time.
  paused_ = store_.flag("paused");
  draining_ = store_.flag("draining");
  if (paused_ || draining_)
    spdlog::warn("{} when ptbuildd stopped: no build starts until `ptbuild resume`",
                 paused_ ? "paused" : "draining");
  for (const Store::Backoff& b : store_.backoffs()) {
    JobMemory& m = memory_[b.job_id];
    m.network_retries = b.network_retries;
    if (auto until = parse_rfc3339(b.not_before); until && *until > std::chrono::system_clock::now())
      m.not_before = Clock::now() +
                     std::chrono::duration_cast<Clock::duration>(*until - std::chrono::system_clock::now());
  }
  for (const auto& p : store_.running_build_processes())
    if (int killed = kill_leftover_build(p.pgid, p.identity))
      spdlog::warn("job #{}: killed {} leftover processes of its build", p.job_id, killed);
  for (const Job& j : store_.jobs_in_state(JobState::running)) {
    std::optional<VariantRecord> variant = store_.variant(j.variant);
    std::optional<Failure> settled =
        variant && j.kind == JobKind::build ? settled_failure(j.log_path, variant->axes) : std::nullopt;
    auto tx = store_.begin();
    if (settled) {
      settled->message += " (read from its log after ptbuildd restarted)";
      store_.transition(tx, j.id, JobState::running, JobState::failed,
                        {.finished_at = now(), .failure = settled}, now(),
                        settled->failure_class + ": " + settled->message);
      spdlog::warn("job #{} ({}) was running when ptbuildd stopped; its log says {}: failed", j.id, j.variant,
                   settled->failure_class);
    } else {
      store_.transition(tx, j.id, JobState::running, JobState::queued, {.clear_outcome = true}, now(),
                        "requeued: ptbuildd restarted while the build ran");
      spdlog::warn("job #{} ({}) was running when ptbuildd stopped; queued again", j.id, j.variant);
    }
    tx.commit();
  }
}

void Scheduler::poke() {
  if (poke_pending_) return;
  poke_pending_ = true;
  asio::post(io_, [this] {
    poke_pending_ = false;
    dispatch();
  });
}

// Why nothing may start now, or "" (publish jobs take no builder, so a builder's rest does not
// hold them).
std::string Scheduler::hold_reason() const {
  if (stopping_) return "ptbuildd is stopping";
  if (paused_) return "paused";
  if (draining_) return "draining";
  return "";
}

void Scheduler::dispatch() {
  for (auto& [id, m] : memory_) m.waiting.clear();
  std::vector<Job> queued = store_.jobs_in_state(JobState::queued);
  const std::string held = hold_reason();
  for (const Job& j : queued)
    if (j.kind == JobKind::publish) {
      if (held.empty())
        start_publish(j);  // publishing needs no build slot: it copies what was built
      else
        memory_[j.id].waiting = held;
    }

  std::map<std::string, VariantRecord> variants;
  for (VariantRecord& v : store_.variants()) variants.emplace(v.name, std::move(v));
  Store::Durations durations =
      config_.daemon.order == "longest-first" ? store_.typical_durations() : Store::Durations{};
  PlanInput plan;
  plan.longest_first = config_.daemon.order == "longest-first";
  for (const RepoConfig& r : config_.repos)
    if (!r.after.empty()) plan.after[r.name] = r.after;
  std::map<int64_t, const Job*> by_id;
  auto earliest_wakeup = Clock::time_point::max();
  for (const Job& j : queued) {
    if (j.kind != JobKind::build) continue;
    auto v = variants.find(j.variant);
    if (v == variants.end()) {
      // A repo that is not there at all (not mounted yet) is waited for; a recipe gone from a
      // repo that is there fails its job.
      auto repo = std::find_if(config_.repos.begin(), config_.repos.end(),
                               [&](const RepoConfig& r) { return r.name == j.repo; });
      if (repo != config_.repos.end() && !std::filesystem::is_directory(repo->path + "/" + repo->recipes)) {
        memory_[j.id].waiting =
            "repo " + repo->name + " is missing (" + repo->path + "): waiting for it to come back";
        continue;
      }
      fail_without_running(
          j, {failure_class::kEvalError, "the recipe of " + j.variant + " is gone from the repo",
              "restore the recipe or cancel the job", ""});
      continue;
    }
    plan.unfinished.emplace(std::pair{j.repo, axes_key(v->second.axes)}, j.id);
    if (auto m = memory_.find(j.id); m != memory_.end() && m->second.not_before > Clock::now()) {
      earliest_wakeup = std::min(earliest_wakeup, m->second.not_before);
      auto at = std::chrono::system_clock::now() + (m->second.not_before - Clock::now());
      m->second.waiting = "back-off until " +
                          format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(at)) +
                          " (retry " + std::to_string(m->second.network_retries) + " of a network failure)";
      continue;
    }
    plan.queued.push_back({j.id, j.priority, j.repo, axes_key(v->second.axes),
                           durations.expected(j.variant, v->second.axes.family)});
    by_id[j.id] = &j;
  }
  for (const auto& [id, active] : running_)
    plan.unfinished.emplace(std::pair{active->job.repo, axes_key(active->variant.axes)}, id);

  // An upstream whose latest build failed holds its dependents (docs/jobs.md): looked up only for
  // those not already waiting for an unfinished upstream build.
  std::map<std::pair<std::string, std::string>, std::string> upstream_variant;
  if (!plan.after.empty())
    for (const auto& [name, v] : variants)
      upstream_variant.emplace(std::pair{v.repo, axes_key(v.axes)}, name);
  for (const QueuedBuild& q : plan.queued) {
    auto upstream = plan.after.find(q.repo);
    if (upstream == plan.after.end()) continue;
    std::pair key{upstream->second, q.axes_key};
    if (plan.unfinished.count(key) || plan.failed.count(key)) continue;
    auto name = upstream_variant.find(key);
    if (name == upstream_variant.end()) continue;
    if (std::optional<Job> last = store_.latest_job(name->second, JobKind::build);
        last && (last->state == JobState::failed || last->state == JobState::cancelled))
      plan.failed.emplace(key, last->id);
  }
  Plan order = plan_dispatch(plan);
  for (const auto& [id, upstream] : order.held_by) memory_[id].waiting = "after #" + std::to_string(upstream);
  for (const auto& [id, failed] : order.held_by_failed) {
    std::optional<Job> upstream = store_.job(failed);
    memory_[id].waiting = "after #" + std::to_string(failed) + " " +
                          std::string(upstream ? to_string(upstream->state) : "failed") +
                          ": starts when a build of " + (upstream ? upstream->variant : "it") + " succeeds";
  }
  // The dispatch order, written down once (docs/jobs.md, docs/fleet.md): priority, `after`, then
  // longest-first or fifo (plan_dispatch); a build starts only while nothing holds the queue, and on the
  // builder placement chooses among those that fit, are up and have a free slot.
  for (int64_t id : order.order) {
    std::string& waiting = memory_[id].waiting;
    const VariantRecord& variant = variants.at(by_id[id]->variant);
    if (!held.empty()) {
      waiting = held;
      continue;
    }
    std::optional<BuildNeeds> needs = needs_of(variant);
    if (!needs) {
      waiting = "reading what its derivation needs (system, requiredSystemFeatures)";
      continue;
    }
    std::vector<BuilderState> states;
    for (const auto& b : builders_) states.push_back({&b->spec, b->running, b->up()});
    Placement placement = place(*needs, states);
    if (!placement.chosen) {
      waiting = describe_unplaced(*needs, placement);
      continue;
    }
    start_build(*by_id[id], variant, *builders_[*placement.chosen]);
    if (!is_running(id)) waiting = "starting";
  }
  if (earliest_wakeup != Clock::time_point::max()) {
    timers_->retry_wakeup.expires_at(earliest_wakeup);
    timers_->retry_wakeup.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poke();
    });
  }
}

void Scheduler::start_build(const Job& queued_job, const VariantRecord& variant, Builder& builder) {
  Active* a = begin_job(queued_job, variant, &builder, "started on " + builder.spec.name,
                        {.recipe_sha = recipe_sha(variant),
                         .fingerprint = file_fingerprint(variant.repo_path, variant.recipe),
                         .builder = builder.spec.name});
  if (!a) return;
  a->build = build_command(config_.backend,
                           {a->job.variant, variant.repo_path, variant.recipe, config_.results_dir()});
  if (!config_.builders.empty()) {  // a configured fleet: the chosen machine builds, no other
    const char* inherited = std::getenv("NIX_CONFIG");
    place_on_builder(config_.backend, builder.spec, a->build, a->build_env, inherited ? inherited : "");
  }
  if (!config_.hashfix.enabled || !source_lister_ || a->start_failure) {
    launch(*a, a->build, a->build_env, config_.daemon.build_timeout, "build_timeout");
    return;
  }
  // Its sources first (docs/hash-repair.md): a wrong pinned hash is met and repaired in seconds, before a
  // 2-hour build starts on it. Listing them evaluates the recipe: off the loop.
  a->phase = Active::Phase::sources;
  a->log.write(
      "=== ptbuild: job #" + std::to_string(a->job.id) + " attempt " + std::to_string(a->job.attempt) +
      " on " + builder.spec.name + " at " + now() +
      ": its sources (fixed-output inputs) first, so that a wrong hash is repaired before the long build\n");
  a->log.flush();  // the attempt is on disk whatever happens next (a crash while the sources are listed)
  off_loop_->run([lister = source_lister_, nix = nix_program(config_.backend),
                  recipe = variant.repo_path + "/" + variant.recipe,
                  cwd = variant.repo_path] { return lister(nix, recipe, cwd); },
                 [this, id = a->job.id](SourceInputs sources) {
                   auto it = running_.find(id);
                   if (it == running_.end()) return;
                   Active& active = *it->second;
                   if (active.stop != StopReason::none)
                     return on_exit(id, 1);  // cancelled or stopping meanwhile
                   if (sources.drvs.empty()) {
                     if (!sources.error.empty())
                       active.log.write("=== ptbuild: its sources could not be listed (" + sources.error +
                                        "): building\n");
                     active.phase = Active::Phase::build;
                     launch(active, active.build, active.build_env, config_.daemon.build_timeout,
                            "build_timeout");
                     return;
                   }
                   launch(active, realise_command(config_.backend, sources.drvs), {},
                          config_.daemon.build_timeout, "build_timeout");
                 });
  a->announced = true;
  announce(a->job.id);
}

// queued -> running, with the job's bookkeeping; nullptr if the job was no longer queued.
Scheduler::Active* Scheduler::begin_job(const Job& queued_job, const VariantRecord& variant, Builder* builder,
                                        const std::string& what, JobChange change) {
  int attempt = queued_job.attempt + 1;
  change.started_at = now();
  change.attempt = attempt;
  change.clear_outcome = true;
  {
    auto tx = store_.begin();
    if (!store_.transition(tx, queued_job.id, JobState::queued, JobState::running, change, now(),
                           what + " (attempt " + std::to_string(attempt) + ")"))
      return nullptr;
    tx.commit();
  }
  memory_[queued_job.id].waiting.clear();
  Job job = *store_.job(queued_job.id);
  if (builder) ++builder->running;
  auto active =
      std::make_unique<Active>(io_, job, variant, builder ? builder->spec.name : "", config_.daemon.log_max);
  Active* a = active.get();
  running_.emplace(job.id, std::move(active));
  if (std::string err =
          a->log.open(job.log_path, job.attempt == 1 ? BuildLog::Attempt::first : BuildLog::Attempt::retry);
      !err.empty())
    a->start_failure = Failure{failure_class::kBuilderFailed, err, "check the state folder's logs/", ""};
  else if (!a->log.moved_aside().empty())
    spdlog::warn(
        "job #{}: a file was already where its new log goes (another job's log, or planted): moved to {}",
        job.id, a->log.moved_aside());
  return a;
}

// Starts a job's process (the build, its probe, or a publish) and arms its deadline.
void Scheduler::launch(Active& a, const BuildCommand& cmd, std::map<std::string, std::string> env,
                       Millis limit, const std::string& limit_name) {
  a.result_link = cmd.result_link;
  std::string error;
  if (!a.start_failure) {
    std::string argv_text;
    for (const auto& arg : cmd.argv) argv_text += (argv_text.empty() ? "" : " ") + arg;
    a.log.write("=== ptbuild: job #" + std::to_string(a.job.id) + " attempt " +
                std::to_string(a.job.attempt) + " on " + (a.builder.empty() ? "local" : a.builder) + " at " +
                now() + "\n=== " + argv_text + "\n");
    a.log.flush();  // the attempt's header is on disk whatever happens next
    env["PTBUILD_JOB"] = std::to_string(a.job.id);
    env["PTBUILD_VARIANT"] = a.job.variant;
    int64_t id = a.job.id;
    // The process appends to the live file itself; the plain text stays there up to log_max,
    // or not at all without daemon.live_log.
    BuildCommand appending = cmd;
    appending.output = OutputFile{a.log.live_path(), config_.daemon.live_log ? config_.daemon.log_max : 0};
    a.process = runner_.start(appending, env,
                              {[this, id](std::string_view chunk) { on_output(id, chunk); },
                               [this, id](ExitStatus s) { on_exit(id, s.exit_code); }},
                              error);
    a.log.process_appends(a.process != nullptr);
  }
  if (!a.process) {
    if (!a.start_failure) {
      a.log.write("=== ptbuild: " + error + "\n");
      a.start_failure = Failure{failure_class::kBuilderFailed, error,
                                "check backend.program and backend.kind in the config", ""};
    }
    asio::post(io_, [this, id = a.job.id] { on_exit(id, 127); });
    return;
  }
  store_.set_build_process(a.job.id, a.process->process_group(), a.process->identity());
  arm_log_flush();
  if (a.phase != Active::Phase::verify && !a.announced) {
    a.announced = true;
    announce(a.job.id);
  }
  spdlog::info("job #{} {}: started {} (attempt {}, pgid {})", a.job.id, a.job.variant, cmd.argv.front(),
               a.job.attempt, a.process->process_group());
  a.last_output = Clock::now();
  a.deadline.expires_after(limit);
  a.deadline.async_wait([this, id = a.job.id, limit, limit_name](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto it = running_.find(id); it != running_.end())
      stop_build(*it->second, StopReason::timeout,
                 "ran longer than " + limit_name + " (" + format_duration(limit) + ")");
  });
  arm_silence_timer(a);
}

// A quiet build's log is on disk within a second too (a noisy one's is flushed as it writes);
// the progress goes to the database on the same timer.
// Only frames that are due are closed: flushing all 32 logs in one handler held a `status`
// behind it for milliseconds.
void Scheduler::arm_log_flush() {
  if (timers_->log_flush_armed) return;
  timers_->log_flush_armed = true;
  timers_->log_flush.expires_after(BuildLog::kFlushCheck);
  timers_->log_flush.async_wait([this](const boost::system::error_code& ec) {
    timers_->log_flush_armed = false;
    if (ec) return;
    for (auto& [id, active] : running_) active->log.flush_if_due();
    save_progress();
    if (!running_.empty()) arm_log_flush();
  });
}

void Scheduler::flush_log(int64_t job_id) {
  if (auto it = running_.find(job_id); it != running_.end()) it->second->log.flush();
}

void Scheduler::arm_silence_timer(Active& a) {
  a.silence.expires_at(a.last_output + config_.daemon.max_silent);
  a.silence.async_wait([this, id = a.job.id](const boost::system::error_code& ec) {
    if (ec) return;
    auto it = running_.find(id);
    if (it == running_.end()) return;
    Active& active = *it->second;
    // Output moves the deadline; the timer is only re-armed here, not on every chunk.
    if (Clock::now() - active.last_output >= config_.daemon.max_silent)
      stop_build(active, StopReason::timeout,
                 "no output for " + format_duration(config_.daemon.max_silent) + " (max_silent): hung");
    else
      arm_silence_timer(active);
  });
}

void Scheduler::on_output(int64_t job_id, std::string_view chunk) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  Active& a = *it->second;
  a.last_output = Clock::now();
  a.log.take(chunk);
  if (a.phase == Active::Phase::verify) {
    if (a.probe_output.size() < kMaxProbeOutput) a.probe_output.append(chunk);
    return;
  }
  std::erase_if(a.listeners, [&](OutputListener& l) { return !l(chunk); });

  if (a.output.feed(chunk)) a.progress_unsaved = true;
}

// The running builds' progress, at most once a kProgressWriteInterval and in one transaction: 32
// flooding builds made 32 transactions a second where one does.
void Scheduler::save_progress() {
  if (Clock::now() - timers_->progress_saved < kProgressWriteInterval) return;
  timers_->progress_saved = Clock::now();
  std::vector<std::pair<int64_t, Progress>> unsaved;
  for (auto& [id, active] : running_)
    if (std::optional<Progress> p = active->output.progress(); p && active->progress_unsaved) {
      unsaved.emplace_back(id, *p);
      active->progress_unsaved = false;
    }
  if (unsaved.empty()) return;
  auto tx = store_.begin();
  for (const auto& [id, p] : unsaved) store_.set_progress(id, p.done, p.total);
  tx.commit();
}

void Scheduler::stop_build(Active& a, StopReason reason, const std::string& detail) {
  if (a.stop != StopReason::none) return;  // the first reason to stop is the one recorded
  a.stop = reason;
  a.stop_detail = detail;
  spdlog::info("job #{} {}: stopping: {}", a.job.id, a.job.variant, detail);
  if (!a.process) return;
  a.process->terminate();
  a.grace.expires_after(config_.daemon.kill_grace);
  a.grace.async_wait([this, id = a.job.id](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto it = running_.find(id); it != running_.end() && it->second->process) {
      spdlog::warn("job #{}: still alive {} after SIGTERM: SIGKILL", id,
                   format_duration(config_.daemon.kill_grace));
      it->second->process->kill();
    }
  });
}

void Scheduler::on_exit(int64_t job_id, int exit_code) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  Active& a = *it->second;
  a.log.process_appends(false);
  if (exit_code != 0) a.log.check_room();  // it may have stopped on lines a full disk refused
  a.output.finish();
  a.deadline.cancel();
  a.silence.cancel();
  a.grace.cancel();
  if (auto p = a.output.progress(); p && a.phase == Active::Phase::build)
    store_.set_progress(job_id, p->done, p->total);
  if (a.phase == Active::Phase::sources && exit_code == 0 && a.stop == StopReason::none) {
    // The sources are there and right: now the build itself.
    a.phase = Active::Phase::build;
    a.process.reset();
    launch(a, a.build, a.build_env, config_.daemon.build_timeout, "build_timeout");
    return;
  }

  if (a.phase == Active::Phase::verify && !a.verified_on.empty() && a.stop == StopReason::none &&
      !probe_facts(a.probe_output)) {
    // The GPU builder could not take the artifact or run the probe (unreachable, its store full):
    // the machine's fault, not the artifact's. It rests, and the artifact is checked elsewhere.
    Failure f = diagnose_text(a.probe_output, exit_code);
    if (is_machine_fault(f)) {
      std::string why = "the probe could not run there: " + f.failure_class + ": " + f.message;
      a.log.write("=== ptbuild: builder " + a.verified_on + " " + why + "; verifying elsewhere\n");
      if (Builder* b = builder_named(a.verified_on)) builder_fault(*b, why);
      a.process.reset();
      start_verify(a, Outcome{JobState::succeeded, a.built, "", {}});
      return;
    }
  }

  Outcome o = stop_outcome(a, exit_code)
                  .value_or(a.phase == Active::Phase::verify ? verify_outcome(a, exit_code)
                            : a.job.kind == JobKind::publish ? publish_outcome(a, exit_code)
                                                             : build_outcome(a, exit_code));
  if (a.phase == Active::Phase::build && a.job.kind == JobKind::build && o.state == JobState::succeeded &&
      config_.verify.enabled) {
    start_verify(a, std::move(o));  // the job stays running until the probe has spoken
    return;
  }
  if (o.repair) {
    start_repair(a, std::move(o));  // the job stays running until the repair has spoken
    return;
  }
  finish(it, std::move(o));
}

// A job's process is done with and its outcome known: record it and free the slot.
void Scheduler::finish(std::map<int64_t, std::unique_ptr<Active>>::iterator it, Outcome o) {
  Ended ended{std::move(it->second->job), std::move(o)};
  // The plain copy goes right after (off the loop, by an rm at the builds' priority: freeing the
  // page cache of a 100 MB file is the build's cost).
  if (std::string live = it->second->log.close_leaving_live(); !live.empty())
    off_loop_->run([live] { return remove_at_build_priority(live); },
                   [](const std::string& error) {
                     if (!error.empty()) spdlog::warn("{}", error);
                   });
  if (Builder* b = builder_named(it->second->builder)) {  // its slot is free again
    --b->running;
    if (ended.outcome.state != JobState::queued) ++b->done;
  }
  if (!it->second->builder.empty()) needs_.erase(it->second->variant.name);
  running_.erase(it);
  record(std::move(ended));
  after_idle();
  poke();
}

// Writes a job's outcome. When the database cannot take it (a full disk, a lock held too long)
// the outcome is kept and written again every few seconds, so the job ends once the database
// works again: it is never left `running` with nothing running it.
void Scheduler::record(Ended ended) {
  const Job& job = ended.job;
  const Outcome& o = ended.outcome;
  try {
    auto tx = store_.begin();
    store_.transition(tx, job.id, JobState::running, o.state, o.change, now(), o.detail);
    if (o.backoff) store_.set_backoff(job.id, o.backoff->network_retries, o.backoff->not_before);
    for (const HashFix& fx : o.fixes)
      store_.add_hash_fix(
          tx, {0, job.id, job.variant, fx.drv, fx.file, fx.line, fx.old_text, fx.new_text, now()});
    if (o.state == JobState::succeeded && job.kind == JobKind::build && config_.publish.auto_publish)
      store_.insert_job(tx,
                        {job.variant, JobKind::publish, job.priority,
                         "publish.auto after build #" + std::to_string(job.id), false},
                        now());
    tx.commit();
  } catch (const sql::Error& e) {
    spdlog::error("job #{} {}: cannot record that it {} ({}); trying again in {}", job.id, job.variant,
                  to_string(o.state), e.what(), format_duration(kRecordRetry));
    unrecorded_.push_back(std::move(ended));
    timers_->record_retry.expires_after(kRecordRetry);
    timers_->record_retry.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      for (Ended& waiting : std::exchange(unrecorded_, {})) record(std::move(waiting));
      poke();
    });
    return;
  }
  spdlog::info("job #{} {}: {} ({})", job.id, job.variant, to_string(o.state), o.detail);
  if (o.state != JobState::queued) announce(job.id);
}

// A job stopped by us (shutdown, cancel, timeout) or one whose process never started.
std::optional<Scheduler::Outcome> Scheduler::stop_outcome(Active& a, int exit_code) {
  JobChange change{.finished_at = now(), .exit_code = exit_code};
  switch (a.stop) {
    case StopReason::shutdown:
      return Outcome{JobState::queued, {.clear_outcome = true}, "requeued: " + a.stop_detail, {}};
    case StopReason::cancel:
      change.failure = Failure{failure_class::kCancelled, a.stop_detail, "", a.output.scanner().tail()};
      return Outcome{JobState::cancelled, change, a.stop_detail, {}};
    case StopReason::timeout:
      change.failure =
          Failure{failure_class::kTimeout, a.stop_detail,
                  "raise build_timeout / max_silent if the build is only slow", a.output.scanner().tail()};
      return Outcome{JobState::failed, change, a.stop_detail, {}};
    case StopReason::none:
      break;
  }
  if (a.start_failure) {
    change.failure = a.start_failure;
    return Outcome{JobState::failed, change, a.start_failure->message, {}};
  }
  if (a.log.disk_full()) {
    change.failure =
        Failure{failure_class::kDiskFull, *a.log.write_error(),
                "free space in the state folder (logs) and the Nix store", a.output.scanner().tail()};
    return Outcome{JobState::failed, change, *a.log.write_error(), {}};
  }
  return std::nullopt;
}

Scheduler::Outcome Scheduler::build_outcome(Active& a, int exit_code) {
  std::optional<Failure> failure = a.output.scanner().diagnose(exit_code);
  JobMemory& memory = memory_[a.job.id];
  std::string out = failure ? "" : read_link(a.result_link);
  bool repairable = failure && failure->failure_class == failure_class::kHashMismatch &&
                    config_.hashfix.enabled &&
                    !repair_refused(a, *failure);  // a refusal says why in the failure's message
  Verdict verdict =
      decide_build_end({failure ? &*failure : nullptr, !out.empty(), repairable, memory.network_retries,
                        config_.daemon.retries, config_.daemon.retry_backoff, a.job.id});
  Builder* builder = builder_named(a.builder);
  if (verdict.kind == Verdict::Kind::builder_fault) {
    // The job waits in the queue (for another builder if one fits), not counted as a failure of
    // the variant, while the builder rests.
    std::string why = failure->failure_class + ": " + failure->message;
    if (builder) builder_fault(*builder, why);
    a.log.write("=== ptbuild: builder " + a.builder + " cannot build (" + why +
                "): the job goes back to the queue\n");
    return Outcome{JobState::queued,
                   {.clear_outcome = true},
                   "requeued: builder " + a.builder + " cannot build (" + why + ")",
                   {}};
  }
  if (builder && builder->health.up())
    builder->health.healthy();  // it built, or the recipe failed: the machine works
  Outcome o{JobState::failed, {.finished_at = now(), .exit_code = exit_code}, "", {}};
  switch (verdict.kind) {
    case Verdict::Kind::succeeded:
      o.state = JobState::succeeded;
      o.change.out_path = out;
      o.detail = "built " + out;
      return o;
    case Verdict::Kind::retry: {
      int retry = ++memory.network_retries;
      memory.not_before = Clock::now() + verdict.wait;
      return Outcome{
          JobState::queued,
          {.clear_outcome = true},
          "network failure (" + failure->message + "): retry " + std::to_string(retry) + " of " +
              std::to_string(config_.daemon.retries) + " in " + format_duration(verdict.wait),
          {},
          Store::Backoff{a.job.id, retry, format_rfc3339(std::chrono::system_clock::now() + verdict.wait)}};
    }
    case Verdict::Kind::repair_hash:
      o.repair = true;  // decided once the repair has run
      break;
    case Verdict::Kind::builder_fault:
    case Verdict::Kind::failed:
      break;
  }
  if (!failure)
    failure =
        Failure{failure_class::kBuilderFailed, "the build exited 0 but left no result at " + a.result_link,
                "the recipe must evaluate to a derivation (a package), not an attribute set",
                a.output.scanner().tail()};
  if (!verdict.hint.empty()) failure->hint = verdict.hint;
  o.detail = failure->failure_class + ": " + failure->message;
  o.change.failure = std::move(failure);
  return o;
}

namespace {
// By derivation name: a repaired fixed-output derivation gets a new store path.
std::string repair_key(const HashMismatch& m, const std::string& hash) {
  size_t dash = m.drv.find('-');
  return (dash == std::string::npos ? m.drv : m.drv.substr(dash + 1)) + " " + hash;
}
}  // namespace

// Whether a hash mismatch is not to be repaired (again) (docs/hash-repair.md); then `failure` says why.
bool Scheduler::repair_refused(const Active& a, Failure& failure) {
  const std::vector<HashMismatch>& mismatches = a.output.mismatches();
  JobMemory& done = memory_[a.job.id];
  auto refuse = [&](std::string why) {
    failure.message = std::move(why);
    return true;
  };
  if (mismatches.empty()) return refuse(failure.message + " (the log did not say which hashes)");
  for (const HashMismatch& m : mismatches)
    if (done.repaired.count(repair_key(m, m.specified)))
      return refuse("the hash of " + m.drv + " mismatched again after it was repaired (now " + m.got +
                    "): the source is not reproducible");
  if (done.hash_rounds >= config_.hashfix.max_rounds)
    return refuse("gave up after " + std::to_string(done.hash_rounds) +
                  " hash repair rounds (hashfix.max_rounds)");
  return false;
}

// The recipes are repaired on a thread of their own (git, nix show-derivation and the file writes
// take seconds on a large repo), one repair at a time: two jobs that meet the same wrong hash end
// with one patch, the second finding it repaired. The job stays running meanwhile.
void Scheduler::start_repair(Active& a, Outcome failed) {
  a.phase = Active::Phase::repair;
  a.process.reset();  // it has exited: nothing of it to signal any more
  a.repair_fallback = std::move(failed);
  repairs_.push_back({a.job.id,
                      {a.variant.repo_path, nix_program(config_.backend), config_.hashfix.commit},
                      a.output.mismatches()});
  run_next_repair();
}

void Scheduler::run_next_repair() {
  if (repair_thread_.joinable() || repairs_.empty()) return;
  RepairRequest request = std::move(repairs_.front());
  repairs_.pop_front();
  timers_->repair_work.emplace(io_.get_executor());  // io.run() waits for the answer
  repair_thread_ = std::thread([this, request = std::move(request)] {
    RepairResult r = repair_hashes(request.options, request.mismatches);
    asio::post(io_, [this, id = request.job_id, mismatches = request.mismatches, r = std::move(r)]() mutable {
      repair_done(id, mismatches, std::move(r));
    });
  });
}

void Scheduler::repair_done(int64_t job_id, const std::vector<HashMismatch>& mismatches, RepairResult r) {
  repair_thread_.join();
  timers_->repair_work.reset();
  auto it = running_.find(job_id);
  if (it != running_.end()) {
    Active& a = *it->second;
    Outcome o = std::move(a.repair_fallback);
    o.repair = false;
    if (r.outcome == RepairResult::Outcome::failed) {
      o.change.failure->message = r.message;
      o.detail = std::string(failure_class::kHashMismatch) + ": " + r.message;
    } else {
      JobMemory& done = memory_[job_id];
      ++done.hash_rounds;
      for (const HashMismatch& m : mismatches) done.repaired.insert(repair_key(m, m.got));
      std::string what = r.message + "; building again (repair round " + std::to_string(done.hash_rounds) +
                         " of " + std::to_string(config_.hashfix.max_rounds) + ")";
      spdlog::info("job #{} {}: {}", job_id, a.job.variant, what);
      o = Outcome{JobState::queued, {.clear_outcome = true}, what, std::move(r.fixes)};
    }
    // Cancelled or stopped while repairing: that decides; what was repaired stays recorded.
    if (std::optional<Outcome> stopped = stop_outcome(a, o.change.exit_code.value_or(1))) {
      stopped->fixes = std::move(o.fixes);
      o = std::move(*stopped);
    }
    finish(it, std::move(o));
  }
  run_next_repair();
}

// A job started or ended: tell the listeners. An ended job's bookkeeping goes here, whichever
// way it ended (built, failed, cancelled before it ran).
void Scheduler::announce(int64_t job_id) {
  std::optional<Job> job = store_.job(job_id);
  if (!job) return;
  if (is_finished(job->state)) {
    memory_.erase(job_id);
    publish_checked_.erase(job_id);
  }
  std::erase_if(job_listeners_, [&](JobListenerEntry& l) { return !l.alive() || !l.on_job(*job); });
}

void Scheduler::fail_without_running(const Job& job, const Failure& failure) {
  auto tx = store_.begin();
  bool changed = store_.transition(tx, job.id, JobState::queued, JobState::failed,
                                   {.finished_at = now(), .failure = failure}, now(), failure.message);
  tx.commit();
  if (changed) announce(job.id);
}

void Scheduler::after_idle() {
  if (!running_.empty()) return;
  if (draining_ && on_drained_) {
    store_.set_flag("draining", false);  // done: the next start builds again
    std::exchange(on_drained_, nullptr)();
  }
  if (stopping_ && on_stopped_) std::exchange(on_stopped_, nullptr)();
}

Scheduler::CancelOutcome Scheduler::cancel(int64_t job_id, const std::string& who) {
  if (auto it = running_.find(job_id); it != running_.end()) {
    stop_build(*it->second, StopReason::cancel, "cancelled by " + who);
    return CancelOutcome::stopping;
  }
  std::optional<Job> job = store_.job(job_id);
  if (!job || job->state != JobState::queued) return CancelOutcome::already_finished;
  auto tx = store_.begin();
  bool changed = store_.transition(
      tx, job_id, JobState::queued, JobState::cancelled,
      {.finished_at = now(),
       .failure = Failure{failure_class::kCancelled, "cancelled by " + who + " before it started", "", ""}},
      now(), "cancelled by " + who);
  tx.commit();
  if (!changed) return CancelOutcome::already_finished;
  announce(job_id);
  return CancelOutcome::cancelled;
}

void Scheduler::pause() {
  store_.set_flag("paused", true);
  paused_ = true;
  poke();  // to say why the queue waits
}

void Scheduler::resume() {
  store_.set_flag("paused", false);
  paused_ = false;
  if (draining_ && !on_drained_) {  // a drain from before a restart: nobody waits for its end
    store_.set_flag("draining", false);
    draining_ = false;
  }
  for (auto& b : builders_)
    if (!b->health.up()) {
      spdlog::info("builder {}: resumed by the operator ({})", b->spec.name, b->health.describe());
      b->health.healthy();
      ++b->epoch;
      b->probe_timer.cancel();
    }
  poke();
}

void Scheduler::drain(std::function<void()> on_drained) {
  store_.set_flag("draining", true);
  draining_ = true;
  on_drained_ = std::move(on_drained);
  asio::post(io_, [this] { after_idle(); });
}

void Scheduler::shutdown(std::function<void()> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  for (auto& [id, active] : running_) stop_build(*active, StopReason::shutdown, "ptbuildd is stopping");
  asio::post(io_, [this] { after_idle(); });
}

std::optional<Progress> Scheduler::progress(int64_t job_id) const {
  auto it = running_.find(job_id);
  return it == running_.end() ? std::nullopt : it->second->output.progress();
}

std::optional<std::string> Scheduler::waiting(int64_t job_id) const {
  auto it = memory_.find(job_id);
  if (it == memory_.end() || it->second.waiting.empty()) return std::nullopt;
  return it->second.waiting;
}

bool Scheduler::is_running(int64_t job_id) const {
  return running_.count(job_id) > 0;
}

void Scheduler::listen_output(int64_t job_id, OutputListener listener) {
  if (auto it = running_.find(job_id); it != running_.end())
    it->second->listeners.push_back(std::move(listener));
}

void Scheduler::listen_jobs(JobListener listener, std::function<bool()> alive) {
  std::erase_if(job_listeners_, [](const JobListenerEntry& l) { return !l.alive(); });
  job_listeners_.push_back({std::move(listener), std::move(alive)});
}

}  // namespace ptbuild
