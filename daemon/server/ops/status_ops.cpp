// The ops that show the state of things: status, matrix, fixes.
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/eta.h"
#include "core/text.h"
#include "daemon/notifier/notifier.h"
#include "daemon/server/ops/common.h"

namespace ptbuild {

// A dashboard or a watch asks for `status` several times a second, and building the JSON of
// every job was a fifth of the daemon's CPU under 32 flooding builds: an unfiltered one is served
// again, as the text it was written as, while what it shows is the same. That is the store's
// jobs (a new snapshot after any write), why each queued job waits, the scheduler's state, and
// the second (ETAs are to it).
struct StatusCache {
  std::shared_ptr<const std::vector<Job>> jobs;
  std::vector<std::optional<std::string>> waiting;
  std::string second;
  nlohmann::json scheduler;
  ResultText text;
};

namespace ops {

namespace {

protocol::SchedulerView scheduler_view(const OpsContext& ctx, const Scheduler::Summary& s) {
  protocol::SchedulerView v{s.paused, s.draining, s.running, s.slots, {}, {}};
  for (const Scheduler::BuilderSummary& b : s.builders) v.builders.push_back(builder_view(b));
  if (ctx.notifier)
    for (const Notifier::HookStatus& h : ctx.notifier->status())
      v.notify.push_back({h.target, h.delivered, h.failed, h.failing,
                          h.last_error.empty() ? std::nullopt : std::optional(h.last_error),
                          h.last_error_at.empty() ? std::nullopt : std::optional(h.last_error_at)});
  return v;
}

protocol::StatusReply status_of(OpsContext& ctx, const std::vector<Job>& jobs, const Scheduler::Summary& s) {
  protocol::StatusReply reply{jobs_reply(ctx, jobs).jobs, scheduler_view(ctx, s)};
  std::map<std::string, std::optional<std::string>> family;
  for (const VariantRecord& v : ctx.store.variants()) family[v.name] = v.axes.family;
  Store::Durations durations = ctx.store.typical_durations();
  auto expected = [&](const Job& j) {
    auto f = family.find(j.variant);
    return durations.expected(j.variant, f == family.end() ? std::nullopt : f->second);
  };
  // The fleet's slots at their machines' speed; a builder taken out by the operator has none.
  std::vector<EtaSlot> slots;
  for (const Scheduler::BuilderSummary& b : s.builders)
    if (b.state != "disabled")
      for (int i = 0; i < b.spec.max_jobs; ++i) slots.push_back({b.spec.name, b.spec.speed_factor});
  std::vector<Job> in_order = jobs;
  order_as_dispatched(in_order, expected, ctx.config.daemon.order == "longest-first");
  std::map<int64_t, SystemTime> ends = estimate_ends(
      in_order, expected, slots, ctx.clock.wall(),
      [&](const Job& j, const EtaSlot& slot) { return ctx.scheduler.may_build(j.variant, slot.builder); });
  // The whole queue's: known only when every build in it is.
  bool all_known = true;
  SystemTime last{};
  for (const Job& j : jobs)
    if (j.kind == JobKind::build && !is_finished(j.state)) {
      auto end = ends.find(j.id);
      if (end == ends.end())
        all_known = false;
      else
        last = std::max(last, end->second);
    }
  if (all_known && last != SystemTime{}) reply.scheduler.eta = format_rfc3339(last);
  for (protocol::JobView& v : reply.jobs) {
    Job& j = v.job;
    v.has_eta = !is_finished(j.state);
    if (auto end = ends.find(j.id); end != ends.end()) {
      v.has_eta = true;
      v.eta = format_rfc3339(end->second);
    }
    // A running build's progress as it is now (the store's is written once a second).
    if (j.state == JobState::running)
      if (std::optional<Progress> p = ctx.scheduler.progress(j.id)) {
        j.progress_done = p->done;
        j.progress_total = p->total;
      }
  }
  return reply;
}

}  // namespace

std::optional<OpResult> op_status(OpsContext& ctx, const OpCall& call) {
  std::vector<std::string> targets = protocol::from_args<protocol::StatusRequest>(call.req.args).targets;
  std::vector<std::string> names;
  if (!targets.empty()) names = resolve_or_throw(ctx, targets);
  std::set<std::string> wanted(names.begin(), names.end());
  std::shared_ptr<const std::vector<Job>> all = ctx.store.status_jobs();
  Scheduler::Summary s = ctx.scheduler.summary();
  if (!wanted.empty()) {
    std::vector<Job> some;
    for (const Job& j : *all)
      if (wanted.count(j.variant)) some.push_back(j);
    return protocol::to_json(status_of(ctx, some, s));
  }
  nlohmann::json scheduler = protocol::to_json(scheduler_view(ctx, s));
  std::vector<std::optional<std::string>> waiting;
  for (const Job& j : *all)
    if (j.state == JobState::queued) waiting.push_back(ctx.scheduler.waiting(j.id));
  std::string second = now(ctx);
  second.resize(std::min(second.find('.'), second.size()));
  if (!ctx.last_status) ctx.last_status = std::make_shared<StatusCache>();
  StatusCache& last = *ctx.last_status;
  if (last.jobs != all || last.waiting != waiting || last.second != second || last.scheduler != scheduler) {
    auto text =
        std::make_shared<const std::string>(protocol::json_text(protocol::to_json(status_of(ctx, *all, s))));
    last = {all, std::move(waiting), std::move(second), std::move(scheduler), ResultText{std::move(text)}};
  }
  return last.text;
}

std::optional<OpResult> op_matrix(OpsContext& ctx, const OpCall&) {
  std::map<std::string, std::pair<int64_t, std::string>> last;
  for (const Job& j : ctx.store.latest_jobs()) last[j.variant] = {j.id, std::string(to_string(j.state))};
  protocol::MatrixReply reply;
  for (const VariantRecord& v : ctx.store.variants()) {
    auto it = last.find(v.name);
    bool built = it != last.end();
    reply.variants.push_back({v.name, v.repo, v.axes.family, v.axes.python, v.axes.cuda, v.axes.gpu_arch,
                              v.axes.isa, v.axes.extra, v.axes.platform, v.recipe,
                              built ? std::optional(it->second.first) : std::nullopt,
                              built ? std::optional(it->second.second) : std::nullopt,
                              ctx.tracked ? ctx.tracked(v.name) : std::nullopt});
  }
  return protocol::to_json(reply);
}

std::optional<OpResult> op_fixes(OpsContext& ctx, const OpCall&) {
  protocol::FixesReply reply;
  for (const Store::HashFixRecord& f : ctx.store.hash_fixes())
    reply.fixes.push_back({f.id, f.job_id, f.variant, f.drv, f.file, f.line, f.old_hash, f.new_hash, f.at});
  return protocol::to_json(reply);
}

}  // namespace ops
}  // namespace ptbuild
