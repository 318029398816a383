#include "daemon/server/ops/common.h"

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/target.h"
#include "core/text.h"

namespace ptbuild::ops {

namespace code = protocol::code;

std::string now(const OpsContext& ctx) {
  return ctx.clock.rfc3339();
}

AliasDefaults alias_defaults(const Config& config) {
  AliasDefaults d;
  for (const RepoConfig& r : config.repos) d.default_cuda_by_repo.emplace_back(r.name, r.default_cuda);
  d.default_family = config.daemon.default_family;
  return d;
}

std::vector<std::string> resolve_or_throw(const OpsContext& ctx, const std::vector<std::string>& targets) {
  Resolution res = resolve_targets(targets, ctx.store.catalog(), alias_defaults(ctx.config));
  if (!res.ok()) {
    std::vector<std::string> messages;
    for (const TargetError& e : res.errors) messages.push_back(e.message);
    throw OpError{res.errors.front().code, join(messages, "; ")};
  }
  return res.names;
}

std::function<bool()> while_connected(const std::shared_ptr<Channel>& channel) {
  return [client = std::weak_ptr<Channel>(channel)] {
    auto c = client.lock();
    return c && c->is_open();
  };
}

protocol::JobView job_view(const OpsContext& ctx, Job job) {
  if (job.state == JobState::queued)
    job.waiting = ctx.scheduler.waiting(job.id).value_or("waiting for the dispatcher (queued just now)");
  return {std::move(job)};
}

protocol::JobsReply jobs_reply(const OpsContext& ctx, const std::vector<Job>& jobs) {
  protocol::JobsReply reply;
  for (const Job& j : jobs) reply.jobs.push_back(job_view(ctx, j));
  return reply;
}

namespace {
std::optional<protocol::BuilderResourcesView> resources_view(const Scheduler::BuilderSummary& b) {
  if (!b.facts) return std::nullopt;
  const MachineFacts& f = *b.facts;
  uint64_t total = memory_total_of(f, b.spec.limits);
  int cores = cores_of(f, b.spec.limits);
  protocol::BuilderResourcesView v{total,
                                   std::min(f.memory_available, total),
                                   b.committed,
                                   b.reserve,
                                   cores,
                                   f.store_free,
                                   f.build_dir_free,
                                   b.min_free,
                                   f.pressure_full_avg10,
                                   f.store_size,
                                   {}};
  for (const auto& h : b.holding) v.holding.push_back({h.job, h.memory, h.build_dir});
  return v;
}
}  // namespace

protocol::BuilderView builder_view(const Scheduler::BuilderSummary& b) {
  return {b.spec.name,
          b.spec.uri,
          b.state,
          b.running,
          b.spec.max_jobs,
          b.spec.systems,
          b.spec.supported_features,
          b.spec.mandatory_features,
          b.spec.speed_factor,
          b.done,
          b.last_error.empty() ? std::nullopt : std::optional(b.last_error),
          resources_view(b)};
}

namespace {
// The job a variant stands for: its running build, else its queued one, else its latest job.
std::optional<Job> job_of_variant(Store& store, const std::string& variant) {
  std::optional<Job> job = store.active_job(variant, JobKind::build, JobState::running);
  if (!job) job = store.active_job(variant, JobKind::build, JobState::queued);
  if (!job) job = store.latest_job(variant);
  return job;
}
}  // namespace

std::vector<Job> find_jobs(const OpsContext& ctx, const std::vector<protocol::JobRef>& refs) {
  std::vector<Job> out;
  for (const protocol::JobRef& ref : refs) {
    if (const int64_t* id = std::get_if<int64_t>(&ref)) {
      std::optional<Job> job = ctx.store.job(*id);
      if (!job) throw OpError{code::kNotFound, "no job " + std::to_string(*id)};
      out.push_back(std::move(*job));
    } else {
      const std::string& target = std::get<std::string>(ref);
      size_t before = out.size();
      for (const std::string& variant : resolve_or_throw(ctx, {target}))
        if (std::optional<Job> job = job_of_variant(ctx.store, variant)) out.push_back(std::move(*job));
      if (out.size() == before) throw OpError{code::kNotFound, "no job for '" + target + "'"};
    }
  }
  return out;
}

Job find_job(const OpsContext& ctx, const protocol::JobRef& ref) {
  std::vector<Job> jobs = find_jobs(ctx, {ref});
  if (jobs.size() > 1)
    throw OpError{code::kAmbiguousTarget, "'" + protocol::describe(ref) + "' names " +
                                              std::to_string(jobs.size()) + " jobs: name one"};
  return jobs.front();
}

protocol::QueueReply enqueue(OpsContext& ctx, const std::vector<std::string>& names, const NewJob& proto) {
  protocol::QueueReply reply;
  auto tx = ctx.store.begin();
  std::string at = now(ctx);
  for (const std::string& name : names) {
    std::optional<Job> existing = ctx.store.active_job(name, proto.kind, JobState::queued);
    if (!existing && !proto.force) existing = ctx.store.active_job(name, proto.kind, JobState::running);
    bool fresh = !existing;
    Job job = existing ? *existing : [&] {
      NewJob nj = proto;
      nj.variant = name;
      return ctx.store.insert_job(tx, nj, at);
    }();
    reply.jobs.push_back({job.id, job.variant, job.state, fresh});
  }
  tx.commit();
  ctx.scheduler.poke();
  return reply;
}

}  // namespace ptbuild::ops
