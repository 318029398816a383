// The ops that make jobs from the matrix's state: publish, nightly.
#include <nlohmann/json.hpp>

#include "core/target.h"
#include "core/text.h"
#include "local/files.h"
#include "daemon/provenance/provenance.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/steps.h"
#include "daemon/server/ops/common.h"

namespace ptbuild::ops {

namespace code = protocol::code;

namespace {

// A variant's latest build as publish judges it; `recipe_now` is read off the loop.
struct Candidate {
  std::string name;
  std::optional<Job> build;
  std::string recipe_path;  // "" when the variant is not in the catalog
  std::string recipe_now;   // its sha now
};

// Why a variant's latest build may not be published (docs/publishing.md), or "".
std::string refusal(const OpsContext& ctx, const Candidate& c, bool force) {
  std::string id = c.build ? "build #" + std::to_string(c.build->id) : "";
  if (!c.build) return c.name + " has never been built";
  if (!c.build->out_path)
    return c.name + ": its latest " + id + " has no output (" + std::string(to_string(c.build->state)) + ")";
  if (force) return "";
  nlohmann::json verify =
      c.build->verify_json ? nlohmann::json::parse(*c.build->verify_json, nullptr, false) : nlohmann::json();
  if (c.build->state != JobState::succeeded)
    return c.name + ": its latest " + id + " " + std::string(to_string(c.build->state));
  if (ctx.config.verify.enabled && !(verify.is_object() && verify.value("ok", false)))
    return c.name + ": " + id + " did not pass verification";
  if (!c.recipe_path.empty() && c.build->recipe_sha && c.recipe_now != *c.build->recipe_sha)
    return c.name + ": the recipe changed since " + id + " (build it again)";
  return "";
}

}  // namespace

// publish TARGET… [--force] (docs/publishing.md): only the latest build, if it succeeded and passed
// verification and its recipe has not changed since, unless forced. The recipes are read off the
// loop; the reply comes once they have been.
std::optional<OpResult> op_publish(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::PublishRequest>(call.req.args);
  if (ctx.config.backend.kind == "nix" && ctx.config.publish.store.empty())
    throw OpError{code::kConflict,
                  "publish.store is not set: the nix backend publishes with nix copy --to STORE "
                  "(e.g. file:///srv/cache)"};
  std::vector<Candidate> candidates;
  for (const std::string& name : resolve_or_throw(ctx, req.targets)) {
    std::optional<VariantRecord> variant = ctx.store.variant(name);
    candidates.push_back({name, ctx.store.latest_job(name, JobKind::build),
                          variant ? variant->repo_path + "/" + variant->recipe : "", ""});
  }
  ctx.off_loop.run(
      [candidates]() mutable {
        for (Candidate& c : candidates)
          if (!c.recipe_path.empty()) c.recipe_now = recipe_sha(c.recipe_path);
        return candidates;
      },
      [&ctx, channel = call.channel, rid = call.req.id, force = req.force](std::vector<Candidate> read) {
        std::vector<std::string> refusals, names;
        for (const Candidate& c : read) {
          if (std::string why = refusal(ctx, c, force); !why.empty()) refusals.push_back(why);
          names.push_back(c.name);
        }
        if (!refusals.empty())
          return channel->send(protocol::error_reply(
              rid, code::kConflict,
              "not published: " + join(refusals, "; ") + (force ? "" : " (--force publishes anyway)")));
        NewJob proto;
        proto.kind = JobKind::publish;
        proto.reason = "published by hand";
        proto.force = force;
        try {
          channel->send(protocol::ok_reply(rid, protocol::to_json(enqueue(ctx, names, proto))));
        } catch (const std::exception& e) {  // the database refused it: the client hears why
          channel->send(protocol::error_reply(rid, code::kInternal, e.what()));
        }
      });
  return std::nullopt;
}

// nightly [TARGET…] (docs/nightly.md): queue the variants whose inputs changed since their last good
// build; the reply comes once every variant has been looked at.
// The statement is read off the loop: the state folder may be on a slow disk.
std::optional<OpResult> op_provenance(OpsContext& ctx, const OpCall& call) {
  Job job = find_job(ctx, protocol::from_args<protocol::ShowRequest>(call.req.args).job);
  if (job.kind == JobKind::publish || !job.out_path)
    if (std::optional<Job> build = ctx.store.latest_good_build(job.variant); build && build->out_path)
      job = std::move(*build);
  if (!job.out_path)
    throw OpError{code::kNotFound, "#" + std::to_string(job.id) + " has no output: no provenance"};
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  ctx.off_loop.run(
      [file = provenance_path(ctx.config.daemon.state_dir, *job.out_path)] { return read_file(file); },
      [channel, rid, job](std::optional<std::string> text) {
        if (!text)
          return channel->send(protocol::error_reply(
              rid, code::kNotFound,
              "#" + std::to_string(job.id) +
                  " has no provenance: it is written for a build that passed verification"));
        channel->send(protocol::ok_reply(
            rid, protocol::to_json(protocol::ProvenanceReply{job.id, *job.out_path, *text})));
      });
  return std::nullopt;
}

std::optional<OpResult> op_nightly(OpsContext& ctx, const OpCall& call) {
  std::vector<std::string> targets = protocol::from_args<protocol::NightlyRequest>(call.req.args).targets;
  if (targets.empty()) targets = ctx.config.nightly.targets;
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  OpsContext* c = &ctx;
  auto resolve = [c](const std::vector<std::string>& t) {
    return resolve_targets(t, c->store.catalog(), alias_defaults(c->config));
  };
  auto progress = [channel, rid](size_t done, size_t total) {
    if (channel->is_open())
      channel->send(protocol::event(rid, "progress",
                                    protocol::to_json(protocol::NightlyProgress{
                                        static_cast<int64_t>(done), static_cast<int64_t>(total)})));
  };
  ctx.plan_nightly(targets, resolve, progress, [c, channel, rid](NightlyPlan plan) {
    if (!plan.fatal.empty()) {
      channel->send(protocol::error_reply(rid, code::kUnknownTarget, plan.fatal));
      return;
    }
    protocol::NightlyReply reply;
    for (const NightlyPlan::Entry& e : plan.rebuild) {
      NewJob proto;
      proto.reason = "nightly: " + e.reason;
      protocol::QueuedJob queued = enqueue(*c, {e.name}, proto).jobs.front();
      protocol::JobView job = job_view(*c, *c->store.job(queued.id));
      job.fresh = queued.fresh;
      reply.jobs.push_back(std::move(job));
    }
    for (const NightlyPlan::Entry& e : plan.skipped) reply.skipped.push_back({e.name, e.reason});
    for (const NightlyPlan::Entry& e : plan.errors) reply.errors.push_back({e.name, e.reason});
    channel->send(protocol::ok_reply(rid, protocol::to_json(reply)));
  });
  return std::nullopt;
}

}  // namespace ptbuild::ops
