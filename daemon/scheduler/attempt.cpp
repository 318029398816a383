// One job's flow: every event the scheduler sees about a job goes through advance(), which asks
// the transition function (core/job_flow.h) what comes next and carries it out. What happens to a
// job after its build exits 0 is read here: on_exit() asks build_end() (outcome.cpp) what the exit
// means — `succeeded` when the build left its result — and next() answers launch_verify when
// [verify] is on (the probe runs, and its verdict is recorded) or record when it is off.
#include <filesystem>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/protocol.h"
#include "core/duration.h"
#include "core/text.h"
#include "core/verify.h"
#include "daemon/changes/changes.h"
#include "daemon/provenance/provenance.h"
#include "daemon/nightly/fingerprint.h"
#include "daemon/resources/cgroup.h"
#include "daemon/hashfix/hashfix.h"
#include "daemon/resources/gc.h"
#include "daemon/resources/local_facts.h"
#include "daemon/runner/off_loop.h"
#include "daemon/runner/spawn.h"
#include "daemon/scheduler/job_run.h"
#include "daemon/scheduler/steps.h"

namespace ptbuild {

namespace asio = boost::asio;

namespace {
constexpr auto kProgressWriteInterval = std::chrono::seconds(1);
constexpr size_t kMaxProbeOutput = 1024 * 1024;
constexpr auto kRecordRetry = std::chrono::seconds(5);
// A ping of a builder whose build fell silent: an ssh that gets no answer in this time means the
// machine is gone (a frozen one accepts the connection and never speaks).
constexpr auto kSilenceCheckTimeout = std::chrono::seconds(30);
// Importing torch takes seconds; a probe that runs for minutes is stuck.
constexpr auto kVerifyTimeout = std::chrono::minutes(10);

std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "" : target.string();
}

// What the preparing step reads off the loop.
struct Prepared {
  Store::RecipeFacts facts;
  SourceInputs sources;
  bool listed = false;
  std::vector<std::string> cgroup_procs;  // the build's cgroup, made
  std::string cgroup_error;
  std::string tmpdir;  // the build's own TMPDIR, made
  std::string tmpdir_error;
};

// What the building step's end reads off the loop: the result, and what the build used.
struct Measured {
  std::string result;
  std::string root_error;  // the output could not be kept as a GC root
  std::optional<BuildCgroups::Usage> usage;
  std::optional<uint64_t> output_size;
  std::optional<Changes> changes;  // a failure's, since the last good build
};

// The bytes of a store path (its files, as they are on disk: hard links once).
std::optional<uint64_t> tree_size(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return std::nullopt;
  uint64_t total = 0;
  auto add = [&](const std::filesystem::path& p) {
    if (std::filesystem::is_regular_file(std::filesystem::symlink_status(p, ec)))
      total += std::filesystem::file_size(p, ec);
  };
  add(path);
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    add(it->path());
  return total;
}
}  // namespace

void Scheduler::advance(JobRun& run, Event event) {
  Step step = next(run.flow, event, {.verify = config_.verify.enabled});
  if (!step.expected) {
    spdlog::debug("job #{}: {} while {}: nothing to do", run.id, to_string(event), to_string(run.flow.stage));
    return;
  }
  run.flow = step.flow;
  Attempt* a = run.attempt.get();
  switch (step.action) {
    case Action::none:
      return;
    case Action::check_publish:
      return check_publish(run);
    case Action::fail_unstarted:
    case Action::cancel_queued:
      return settle_unstarted(run);
    case Action::prepare:
      return prepare(run);
    case Action::fetch_sources:
      return launch(run, realise_command(config_.backend, a->sources), {}, config_.daemon.build_timeout,
                    "build_timeout");
    case Action::launch_build:
      return launch(run, a->build, a->build_env, config_.daemon.build_timeout, "build_timeout");
    case Action::launch_verify:
    case Action::verify_elsewhere:  // the resting GPU builder is passed over
      return start_verify(run);
    case Action::start_repair:
      return start_repair(run);
    case Action::launch_publish: {
      announce(run.id);  // it runs: the listeners hear of it
      BuildTarget target{a->job.variant, a->variant.repo_path, a->variant.recipe, ""};
      return launch(run,
                    publish_command(config_.backend, config_.publish, target, *a->job.out_path,
                                    provenance_path(config_.daemon.state_dir, *a->job.out_path)),
                    {}, config_.daemon.build_timeout, "build_timeout");
    }
    case Action::terminate:
      return terminate(run);
    case Action::record:
      end_attempt(run);
      return record(run);
    case Action::record_stop: {
      Outcome stopped = stop_outcome(run, run.outcome ? run.outcome->change.exit_code.value_or(1) : 1);
      if (run.outcome) stopped.fixes = std::move(run.outcome->fixes);  // what was repaired stays recorded
      run.outcome = std::move(stopped);
      end_attempt(run);
      return record(run);
    }
    case Action::record_later:
      arm_record_retry();
      after_idle();  // its slot is free: a drain or a stop need not wait for the database
      return;
    case Action::release:
      return release(run);
    case Action::back_to_queue:
      run.ended.reset();
      run.outcome.reset();
      after_idle();
      return poke();
  }
}

