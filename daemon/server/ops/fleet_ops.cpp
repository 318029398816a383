// The ops on the fleet and the queue as a whole: builders, set_builder, pause, resume, drain.
#include <nlohmann/json.hpp>

#include "daemon/server/ops/common.h"

namespace ptbuild::ops {

std::optional<OpResult> op_builders(OpsContext& ctx, const OpCall&) {
  protocol::BuildersReply reply;
  for (const Scheduler::BuilderSummary& b : ctx.scheduler.summary().builders)
    reply.builders.push_back(builder_view(b));
  return protocol::to_json(reply);
}

std::optional<OpResult> op_set_builder(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::SetBuilderRequest>(call.req.args);
  if (std::string error = ctx.scheduler.set_builder_enabled(req.name, req.enabled); !error.empty())
    throw OpError{protocol::code::kNotFound, error};
  return op_builders(ctx, call);
}

std::optional<OpResult> op_pause(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.pause();
  return protocol::to_json(protocol::PauseReply{true});
}

std::optional<OpResult> op_resume(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.resume();
  return protocol::to_json(protocol::PauseReply{false});
}

std::optional<OpResult> op_drain(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.drain(ctx.exit_daemon);
  return protocol::to_json(protocol::DrainReply{true, ctx.scheduler.summary().running});
}

}  // namespace ptbuild::ops
