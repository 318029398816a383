// The ops of `ptbuild bisect` (docs/bisect.md): start one, show them, cancel them.
#include <nlohmann/json.hpp>

#include "daemon/bisect/bisector.h"
#include "daemon/server/ops/common.h"

namespace ptbuild::ops {

namespace code = protocol::code;

namespace {

protocol::BisectView bisect_view(const BisectRecord& b) {
  protocol::BisectView v{b.id,
                         b.variant,
                         b.good,
                         b.bad,
                         b.state,
                         b.commits,
                         b.first_bad,
                         b.message,
                         std::nullopt,
                         0,
                         max_builds(b.commits.size()),
                         b.created_at,
                         b.finished_at};
  for (const BisectCommit& c : b.commits) v.builds += c.job ? 1 : 0;
  if (b.changes_json) {
    nlohmann::json changes = nlohmann::json::parse(*b.changes_json, nullptr, false);
    if (changes.is_object()) v.changes = changes_from_json(changes);
  }
  return v;
}

Bisector& bisector_of(OpsContext& ctx) {
  if (!ctx.bisector) throw OpError{code::kInternal, "bisect is not available"};
  return *ctx.bisector;
}

}  // namespace

std::optional<OpResult> op_bisect(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::BisectRequest>(call.req.args);
  std::vector<std::string> names = resolve_or_throw(ctx, {req.variant});
  if (names.size() != 1)
    throw OpError{code::kAmbiguousTarget, "'" + req.variant + "' names " + std::to_string(names.size()) +
                                              " variants: bisect one at a time"};
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  bisector_of(ctx).bisect(names.front(), req.good, req.bad,
                          [channel, rid](std::optional<BisectRecord> started, const std::string& error) {
                            if (!started)
                              channel->send(protocol::error_reply(rid, code::kBadRequest, error));
                            else
                              channel->send(protocol::ok_reply(
                                  rid, protocol::to_json(protocol::BisectsReply{{bisect_view(*started)}})));
                          });
  return std::nullopt;
}

std::optional<OpResult> op_bisect_status(OpsContext& ctx, const OpCall&) {
  protocol::BisectsReply reply;
  for (const BisectRecord& b : ctx.store.bisects(20)) reply.bisects.push_back(bisect_view(b));
  return protocol::to_json(reply);
}

std::optional<OpResult> op_bisect_cancel(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::BisectCancelRequest>(call.req.args);
  std::string variant;
  if (!req.variant.empty()) {
    std::vector<std::string> names = resolve_or_throw(ctx, {req.variant});
    if (names.size() == 1) variant = names.front();
  }
  protocol::BisectsReply reply;
  for (const BisectRecord& b : bisector_of(ctx).cancel(variant, static_cast<int>(call.caller.uid)))
    reply.bisects.push_back(bisect_view(b));
  if (reply.bisects.empty())
    throw OpError{code::kNotFound, req.variant.empty() ? "no bisection is running"
                                                       : "no bisection of '" + req.variant + "' is running"};
  return protocol::to_json(reply);
}

}  // namespace ptbuild::ops