// What the store knows for a failed build's changes; nullopt when it cannot be read (the
// failure is recorded without them).
std::optional<ChangesQuery> Scheduler::failure_changes_query(int64_t job_id) {
  try {
    if (std::optional<Job> job = store_.job(job_id); job && job->kind == JobKind::build)
      return changes_query(store_, nix_program(config_.backend), *job);
  } catch (const std::exception& e) {
    spdlog::warn("job #{}: what changed since its last good build cannot be asked: {}", job_id, e.what());
  }
  return std::nullopt;
}

// The recipe is read (its sha, for publish; its fingerprint, for the nightly) and its sources
// listed, off the loop: a repo on a hung network mount must not stop the daemon.
void Scheduler::prepare(JobRun& run) {
  announce(run.id);  // it runs: the listeners hear of it
  Attempt& a = *run.attempt;
  if (a.start_failure) {
    run.outcome = Outcome{JobState::failed,
                          {.finished_at = clock_.rfc3339(), .exit_code = 127, .failure = a.start_failure},
                          a.start_failure->message};
    return advance(run, Event::failed);
  }
  // A bisect build's result link stays in its worktree: the variant's own is its newest build's.
  a.build = build_command(config_.backend, {a.job.variant, a.variant.repo_path, a.variant.recipe,
                                            a.job.rev ? a.variant.repo_path : config_.results_dir()});
  const char* inherited = std::getenv("NIX_CONFIG");
  FleetBuilder* builder = builder_named(a.builder);
  if (!config_.builders.empty() && builder)  // a configured fleet: the chosen machine builds, no other
    place_on_builder(config_.backend, builder->spec, a.build, a.build_env, inherited ? inherited : "");
  if (a.cores > 0) give_cores(config_.backend, a.cores, a.build, a.build_env, inherited ? inherited : "");
  // A build on this machine gets a cgroup of its own: measured, and held to its share.
  bool here = builder && builder->spec.is_local();
  std::shared_ptr<const BuildCgroups> cgroups = here ? cgroups_ : nullptr;
  if (cgroups) a.cgroup = std::to_string(a.job.id) + "-" + std::to_string(a.job.attempt);
  SourceLister lister = config_.hashfix.enabled ? source_lister_ : nullptr;
  if (lister) {
    a.log.write(
        "=== ptbuild: job #" + std::to_string(a.job.id) + " attempt " + std::to_string(a.job.attempt) +
        " on " + a.builder + " at " + clock_.rfc3339() +
        ": its sources (fixed-output inputs) first, so that a wrong hash is repaired before the long build\n");
    a.log.flush();  // the attempt is on disk whatever happens next (a crash while the sources are listed)
  }
  std::string probe_dir = config_.verify.enabled ? config_.daemon.state_dir : "";
  off_loop_->run(
      [lister, nix = nix_program(config_.backend), repo = a.variant.repo_path, recipe = a.variant.recipe,
       probe_dir, cgroups, cgroup = a.cgroup, limit = a.memory_limit, here,
       label = "job-" + std::to_string(a.job.id) + "-" + std::to_string(a.job.attempt)] {
        Prepared p;
        if (cgroups) p.cgroup_procs = cgroups->create(cgroup, limit, p.cgroup_error);
        if (here) p.tmpdir = make_build_tmpdir(label, p.tmpdir_error);
        p.facts.recipe_sha = recipe_sha(repo + "/" + recipe);
        p.facts.fingerprint = file_fingerprint(repo, recipe);
        p.facts.commit = head_commit(repo);
        if (!probe_dir.empty()) install_probe(probe_dir);
        if (lister) {
          p.sources = lister(nix, repo + "/" + recipe, repo);
          p.listed = true;
          if (!p.sources.derivation.empty()) p.facts.drv_path = p.sources.derivation;
        }
        return p;
      },
      [this, id = run.id](Prepared p) {
        JobRun* same = find_run(id);
        if (!same || same->flow.stage != Stage::preparing) return;
        try {
          store_.set_recipe_facts(id, p.facts);
        } catch (const sql::Error& e) {
          spdlog::warn("job #{}: its recipe's sha, fingerprint and commit were not recorded: {}", id,
                       e.what());
        }
        Attempt& attempt = *same->attempt;
        attempt.build.join_cgroups = std::move(p.cgroup_procs);
        if (!p.cgroup_error.empty()) {
          attempt.log.write("=== ptbuild: the build is not measured: " + p.cgroup_error + "\n");
          spdlog::warn("job #{}: {}", id, p.cgroup_error);
          attempt.cgroup.clear();
        }
        if (!p.tmpdir.empty()) {
          attempt.tmpdir = p.tmpdir;
          attempt.build_env["TMPDIR"] = p.tmpdir;
        } else if (!p.tmpdir_error.empty()) {
          attempt.log.write("=== ptbuild: its build directory is not measured: " + p.tmpdir_error + "\n");
        }
        if (p.listed && p.sources.drvs.empty() && !p.sources.error.empty())
          attempt.log.write("=== ptbuild: its sources could not be listed (" + p.sources.error +
                            "): building\n");
        attempt.sources = std::move(p.sources.drvs);
        advance(*same, attempt.sources.empty() ? Event::nothing_to_fetch : Event::prepared);
      });
}

