// The steps after a build (docs/verification.md, docs/publishing.md): verifying the artifact, here or on a
// GPU builder, and publishing it. The flox publish preconditions (git) are checked off the event loop.
#include <algorithm>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/text.h"
#include "core/verify.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/scheduler_parts.h"
#include "daemon/scheduler/steps.h"

namespace ptbuild {

namespace {
// Importing torch takes seconds; a probe that runs for minutes is stuck.
constexpr auto kVerifyTimeout = std::chrono::minutes(10);
}  // namespace

void Scheduler::start_publish(const Job& queued_job) {
  std::optional<VariantRecord> variant = store_.variant(queued_job.variant);
  std::optional<Job> build = store_.latest_job(queued_job.variant, JobKind::build);
  if (!variant || !build || !build->out_path) {
    fail_without_running(
        queued_job,
        {failure_class::kPublishFailed,
         "nothing to publish: " + queued_job.variant + " has no successful build", "build it first", ""});
    return;
  }
  if (config_.backend.kind == "flox" && !publish_checked_.erase(queued_job.id)) {
    // git answers in milliseconds, or not for minutes on a hung network mount: off the loop.
    memory_[queued_job.id].waiting = "checking that flox publish would take the build repo (git)";
    if (!publish_checking_.insert(queued_job.id).second) return;
    off_loop_->run(
        [repo = variant->repo_path] { return flox_publish_refusal(repo); },
        [this, job = queued_job](std::string refusal) {
          publish_checking_.erase(job.id);
          if (!refusal.empty()) {
            fail_without_running(job, {failure_class::kPublishFailed, "flox publish would refuse: " + refusal,
                                       "fix the build repo, then ptbuild retry this job", ""});
            return;
          }
          publish_checked_.insert(job.id);  // the next dispatch starts it, unless something holds the queue
          poke();
        });
    return;
  }
  Active* a = begin_job(queued_job, *variant, nullptr, "publishing " + *build->out_path,
                        {.out_path = build->out_path});
  if (!a) return;
  launch(*a,
         publish_command(config_.backend, config_.publish,
                         {a->job.variant, variant->repo_path, variant->recipe, ""}, *build->out_path),
         {}, config_.daemon.build_timeout, "build_timeout");
}

Scheduler::Outcome Scheduler::publish_outcome(Active& a, int exit_code) {
  Outcome o{JobState::succeeded, {.finished_at = now(), .exit_code = exit_code}, "published", {}};
  if (exit_code == 0) return o;
  o.state = JobState::failed;
  Failure f = a.output.scanner().diagnose(exit_code).value_or(Failure{});
  f.failure_class = failure_class::kPublishFailed;
  // flox says why in its "✘ ERROR: …" line; prefer it to a generic first error.
  std::istringstream tail(a.output.scanner().tail());
  for (std::string line; std::getline(tail, line);)
    if (size_t at = line.find("ERROR: "); at != std::string::npos) {
      f.message = line.substr(at + 7);
      break;
    }
  if (f.hint.empty() || f.hint.starts_with("read the excerpt"))
    f.hint = "read the publish log (ptbuild log JOB)";
  o.detail = "publish failed: " + f.message;
  o.change.failure = std::move(f);
  return o;
}

void Scheduler::start_verify(Active& a, Outcome built) {
  if (probe_path_.empty()) probe_path_ = install_probe(config_.daemon.state_dir);
  a.phase = Active::Phase::verify;
  a.built = std::move(built.change);
  a.probe_output.clear();
  std::map<std::string, std::string> env;
  // A GPU variant is checked on a real GPU of its architecture where the fleet has one (docs/fleet.md).
  a.verified_on.clear();
  if (a.variant.axes.gpu_arch)
    for (const auto& b : builders_)
      if (b->up() && !b->spec.is_local() &&
          std::ranges::count(b->spec.supported_features, "gpu-" + *a.variant.axes.gpu_arch) > 0) {
        a.verified_on = b->spec.name;
        break;
      }
  BuildCommand cmd;
  if (a.verified_on.empty()) {
    cmd = probe_command(config_, a.variant, *a.built.out_path, probe_path_, env);
    a.log.write("=== ptbuild: verifying " + *a.built.out_path + "\n");
  } else {
    BuildCommand there = probe_command(config_, a.variant, *a.built.out_path, "/dev/stdin", env);
    cmd = remote_probe_command(config_.backend, builder_named(a.verified_on)->spec, *a.built.out_path,
                               there.argv, env, probe_path_);
    env.clear();
    a.log.write("=== ptbuild: verifying " + *a.built.out_path + " on builder " + a.verified_on + " (gpu-" +
                *a.variant.axes.gpu_arch + "): copying it there, then the probe\n");
  }
  launch(a, cmd, env, std::chrono::duration_cast<Millis>(kVerifyTimeout), "the verification limit");
}

Scheduler::Outcome Scheduler::verify_outcome(Active& a, int exit_code) {
  Outcome o{JobState::succeeded, a.built, "", {}};
  std::optional<nlohmann::json> facts = probe_facts(a.probe_output);
  VerifyResult r;
  if (facts) {
    r = compare_facts(a.variant.axes, *facts, a.verified_on);
  } else {
    std::string tail = a.probe_output.substr(a.probe_output.size() > 400 ? a.probe_output.size() - 400 : 0);
    r.problems.push_back("the probe printed no facts (exit " + std::to_string(exit_code) +
                         "): " + std::string(trim(tail)));
  }
  o.change.verify_json = r.to_json().dump();
  if (r.ok) {
    o.detail = "built and verified " + a.built.out_path.value_or("");
    return o;
  }
  o.state = JobState::failed;
  o.change.failure = Failure{failure_class::kVerifyFailed,
                             "the artifact is not what its name says: " + join(r.problems, "; "),
                             "the build succeeded but produced the wrong thing; for CUDA off use "
                             "torch.override { cudaSupport = true; gpuTargets = [ … ]; }",
                             facts ? facts->dump() : a.probe_output.substr(0, 2000)};
  o.detail = "verify_failed: " + join(r.problems, "; ");
  return o;
}

}  // namespace ptbuild
