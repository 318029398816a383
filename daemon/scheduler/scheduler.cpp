#include "daemon/scheduler/scheduler.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/text.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/resources/cgroup.h"
#include "daemon/resources/local_facts.h"
#include "daemon/runner/off_loop.h"
#include "daemon/runner/process_tree.h"
#include "daemon/scheduler/dispatch.h"
#include "daemon/scheduler/job_run.h"
#include "daemon/scheduler/steps.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace asio = boost::asio;

Scheduler::Scheduler(asio::io_context& io, Store& store, const Config& config, Runner& runner,
                     SchedulerSeams seams)
    : io_(io),
      store_(store),
      config_(config),
      runner_(runner),
      clock_(seams.clock ? *seams.clock : system_clock()),
      machine_checks_(io, runner, kMachineChecksAtOnce),
      timers_(std::make_unique<SchedulerTimers>(io)),
      source_lister_(fixed_output_inputs),
      local_facts_(seams.local_facts ? seams.local_facts : read_local_facts),
      off_loop_(std::make_unique<OffLoop>(
          io, seams.blocking_work_inline ? OffLoop::Mode::inline_for_tests : OffLoop::Mode::threads)) {
  if (seams.build_cgroups) {
    // Once, before the loop runs: a few cgroupfs operations.
    std::string why_not;
    cgroups_ = BuildCgroups::open(why_not);
    if (cgroups_)
      spdlog::info("builds on this machine run in cgroups of their own ({})", cgroups_->measured_by());
    else
      spdlog::warn("builds on this machine are not measured by a cgroup: {}", why_not);
  }
  reconfigure();
}

Scheduler::~Scheduler() {
  if (repair_thread_.joinable()) repair_thread_.join();
}

void Scheduler::set_source_lister(SourceLister lister) {
  source_lister_ = std::move(lister);
}

void Scheduler::set_missing_repos(std::vector<std::string> repos) {
  missing_repos_ = std::move(repos);
}

JobRun& Scheduler::run_of(int64_t job_id) {
  auto& slot = jobs_[job_id];
  if (!slot) slot = std::make_unique<JobRun>(job_id);
  return *slot;
}

JobRun* Scheduler::find_run(int64_t job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
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
    JobRun& run = run_of(b.job_id);
    run.network_retries = b.network_retries;
    if (auto until = parse_rfc3339(b.not_before); until && *until > clock_.wall())
      run.not_before = clock_.steady() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             *until - clock_.wall());
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
                        {.finished_at = clock_.rfc3339(), .failure = settled}, clock_.rfc3339(),
                        settled->failure_class + ": " + settled->message);
      spdlog::warn("job #{} ({}) was running when ptbuildd stopped; its log says {}: failed", j.id, j.variant,
                   settled->failure_class);
    } else {
      store_.transition(tx, j.id, JobState::running, JobState::queued, {.clear_outcome = true},
                        clock_.rfc3339(), "requeued: ptbuildd restarted while the build ran");
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
  DispatchSnapshot s = snapshot();
  apply(decide_dispatch(s), s);
}

// Everything the decision needs, read once.
DispatchSnapshot Scheduler::snapshot() {
  DispatchSnapshot s;
  s.held = hold_reason();
  s.queued = store_.jobs_in_state(JobState::queued);
  for (VariantRecord& v : store_.variants()) s.variants.emplace(v.name, std::move(v));
  for (const RepoConfig& r : config_.repos)
    s.repos[r.name] = {r.path, r.after, std::ranges::count(missing_repos_, r.name) > 0};
  s.longest_first = config_.daemon.order == "longest-first";
  if (s.longest_first) s.durations = store_.typical_durations();
  s.publish_needs_check = config_.backend.kind == "flox";
  s.now = clock_.steady();
  s.wall = clock_.wall();
  s.features_matter = features_matter();
  s.planned_before = planned_;
  for (const auto& [variant, needs] : needs_)
    if (needs) s.needs.emplace(variant, *needs);
  for (const auto& b : builders_)
    s.builders.push_back({&b->spec, b->running, b->up(), b->state(),
                          b->facts ? room_of(*b->facts, b->spec.limits, running_uses(*b)) : BuilderRoom{},
                          running_left(*b, s.now)});
  expect_resources(s);
  for (const auto& [id, run] : jobs_) {
    if (run->not_before != std::chrono::steady_clock::time_point{})
      s.backoffs[id] = {run->not_before, run->network_retries};
    if (run->publish_checked) s.publish_checked.insert(id);
    if (run->flow.stage == Stage::checking) s.publish_checking.insert(id);
    if (run->attempt && in_attempt(run->flow.stage))
      s.running.emplace(std::pair{run->attempt->job.repo, axes_key(run->attempt->variant.axes)}, id);
  }
  std::map<std::string, std::string> after;  // repo -> its upstream repo
  for (const RepoConfig& r : config_.repos)
    if (!r.after.empty()) after[r.name] = r.after;
  std::map<std::pair<std::string, std::string>, std::string> variant_at;  // (repo, axes key) -> variant
  if (!after.empty())
    for (const auto& [name, v] : s.variants) variant_at.emplace(std::pair{v.repo, axes_key(v.axes)}, name);
  for (const Job& j : s.queued) {
    if (j.kind == JobKind::publish) {
      if (!s.publishable.count(j.variant)) {
        std::optional<Job> build = store_.latest_job(j.variant, JobKind::build);
        s.publishable[j.variant] = build && build->out_path ? *build->out_path : "";
      }
      continue;
    }
    auto v = s.variants.find(j.variant);
    auto up = after.find(j.repo);
    if (v == s.variants.end() || up == after.end()) continue;
    std::pair key{up->second, axes_key(v->second.axes)};
    auto upstream = variant_at.find(key);
    if (upstream == variant_at.end() || s.upstream.count(key)) continue;
    if (std::optional<Job> last = store_.latest_job(upstream->second, JobKind::build))
      s.upstream[key] = {upstream->second, last->id, last->state};
  }
  return s;
}