// git answers in milliseconds, or not for minutes on a hung network mount: off the loop.
void Scheduler::check_publish(JobRun& run) {
  std::optional<VariantRecord> variant;
  if (std::optional<Job> job = store_.job(run.id)) variant = store_.variant(job->variant);
  std::string repo = variant ? variant->repo_path : "";
  off_loop_->run([repo] { return flox_publish_refusal(repo); },
                 [this, id = run.id](std::string refusal) {
                   JobRun* same = find_run(id);
                   if (!same) return;
                   if (!refusal.empty()) {
                     Failure f{failure_class::kPublishFailed, "flox publish would refuse: " + refusal,
                               "fix the build repo, then ptbuild retry this job", ""};
                     same->unstarted = JobRun::Unstarted{JobState::failed, f, f.message};
                   }
                   same->publish_checked = refusal.empty();
                   advance(*same, refusal.empty() ? Event::check_passed : Event::check_refused);
                   poke();  // a passed check starts at the next dispatch, unless the queue is held
                 });
}

// A queued job ends without running (failed or cancelled); it is forgotten once the store has it.
void Scheduler::settle_unstarted(JobRun& run) {
  if (run.unstarted) {
    const JobRun::Unstarted& u = *run.unstarted;
    auto tx = store_.begin();
    bool changed = store_.transition(tx, run.id, JobState::queued, u.state,
                                     {.finished_at = clock_.rfc3339(), .failure = u.failure},
                                     clock_.rfc3339(), u.detail);
    tx.commit();
    if (changed) announce(run.id);
  }
  release(run);
}

