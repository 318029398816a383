// What the ops of every family share (daemon/server/ops/*.cpp): how a request is handed to an op,
// how targets and job references are resolved, and how replies show jobs and builders.
// Private to the ops: daemon/server/ops.h is the interface.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/replies.h"
#include "core/requests.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/server/ops.h"
#include "daemon/store/store.h"

namespace ptbuild::ops {

struct OpCall {
  const protocol::Request& req;
  const Caller& caller;
  const std::shared_ptr<Channel>& channel;
};
using OpFunction = std::optional<OpResult> (*)(OpsContext&, const OpCall&);

std::string now(const OpsContext& ctx);
AliasDefaults alias_defaults(const Config& config);
// Resolves targets or throws the first error as an OpError (all errors in its message).
std::vector<std::string> resolve_or_throw(const OpsContext& ctx, const std::vector<std::string>& targets);
// For a listener: whether its client is still there (without keeping the client alive itself).
std::function<bool()> while_connected(const std::shared_ptr<Channel>& channel);

// A job as a reply shows it, with what only the scheduler knows: why a queued job has not started.
protocol::JobView job_view(const OpsContext& ctx, Job job);
protocol::JobsReply jobs_reply(const OpsContext& ctx, const std::vector<Job>& jobs);
protocol::BuilderView builder_view(const Scheduler::BuilderSummary& b);
// Jobs named by id or by target (the job each of its variants stands for); exactly one for find_job.
std::vector<Job> find_jobs(const OpsContext& ctx, const std::vector<protocol::JobRef>& refs);
Job find_job(const OpsContext& ctx, const protocol::JobRef& ref);
// Queues jobs with the dedupe of docs/jobs.md: a queued job is returned as it is; a running one
// gets a second job only with force. One transaction: all of the variants or none.
protocol::QueueReply enqueue(OpsContext& ctx, const std::vector<std::string>& names, const NewJob& proto);

// The families (one file each).
std::optional<OpResult> op_queue(OpsContext& ctx, const OpCall& call);  // job_ops.cpp
std::optional<OpResult> op_cancel(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_retry(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_show(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_changes(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_provenance(OpsContext& ctx, const OpCall& call);  // publish_ops.cpp
std::optional<OpResult> op_bisect(OpsContext& ctx, const OpCall& call);      // bisect_ops.cpp
std::optional<OpResult> op_bisect_status(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_bisect_cancel(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_jobs(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_wait(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_log(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_watch(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_status(OpsContext& ctx, const OpCall& call);  // status_ops.cpp
std::optional<OpResult> op_matrix(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_fixes(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_builders(OpsContext& ctx, const OpCall& call);  // fleet_ops.cpp
std::optional<OpResult> op_set_builder(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_gc(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_pause(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_resume(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_drain(OpsContext& ctx, const OpCall& call);
std::optional<OpResult> op_publish(OpsContext& ctx, const OpCall& call);  // publish_ops.cpp
std::optional<OpResult> op_nightly(OpsContext& ctx, const OpCall& call);

}  // namespace ptbuild::ops