// What each queued build is expected to take (docs/resources.md), from the store's history, and
// which of them run alone or with fewer cores after an OOM kill.
void Scheduler::expect_resources(DispatchSnapshot& s) {
  Store::ResourceHistory history = store_.resource_history();
  std::map<std::string, std::vector<Expectation>> families;
  for (const auto& [variant, past] : history.by_variant)
    families[history.family_of[variant]].push_back(
        expect_from(past, {}, "", config_.resources.default_memory));
  for (const Job& j : s.queued) {
    auto v = s.variants.find(j.variant);
    if (j.kind == JobKind::publish || v == s.variants.end()) continue;
    if (!s.expected.count(j.variant)) {
      std::string family = resource_family(v->second.axes);
      auto own = history.by_variant.find(j.variant);
      auto kin = families.find(family);
      s.expected[j.variant] =
          expect_from(own == history.by_variant.end() ? std::vector<PastUse>{} : own->second,
                      kin == families.end() || family.empty() ? std::vector<Expectation>{} : kin->second,
                      family, config_.resources.default_memory);
    }
    std::optional<ResourceUse> last = j.resources_json ? parse_resource_use(*j.resources_json) : std::nullopt;
    if (!last || !last->oom_killed) continue;
    if (config_.resources.oom_retry == "alone")
      s.alone.insert(j.id);
    else
      s.max_cores[j.id] = std::max(1, last->cores / 2);
  }
}

void Scheduler::apply(const DispatchDecision& d, const DispatchSnapshot& s) {
  planned_ = d.planned;
  std::map<int64_t, const Job*> queued;
  for (const Job& j : s.queued) queued[j.id] = &j;
  // What it remembers of a job that is no longer queued, and never started here, is gone.
  std::erase_if(
      jobs_, [&](const auto& j) { return j.second->flow.stage == Stage::queued && !queued.count(j.first); });
  for (auto& [id, run] : jobs_)
    if (run->flow.stage == Stage::queued) run->waiting.clear();
  for (const auto& [id, why] : d.waiting) run_of(id).waiting = why;
  for (const auto& [id, failure] : d.refused) {
    JobRun& run = run_of(id);
    run.unstarted = JobRun::Unstarted{JobState::failed, failure, failure.message};
    advance(run, Event::refused);
  }
  for (int64_t id : d.publish_checks) advance(run_of(id), Event::check_publish);
  for (int64_t id : d.publishes) {
    const Job& job = *queued.at(id);
    const std::string& out = s.publishable.at(job.variant);
    JobRun& run = run_of(id);
    if (begin_attempt(run, job, s.variants.at(job.variant), nullptr, "publishing " + out, {.out_path = out}))
      advance(run, Event::start_publish);
  }
  for (const std::string& variant : d.read_needs) read_needs(s.variants.at(variant));
  for (const DispatchDecision::Start& start : d.builds) {
    const Job& job = *queued.at(start.job);
    FleetBuilder& builder = *builders_[start.builder];
    JobRun& run = run_of(start.job);
    std::string where = "started on " + builder.spec.name;
    if (start.cores) where += " with " + std::to_string(start.cores) + " cores";
    if (begin_attempt(run, job, s.variants.at(job.variant), &builder, where,
                      {.builder = builder.spec.name})) {
      Attempt& a = *run.attempt;
      a.cores = start.cores;
      a.memory_limit = start.memory_limit;
      a.expected = start.expected;
      advance(run, Event::start_build);
    } else
      run.waiting = "starting";
  }
  if (d.wake_at) {
    timers_->retry_wakeup.expires_after(*d.wake_at - s.now);
    timers_->retry_wakeup.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poke();
    });
  }
}