// Starts a job's process (the sources, the build, its probe, or a publish) and arms its deadline.
void Scheduler::launch(JobRun& run, const BuildCommand& cmd, std::map<std::string, std::string> env,
                       std::chrono::milliseconds limit, const std::string& limit_name) {
  Attempt& a = *run.attempt;
  a.result_link = cmd.result_link;
  a.process.reset();
  std::string argv_text;
  for (const auto& arg : cmd.argv) argv_text += (argv_text.empty() ? "" : " ") + arg;
  a.log.write("=== ptbuild: job #" + std::to_string(a.job.id) + " attempt " + std::to_string(a.job.attempt) +
              " on " + (a.builder.empty() ? "local" : a.builder) + " at " + clock_.rfc3339() +
              "\n=== " + argv_text + "\n");
  a.log.flush();  // the attempt's header is on disk whatever happens next
  env["PTBUILD_JOB"] = std::to_string(a.job.id);
  env["PTBUILD_VARIANT"] = a.job.variant;
  // The process appends to the live file itself; the plain text stays there up to log_max, or
  // not at all without daemon.live_log.
  BuildCommand appending = cmd;
  appending.output = OutputFile{a.log.live_path(), config_.daemon.live_log ? config_.daemon.log_max : 0};
  std::string error;
  int64_t id = run.id;
  a.process = runner_.start(appending, env,
                            {[this, id](std::string_view chunk) { on_output(id, chunk); },
                             [this, id](ExitStatus s) { on_exit(id, s.exit_code); }},
                            error);
  a.log.process_appends(a.process != nullptr);
  if (!a.process) {
    a.log.write("=== ptbuild: " + error + "\n");
    a.start_failure = Failure{failure_class::kBuilderFailed, error,
                              "check backend.program and backend.kind in the config", ""};
    asio::post(io_, [this, id] { on_exit(id, 127); });
    return;
  }
  store_.set_build_process(id, a.process->process_group(), a.process->identity());
  if (run.flow.stage == Stage::building) a.build_started = clock_.steady();
  arm_log_flush();
  spdlog::info("job #{} {}: started {} (attempt {}, pgid {})", id, a.job.variant, cmd.argv.front(),
               a.job.attempt, a.process->process_group());
  a.last_output = clock_.steady();
  a.deadline.expires_after(limit);
  a.deadline.async_wait([this, id, limit, limit_name](const boost::system::error_code& ec) {
    JobRun* same = ec ? nullptr : find_run(id);
    if (!same || !same->attempt) return;
    if (same->flow.stop == StopReason::none)
      same->attempt->stop_detail = "ran longer than " + limit_name + " (" + format_duration(limit) + ")";
    advance(*same, Event::timeout);
  });
  arm_silence_timer(run);
}

void Scheduler::start_verify(JobRun& run) {
  Attempt& a = *run.attempt;
  if (!a.pending)
    a.pending = std::exchange(run.outcome, std::nullopt);           // the build's, until the probe speaks
  std::string probe_path = config_.daemon.state_dir + "/probe.py";  // written while the job prepared
  const std::string& out = *a.pending->change.out_path;
  a.probe_output.clear();
  std::map<std::string, std::string> env;
  // A GPU variant is checked on a real GPU of its architecture where the fleet has one
  // (docs/fleet.md); a builder that could not is resting now, so this finds another, or here.
  a.verified_on.clear();
  if (a.variant.axes.gpu_arch)
    for (const auto& b : builders_)
      if (b->up() && !b->spec.is_local() &&
          std::ranges::count(b->spec.supported_features, "gpu-" + *a.variant.axes.gpu_arch) > 0) {
        a.verified_on = b->spec.name;
        break;
      }
  if (a.verified_on.empty()) {
    BuildCommand cmd = probe_command(config_, a.variant, out, probe_path, env);
    a.log.write("=== ptbuild: verifying " + out + "\n");
    return launch(run, cmd, env, kVerifyTimeout, "the verification limit");
  }
  BuildCommand there = probe_command(config_, a.variant, out, "/dev/stdin", env);
  BuildCommand cmd = remote_probe_command(config_.backend, builder_named(a.verified_on)->spec, out,
                                          there.argv, env, probe_path);
  a.log.write("=== ptbuild: verifying " + out + " on builder " + a.verified_on + " (gpu-" +
              *a.variant.axes.gpu_arch + "): copying it there, then the probe\n");
  launch(run, cmd, {}, kVerifyTimeout, "the verification limit");
}

// A quiet build's log is on disk within a second too (a noisy one's is flushed as it writes);
// the progress goes to the database on the same timer. Only frames that are due are closed:
// flushing all 32 logs in one handler held a `status` behind it for milliseconds.
void Scheduler::arm_log_flush() {
  if (timers_->log_flush_armed) return;
  timers_->log_flush_armed = true;
  timers_->log_flush.expires_after(BuildLog::kFlushCheck);
  timers_->log_flush.async_wait([this](const boost::system::error_code& ec) {
    timers_->log_flush_armed = false;
    if (ec) return;
    bool running = false;
    for (auto& [id, run] : jobs_)
      if (run->attempt && in_attempt(run->flow.stage)) {
        run->attempt->log.flush_if_due();
        running = true;
      }
    save_progress();
    if (running) arm_log_flush();
  });
}

