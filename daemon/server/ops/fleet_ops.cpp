// The ops on the fleet and the queue as a whole: builders, set_builder, gc, pause, resume, drain.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/backend.h"
#include "daemon/resources/gc.h"
#include "daemon/runner/off_loop.h"
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

// `ptbuild gc` (docs/resources.md): the retention policy over the store's record of builds, then
// Nix's own GC, off the loop; the reply comes when it is done.
std::optional<OpResult> op_gc(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::GcRequest>(call.req.args);
  if (!req.builder.empty()) {
    auto builders = ctx.scheduler.summary().builders;
    auto named = std::find_if(builders.begin(), builders.end(),
                              [&](const auto& b) { return b.spec.name == req.builder; });
    if (named == builders.end())
      throw OpError{protocol::code::kNotFound, "no builder named '" + req.builder + "'"};
    if (!named->spec.is_local())
      throw OpError{protocol::code::kBadRequest,
                    "gc collects this machine's store only: builder " + req.builder +
                        " is remote (its own nix-daemon keeps its store; run nix-store --gc there)"};
  }
  GcPlan plan = plan_gc(ctx.store.gc_candidates(), ctx.config.gc.keep_good);
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  ctx.off_loop.run(
      [nix_store = nix_store_program(nix_program(ctx.config.backend)), roots = ctx.config.roots_dir(),
       plan = std::move(plan), max_free = ctx.config.gc.max_free,
       dry_run = req.dry_run] { return try_collect_garbage(nix_store, roots, plan, max_free, dry_run); },
      [channel, rid](GcOutcome done) {
        if (done.reply)
          channel->send(protocol::ok_reply(rid, protocol::to_json(*done.reply)));
        else
          channel->send(protocol::error_reply(rid, protocol::code::kInternal, done.error));
      });
  return std::nullopt;
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