// queued -> running in the store, with the attempt's bookkeeping; false if the job was no longer
// queued (cancelled meanwhile) or the store would not take it.
bool Scheduler::begin_attempt(JobRun& run, const Job& queued, const VariantRecord& variant,
                              FleetBuilder* builder, const std::string& what, JobChange change) {
  int attempt = queued.attempt + 1;
  change.started_at = clock_.rfc3339();
  change.attempt = attempt;
  change.clear_outcome = true;
  std::optional<Job> job;
  try {
    auto tx = store_.begin();
    if (!store_.transition(tx, queued.id, JobState::queued, JobState::running, change, clock_.rfc3339(),
                           what + " (attempt " + std::to_string(attempt) + ")"))
      return false;
    tx.commit();
    job = store_.job(queued.id);
  } catch (const sql::Error& e) {
    run.waiting = std::string("the database would not record its start (") + e.what() + "): trying again";
    return false;
  }
  run.waiting.clear();
  if (builder) ++builder->running;
  VariantRecord where = variant;
  if (job->rev)
    where.repo_path = bisect_worktree(config_.daemon.state_dir, *job->rev);  // built at that commit
  run.attempt =
      std::make_unique<Attempt>(io_, *job, where, builder ? builder->spec.name : "", config_.daemon.log_max);
  Attempt& a = *run.attempt;
  a.last_output = clock_.steady();
  if (std::string err =
          a.log.open(job->log_path, job->attempt == 1 ? BuildLog::Attempt::first : BuildLog::Attempt::retry);
      !err.empty())
    a.start_failure = Failure{failure_class::kBuilderFailed, err, "check the state folder's logs/", ""};
  else if (!a.log.moved_aside().empty())
    spdlog::warn(
        "job #{}: a file was already where its new log goes (another job's log, or planted): moved to {}",
        job->id, a.log.moved_aside());
  return true;
}

// A job started or ended: tell the listeners.
void Scheduler::announce(int64_t job_id) {
  std::optional<Job> job = store_.job(job_id);
  if (!job) return;
  std::erase_if(job_listeners_, [&](JobListenerEntry& l) { return !l.alive() || !l.on_job(*job); });
}

void Scheduler::after_idle() {
  if (std::ranges::any_of(jobs_, [](const auto& j) { return in_attempt(j.second->flow.stage); })) return;
  if (draining_ && on_drained_) {
    store_.set_flag("draining", false);  // done: the next start builds again
    std::exchange(on_drained_, nullptr)();
  }
  if (stopping_ && on_stopped_) std::exchange(on_stopped_, nullptr)();
}

Scheduler::CancelOutcome Scheduler::cancel(int64_t job_id, const std::string& who) {
  JobRun* run = find_run(job_id);
  if (run && (in_attempt(run->flow.stage) || run->flow.stage == Stage::recording)) {
    if (run->flow.stage == Stage::recording) return CancelOutcome::already_finished;
    if (run->attempt && run->flow.stop == StopReason::none) run->attempt->stop_detail = "cancelled by " + who;
    advance(*run, Event::cancel);
    return CancelOutcome::stopping;
  }
  std::optional<Job> job = store_.job(job_id);
  if (!job || job->state != JobState::queued) return CancelOutcome::already_finished;
  JobRun& queued = run_of(job_id);
  queued.unstarted =
      JobRun::Unstarted{JobState::cancelled,
                        {failure_class::kCancelled, "cancelled by " + who + " before it started", "", ""},
                        "cancelled by " + who};
  advance(queued, Event::cancel);
  std::optional<Job> after = store_.job(job_id);
  return after && after->state == JobState::cancelled ? CancelOutcome::cancelled
                                                      : CancelOutcome::already_finished;
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
  std::vector<int64_t> ids;
  for (const auto& [id, run] : jobs_) ids.push_back(id);
  for (int64_t id : ids)
    if (JobRun* run = find_run(id)) {
      if (run->attempt && run->flow.stop == StopReason::none)
        run->attempt->stop_detail = "ptbuildd is stopping";
      advance(*run, Event::shutdown);
    }
  asio::post(io_, [this] { after_idle(); });
}

std::optional<Progress> Scheduler::progress(int64_t job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || !it->second->attempt) return std::nullopt;
  return it->second->attempt->output.progress();
}

std::optional<std::string> Scheduler::waiting(int64_t job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second->flow.stage != Stage::queued || it->second->waiting.empty())
    return std::nullopt;
  return it->second->waiting;
}

bool Scheduler::is_running(int64_t job_id) const {
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && in_attempt(it->second->flow.stage);
}

void Scheduler::listen_output(int64_t job_id, OutputListener listener) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end() && it->second->attempt && in_attempt(it->second->flow.stage))
    it->second->attempt->listeners.push_back(std::move(listener));
}

void Scheduler::flush_log(int64_t job_id) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end() && it->second->attempt) it->second->attempt->log.flush();
}

void Scheduler::listen_jobs(JobListener listener, std::function<bool()> alive) {
  std::erase_if(job_listeners_, [](const JobListenerEntry& l) { return !l.alive(); });
  job_listeners_.push_back({std::move(listener), std::move(alive)});
}

}  // namespace ptbuild