void Scheduler::arm_silence_timer(JobRun& run) {
  Attempt& a = *run.attempt;
  a.silence.expires_after(a.last_output + config_.daemon.max_silent - clock_.steady());
  a.silence.async_wait([this, id = run.id](const boost::system::error_code& ec) {
    JobRun* same = ec ? nullptr : find_run(id);
    if (!same || !same->attempt || !runs_process(same->flow.stage)) return;
    // Output moves the deadline; the timer is only re-armed here, not on every chunk.
    if (clock_.steady() - same->attempt->last_output < config_.daemon.max_silent)
      return arm_silence_timer(*same);
    std::string silent = "no output for " + format_duration(config_.daemon.max_silent) + " (max_silent)";
    FleetBuilder* b = builder_named(same->attempt->builder);
    if (same->flow.stop != StopReason::none || !b || b->spec.is_local()) {
      if (same->flow.stop == StopReason::none) same->attempt->stop_detail = silent + ": hung";
      return advance(*same, Event::timeout);
    }
    // Silence from a remote build is the machine's until it answers: a frozen or vanished builder
    // must not fail the variant, nor get the next job.
    if (std::exchange(same->attempt->asking_builder, true)) return;
    run_async(
        io_, runner_, builder_ping_command(config_.backend, b->spec), kSilenceCheckTimeout,
        [this, id, attempt = same->attempt.get(), silent](AsyncResult r) {
          JobRun* now = find_run(id);
          if (!now || now->attempt.get() != attempt || !runs_process(now->flow.stage) ||
              now->flow.stop != StopReason::none)
            return;
          Attempt& a = *now->attempt;
          a.asking_builder = false;
          if (clock_.steady() - a.last_output < config_.daemon.max_silent)
            return arm_silence_timer(*now);  // it spoke again meanwhile
          if (r.exit_code == 0) {
            a.stop_detail = silent + ": hung (builder " + a.builder + " answers)";
            return advance(*now, Event::timeout);
          }
          std::string why = "stopped answering: " + silent + ", and " +
                            (r.timed_out ? std::string("it did not answer a ping either")
                                         : std::string(trim(r.output)).substr(0, 200));
          a.log.write("=== ptbuild: builder " + a.builder + " " + why + "; the job goes back to the queue\n");
          if (FleetBuilder* lost = builder_named(a.builder)) builder_fault(*lost, why);
          a.stop_detail = "builder " + a.builder + " " + why;
          advance(*now, Event::shutdown);  // a stop that puts the job back in the queue
        });
  });
}

void Scheduler::on_output(int64_t job_id, std::string_view chunk) {
  JobRun* run = find_run(job_id);
  if (!run || !run->attempt) return;
  Attempt& a = *run->attempt;
  a.last_output = clock_.steady();
  a.log.take(chunk);
  if (run->flow.stage == Stage::verifying) {
    if (a.probe_output.size() < kMaxProbeOutput) a.probe_output.append(chunk);
    return;
  }
  std::erase_if(a.listeners, [&](OutputListener& l) { return !l(chunk); });
  if (a.output.feed(chunk)) a.progress_unsaved = true;
}

// The running builds' progress, at most once a kProgressWriteInterval and in one transaction: 32
// flooding builds made 32 transactions a second where one does.
void Scheduler::save_progress() {
  if (clock_.steady() - timers_->progress_saved < kProgressWriteInterval) return;
  timers_->progress_saved = clock_.steady();
  std::vector<std::pair<int64_t, Progress>> unsaved;
  for (auto& [id, run] : jobs_)
    if (Attempt* a = run->attempt.get())
      if (std::optional<Progress> p = a->output.progress(); p && a->progress_unsaved) {
        unsaved.emplace_back(id, *p);
        a->progress_unsaved = false;
      }
  if (unsaved.empty()) return;
  auto tx = store_.begin();
  for (const auto& [id, p] : unsaved) store_.set_progress(id, p.done, p.total);
  tx.commit();
}

