// The ops on jobs: queue, cancel, retry, show, jobs, wait, log, watch.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/backend.h"
#include "daemon/changes/changes.h"
#include "daemon/runner/off_loop.h"
#include "daemon/server/log_stream.h"
#include "daemon/server/ops/common.h"

namespace ptbuild::ops {

namespace code = protocol::code;

std::optional<OpResult> op_queue(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::QueueRequest>(call.req.args);
  NewJob proto;
  proto.priority = req.priority;
  proto.reason = req.reason;
  proto.force = req.force;
  return protocol::to_json(enqueue(ctx, resolve_or_throw(ctx, req.targets), proto));
}

namespace {
// The queued builds that wait for `job`'s variant through a repo's `after` (docs/jobs.md).
std::vector<Job> dependents_of(OpsContext& ctx, const Job& job) {
  std::vector<Job> out;
  std::optional<VariantRecord> upstream = ctx.store.variant(job.variant);
  if (!upstream || job.kind != JobKind::build) return out;
  std::string key = axes_key(upstream->axes);
  for (const Job& q : ctx.store.jobs_in_state(JobState::queued)) {
    auto repo = std::find_if(ctx.config.repos.begin(), ctx.config.repos.end(),
                             [&](const RepoConfig& r) { return r.name == q.repo; });
    if (q.kind != JobKind::build || repo == ctx.config.repos.end() || repo->after != job.repo) continue;
    if (std::optional<VariantRecord> v = ctx.store.variant(q.variant); v && axes_key(v->axes) == key)
      out.push_back(q);
  }
  return out;
}

// What waits for a cancelled job is not cancelled with it: it stays queued until a build of this
// variant succeeds. Said here, so that nobody wonders why those jobs never start.
std::string held_note(const Job& job, const std::vector<Job>& held) {
  std::string ids;
  for (const Job& h : held) ids += (ids.empty() ? "#" : ", #") + std::to_string(h.id) + " " + h.variant;
  return "; " + ids + (held.size() == 1 ? " waits" : " wait") + " for it and stay" +
         (held.size() == 1 ? "s" : "") + " queued until a build of " + job.variant +
         " succeeds (ptbuild cancel them too, or queue it again)";
}
}  // namespace

std::optional<OpResult> op_cancel(OpsContext& ctx, const OpCall& call) {
  protocol::CancelReply reply;
  for (const Job& j : find_jobs(ctx, protocol::from_args<protocol::JobsByRefRequest>(call.req.args).jobs)) {
    auto result = ctx.scheduler.cancel(j.id, "uid " + std::to_string(call.caller.uid));
    std::string what = result == Scheduler::CancelOutcome::cancelled  ? "cancelled"
                       : result == Scheduler::CancelOutcome::stopping ? "stopping"
                                                                      : "already finished";
    if (result != Scheduler::CancelOutcome::already_finished)
      if (std::vector<Job> held = dependents_of(ctx, j); !held.empty()) what += held_note(j, held);
    reply.jobs.push_back({j.id, j.variant, what});
  }
  return protocol::to_json(reply);
}

std::optional<OpResult> op_retry(OpsContext& ctx, const OpCall& call) {
  std::vector<std::string> names;
  NewJob proto;
  for (const Job& j : find_jobs(ctx, protocol::from_args<protocol::JobsByRefRequest>(call.req.args).jobs)) {
    if (!is_finished(j.state))
      throw OpError{code::kConflict, "job #" + std::to_string(j.id) + " is " +
                                         std::string(to_string(j.state)) +
                                         ": only a finished job can be retried"};
    names.push_back(j.variant);
    proto.priority = std::max(proto.priority, j.priority);
    proto.reason = "retry of #" + std::to_string(j.id);
  }
  return protocol::to_json(enqueue(ctx, names, proto));
}

std::optional<OpResult> op_show(OpsContext& ctx, const OpCall& call) {
  Job job = find_job(ctx, protocol::from_args<protocol::ShowRequest>(call.req.args).job);
  return protocol::to_json(job_view(ctx, std::move(job)));
}

// A failure's changes were found when it was recorded (its derivation may be collected since):
// those are answered at once. Any other question asks Nix and git, off the loop.
std::optional<OpResult> op_changes(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::ChangesRequest>(call.req.args);
  Job job = find_job(ctx, req.job);
  if (job.kind != JobKind::build) {
    if (std::holds_alternative<int64_t>(req.job))
      throw OpError{code::kBadRequest, "#" + std::to_string(job.id) + " is a " +
                                           std::string(to_string(job.kind)) +
                                           " job: changes compares builds"};
    std::optional<Job> build = ctx.store.latest_job(job.variant, JobKind::build);
    if (!build) throw OpError{code::kNotFound, "no build of " + job.variant};
    job = std::move(*build);
  }
  if (job.changes_json && req.since == 0) return nlohmann::json::parse(*job.changes_json);
  ChangesQuery query;
  try {
    query = changes_query(ctx.store, nix_program(ctx.config.backend), job,
                          req.since ? std::optional(req.since) : std::nullopt);
  } catch (const std::runtime_error& e) {
    throw OpError{code::kBadRequest, e.what()};
  }
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  ctx.off_loop.run(
      [query = std::move(query)] { return what_changed(query); },
      [channel, rid](Changes changes) { channel->send(protocol::ok_reply(rid, to_json(changes))); });
  return std::nullopt;
}

std::optional<OpResult> op_jobs(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::JobsRequest>(call.req.args);
  std::optional<JobState> state;
  if (!req.state.empty()) {
    state = parse_job_state(req.state);
    if (!state)
      throw OpError{code::kBadRequest,
                    "unknown state '" + req.state + "' (queued, running, succeeded, failed, cancelled)"};
  }
  // One page at most; one row more than it says whether another page follows.
  int64_t page = std::min(req.limit, protocol::kJobsPage);
  std::vector<Job> jobs = ctx.store.recent_jobs(state, static_cast<int>(page + 1), req.before, req.variant);
  bool more = static_cast<int64_t>(jobs.size()) > page;
  if (more) jobs.pop_back();
  protocol::JobsReply reply = jobs_reply(ctx, std::move(jobs));
  if (more && req.limit > page) reply.next_before = reply.jobs.back().job.id;
  return protocol::to_json(reply);
}

// wait JOB…: the reply comes once every named job has ended.
std::optional<OpResult> op_wait(OpsContext& ctx, const OpCall& call) {
  std::vector<int64_t> ids;
  for (const Job& j : find_jobs(ctx, protocol::from_args<protocol::JobsByRefRequest>(call.req.args).jobs))
    ids.push_back(j.id);
  auto all_done = [&ctx, ids]() -> std::optional<protocol::JobsReply> {
    std::vector<Job> jobs;
    for (int64_t id : ids) {
      std::optional<Job> j = ctx.store.job(id);
      if (!j || !is_finished(j->state)) return std::nullopt;
      jobs.push_back(*j);
    }
    return jobs_reply(ctx, jobs);
  };
  if (auto done = all_done()) return protocol::to_json(*done);
  ctx.scheduler.listen_jobs(
      [channel = call.channel, rid = call.req.id, all_done](const Job&) {
        if (!channel->is_open()) return false;
        auto done = all_done();
        if (!done) return true;
        channel->send(protocol::ok_reply(rid, protocol::to_json(*done)));
        return false;
      },
      while_connected(call.channel));
  return std::nullopt;
}

// log JOB [--tail N] [-f]: see LogStream.
std::optional<OpResult> op_log(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::LogRequest>(call.req.args);
  auto stream = std::make_shared<LogStream>(ctx.scheduler, ctx.store, call.channel, call.req.id,
                                            find_job(ctx, req.job), req.tail, req.follow);
  stream->start();
  return std::nullopt;
}

// watch: pushes a "job" event whenever a job starts or ends, for `status --watch`; it never
// replies, the client hangs up when it is done.
std::optional<OpResult> op_watch(OpsContext& ctx, const OpCall& call) {
  ctx.scheduler.listen_jobs(
      [channel = call.channel, rid = call.req.id](const Job& j) {
        if (!channel->is_open()) return false;
        channel->send(protocol::event(rid, "job", job_to_json(j)));
        return true;
      },
      while_connected(call.channel));
  return std::nullopt;
}

}  // namespace ptbuild::ops