void Scheduler::on_exit(int64_t job_id, int exit_code) {
  JobRun* run = find_run(job_id);
  if (!run || !run->attempt || !runs_process(run->flow.stage)) return;
  Attempt& a = *run->attempt;
  a.log.process_appends(false);
  if (exit_code != 0) a.log.check_room();  // it may have stopped on lines a full disk refused
  a.output.finish();
  a.deadline.cancel();
  a.silence.cancel();
  a.grace.cancel();
  a.process.reset();  // it has exited: nothing of it to signal any more
  if (auto p = a.output.progress(); p && run->flow.stage == Stage::building)
    store_.set_progress(job_id, p->done, p->total);
  if (run->flow.stop != StopReason::none) {
    run->outcome = Outcome{.change = {.exit_code = exit_code}};
    return advance(*run, Event::failed);  // however it ended, the stop decides
  }
  switch (run->flow.stage) {
    case Stage::sources:
      // Realised: the sources are there and right. A failure is read as a build's would be.
      if (exit_code == 0 && !a.start_failure) return advance(*run, Event::succeeded);
      return advance(*run, build_end(*run, exit_code, ""));
    case Stage::building: {
      // A result link may be in the build repo, on a network mount, and the build's cgroup is
      // read and removed: off the loop.
      std::shared_ptr<const BuildCgroups> cgroups = a.cgroup.empty() ? nullptr : cgroups_;
      bool built = exit_code == 0 && !a.start_failure;
      // A failure is recorded with what changed since the variant's last good build (docs/changes.md):
      // its derivation may be collected before anyone asks.
      std::optional<ChangesQuery> changes;
      if (!built) changes = failure_changes_query(job_id);
      return off_loop_->run(
          [link = a.result_link, cgroups, group = a.cgroup, built, job_id, changes = std::move(changes),
           keep = a.job.kind == JobKind::build, nix_store = nix_store_program(nix_program(config_.backend)),
           roots = config_.roots_dir()] {
            Measured m;
            if (changes) m.changes = what_changed(*changes);
            if (built) m.result = read_link(link);
            // Kept until the retention policy lets it go (docs/resources.md): the result link
            // alone is the variant's newest build only. A bisect build is not kept.
            if (!m.result.empty() && keep) m.root_error = add_build_root(nix_store, roots, job_id, m.result);
            if (cgroups) {
              m.usage = cgroups->read(group);
              cgroups->remove(group);
            }
            if (!m.result.empty()) m.output_size = tree_size(m.result);
            return m;
          },
          [this, job_id, exit_code](Measured m) {
            JobRun* same = find_run(job_id);
            if (!same || !runs_process(same->flow.stage)) return;
            Attempt& a = *same->attempt;
            if (!m.root_error.empty()) spdlog::warn("job #{}: {}", job_id, m.root_error);
            const FleetBuilder* where = builder_named(a.builder);
            std::string how = !a.cgroup.empty() ? cgroups_->measured_by()
                              : where && !where->spec.is_local()
                                  ? "remote builder: its nix-daemon runs the build"
                                  : "no cgroup for builds here";
            a.used = measured_use(a, m.usage, how, m.output_size, clock_.steady());
            Event end = build_end(*same, exit_code, m.result);
            if (m.changes && same->outcome && same->outcome->state == JobState::failed)
              same->outcome->change.changes_json = protocol::json_text(to_json(*m.changes));
            advance(*same, end);
          });
    }
    case Stage::verifying:
      return advance(*run, verify_end(*run, exit_code));
    case Stage::publishing:
      return advance(*run, publish_end(*run, exit_code));
    default:
      return;
  }
}

void Scheduler::terminate(JobRun& run) {
  Attempt& a = *run.attempt;
  spdlog::info("job #{} {}: stopping: {}", a.job.id, a.job.variant, a.stop_detail);
  if (!a.process) return;
  a.process->terminate();
  a.grace.expires_after(config_.daemon.kill_grace);
  a.grace.async_wait([this, id = run.id](const boost::system::error_code& ec) {
    JobRun* same = ec ? nullptr : find_run(id);
    if (!same || !same->attempt || !same->attempt->process) return;
    spdlog::warn("job #{}: still alive {} after SIGTERM: SIGKILL", id,
                 format_duration(config_.daemon.kill_grace));
    same->attempt->process->kill();
  });
}

// The attempt is over and its outcome known: free its builder's slot, close its log. The job
// object keeps what the store must still take.
void Scheduler::end_attempt(JobRun& run) {
  std::unique_ptr<Attempt> a = std::move(run.attempt);
  if (!a) return;
  // The plain copy goes right after (off the loop, by an rm at the builds' priority: freeing the
  // page cache of a 100 MB file is the build's cost).
  if (std::string live = a->log.close_leaving_live(); !live.empty())
    off_loop_->run([live] { return remove_at_build_priority(live); },
                   [](const std::string& error) {
                     if (!error.empty()) spdlog::warn("{}", error);
                   });
  if (FleetBuilder* b = builder_named(a->builder)) {
    --b->running;
    if (run.outcome && run.outcome->state != JobState::queued) ++b->done;
  }
  if (!a->builder.empty()) needs_.erase(a->variant.name);
  if (!a->cgroup.empty() && cgroups_)  // stopped before its end was read: its group goes too
    off_loop_->run([cgroups = cgroups_, group = a->cgroup] { return cgroups->remove(group); }, [](bool) {});
  // Nix removed the build's directory from it; one Nix kept (keep-failed, or it was killed)
  // stays where the operator can look, and the log of the daemon says where.
  if (!a->tmpdir.empty())
    off_loop_->run(
        [dir = a->tmpdir] {
          std::error_code ec;
          std::filesystem::remove(dir, ec);
          return ec ? dir + " is left: " + ec.message() : "";
        },
        [id = run.id](const std::string& left) {
          if (!left.empty()) spdlog::warn("job #{}: its build directory {}", id, left);
        });
  run.ended = std::move(a->job);
}

// Writes a job's outcome. When the database cannot take it (a full disk, a lock held too long)
// the outcome is kept and written again every few seconds, so the job ends once the database
// works again: it is never left `running` with nothing running it.
void Scheduler::record(JobRun& run) {
  const Job& job = *run.ended;
  const Outcome& o = *run.outcome;
  try {
    auto tx = store_.begin();
    store_.transition(tx, job.id, JobState::running, o.state, o.change, clock_.rfc3339(), o.detail);
    if (o.backoff) store_.set_backoff(job.id, o.backoff->network_retries, o.backoff->not_before);
    for (const HashFix& fx : o.fixes)
      store_.add_hash_fix(
          tx, {0, job.id, job.variant, fx.drv, fx.file, fx.line, fx.old_text, fx.new_text, clock_.rfc3339()});
    if (o.state == JobState::succeeded && job.kind == JobKind::build && config_.publish.auto_publish)
      store_.insert_job(tx,
                        {job.variant, JobKind::publish, job.priority,
                         "publish.auto after build #" + std::to_string(job.id), false},
                        clock_.rfc3339());
    tx.commit();
    if (!run.repair_journal.empty())  // the history holds the repair now: its journal has done its work
      off_loop_->run(
          [journal = std::exchange(run.repair_journal, "")] {
            std::error_code ignored;
            return std::filesystem::remove(journal, ignored);
          },
          [](bool) {});
  } catch (const sql::Error& e) {
    spdlog::error("job #{} {}: cannot record that it {} ({}); trying again in {}", job.id, job.variant,
                  to_string(o.state), e.what(), format_duration(kRecordRetry));
    return advance(run, Event::record_failed);
  }
  spdlog::info("job #{} {}: {} ({})", job.id, job.variant, to_string(o.state), o.detail);
  advance(run, o.state == JobState::queued ? Event::recorded_queued : Event::recorded);
}

void Scheduler::arm_record_retry() {
  if (timers_->record_retry_armed) return;
  timers_->record_retry_armed = true;
  timers_->record_retry.expires_after(kRecordRetry);
  timers_->record_retry.async_wait([this](const boost::system::error_code& ec) {
    timers_->record_retry_armed = false;
    if (ec) return;
    std::vector<int64_t> waiting;
    for (const auto& [id, run] : jobs_)
      if (run->flow.stage == Stage::recording) waiting.push_back(id);
    for (int64_t id : waiting)
      if (JobRun* run = find_run(id)) record(*run);
    poke();
  });
}

// The job has ended here: the listeners hear of it and the scheduler forgets it.
void Scheduler::release(JobRun& run) {
  int64_t id = run.id;
  bool ended = run.ended.has_value();
  jobs_.erase(id);
  if (ended) announce(id);
  after_idle();
  poke();
}

}  // namespace ptbuild
