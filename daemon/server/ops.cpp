#include "daemon/server/ops.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/eta.h"
#include "core/requests.h"
#include "core/target.h"
#include "core/text.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/scheduler/steps.h"
#include "daemon/server/server.h"
#include "daemon/store/store.h"
#include "daemon/server/log_stream.h"

namespace ptbuild {

using nlohmann::json;
namespace code = protocol::code;

namespace {

struct OpCall {
  const protocol::Request& req;
  const Caller& caller;
  const std::shared_ptr<Channel>& channel;
};

std::string now() {
  return format_rfc3339(std::chrono::system_clock::now());
}

AliasDefaults alias_defaults(const Config& config) {
  AliasDefaults d;
  for (const RepoConfig& r : config.repos) d.default_cuda_by_repo.emplace_back(r.name, r.default_cuda);
  d.default_family = config.daemon.default_family;
  return d;
}

// Resolves targets or throws the first error as an OpError (all errors in its message).
std::vector<std::string> resolve_or_throw(const OpsContext& ctx, const std::vector<std::string>& targets) {
  Resolution res = resolve_targets(targets, ctx.store.catalog(), alias_defaults(ctx.config));
  if (!res.ok()) {
    std::vector<std::string> messages;
    for (const TargetError& e : res.errors) messages.push_back(e.message);
    throw OpError{res.errors.front().code, join(messages, "; ")};
  }
  return res.names;
}

// For a listener: whether its client is still there (without keeping the client alive itself).
std::function<bool()> while_connected(const std::shared_ptr<Channel>& channel) {
  return [client = std::weak_ptr<Channel>(channel)] {
    auto c = client.lock();
    return c && c->is_open();
  };
}

// A builder as `ptbuild builders --json` and `status --json` show it (docs/fleet.md).
json builder_json(const Scheduler::BuilderSummary& b) {
  return {{"name", b.spec.name},
          {"uri", b.spec.uri},
          {"state", b.state},
          {"running", b.running},
          {"slots", b.spec.max_jobs},
          {"systems", b.spec.systems},
          {"supported_features", b.spec.supported_features},
          {"mandatory_features", b.spec.mandatory_features},
          {"speed_factor", b.spec.speed_factor},
          {"done", b.done},
          {"last_error", b.last_error.empty() ? json(nullptr) : json(b.last_error)}};
}

// A job's JSON with what only the scheduler knows: why a queued job has not started.
json job_json(const OpsContext& ctx, const Job& job) {
  json out = job_to_json(job);
  if (job.state == JobState::queued)
    out["waiting"] = ctx.scheduler.waiting(job.id).value_or("waiting for the dispatcher (queued just now)");
  return out;
}

json jobs_json(const OpsContext& ctx, const std::vector<Job>& jobs) {
  json arr = json::array();
  for (const Job& j : jobs) arr.push_back(job_json(ctx, j));
  return json{{"jobs", arr}};
}

// The job a variant stands for: its running build, else its queued one, else its latest job.
std::optional<Job> job_of_variant(Store& store, const std::string& variant) {
  std::optional<Job> job = store.active_job(variant, JobKind::build, JobState::running);
  if (!job) job = store.active_job(variant, JobKind::build, JobState::queued);
  if (!job) job = store.latest_job(variant);
  return job;
}

// Jobs named by id (a number) or by target (a variant name, alias or glob: the job each of its
// variants stands for).
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

// Exactly one job, for show and log.
Job find_job(const OpsContext& ctx, const protocol::JobRef& ref) {
  std::vector<Job> jobs = find_jobs(ctx, {ref});
  if (jobs.size() > 1)
    throw OpError{code::kAmbiguousTarget, "'" + protocol::describe(ref) + "' names " +
                                              std::to_string(jobs.size()) + " jobs: name one"};
  return jobs.front();
}

std::optional<OpResult> op_matrix(OpsContext& ctx, const OpCall&) {
  std::map<std::string, std::pair<int64_t, std::string>> last;
  for (const Job& j : ctx.store.latest_jobs()) last[j.variant] = {j.id, std::string(to_string(j.state))};
  json variants = json::array();
  auto opt = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  for (const VariantRecord& v : ctx.store.variants()) {
    auto it = last.find(v.name);
    variants.push_back({{"name", v.name},
                        {"repo", v.repo},
                        {"family", opt(v.axes.family)},
                        {"python", opt(v.axes.python)},
                        {"cuda", opt(v.axes.cuda)},
                        {"gpu_arch", opt(v.axes.gpu_arch)},
                        {"isa", opt(v.axes.isa)},
                        {"extra", opt(v.axes.extra)},
                        {"platform", opt(v.axes.platform)},
                        {"recipe", v.recipe},
                        {"last_job", it == last.end() ? json(nullptr) : json(it->second.first)},
                        {"last_state", it == last.end() ? json(nullptr) : json(it->second.second)},
                        {"tracked", [&]() -> json {
                           std::optional<bool> t = ctx.tracked ? ctx.tracked(v.name) : std::nullopt;
                           return t ? json(*t) : json(nullptr);
                         }()}});
  }
  return json{{"variants", variants}};
}

// Queues build jobs with the dedupe of docs/jobs.md: a queued job is returned as it is; a running one
// gets a second job only with force. One transaction: all of the variants or none.
json enqueue(OpsContext& ctx, const std::vector<std::string>& names, const NewJob& proto) {
  json out = json::array();
  auto tx = ctx.store.begin();
  std::string at = now();
  for (const std::string& name : names) {
    std::optional<Job> existing = ctx.store.active_job(name, proto.kind, JobState::queued);
    if (!existing && !proto.force) existing = ctx.store.active_job(name, proto.kind, JobState::running);
    bool fresh = !existing;
    Job job = existing ? *existing : [&] {
      NewJob nj = proto;
      nj.variant = name;
      return ctx.store.insert_job(tx, nj, at);
    }();
    out.push_back(
        {{"id", job.id}, {"variant", job.variant}, {"state", to_string(job.state)}, {"new", fresh}});
  }
  tx.commit();
  ctx.scheduler.poke();
  return json{{"jobs", out}};
}

std::optional<OpResult> op_queue(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::QueueRequest>(call.req.args);
  NewJob proto;
  proto.priority = req.priority;
  proto.reason = req.reason;
  proto.force = req.force;
  return enqueue(ctx, resolve_or_throw(ctx, req.targets), proto);
}

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

std::optional<OpResult> op_cancel(OpsContext& ctx, const OpCall& call) {
  json out = json::array();
  for (const Job& j : find_jobs(ctx, protocol::from_args<protocol::JobsByRefRequest>(call.req.args).jobs)) {
    auto result = ctx.scheduler.cancel(j.id, "uid " + std::to_string(call.caller.uid));
    std::string what = result == Scheduler::CancelOutcome::cancelled  ? "cancelled"
                       : result == Scheduler::CancelOutcome::stopping ? "stopping"
                                                                      : "already finished";
    // What waits for it is not cancelled with it: it stays queued until a build of this variant
    // succeeds. Said here, so that nobody wonders why those jobs never start.
    if (result != Scheduler::CancelOutcome::already_finished)
      if (std::vector<Job> held = dependents_of(ctx, j); !held.empty()) {
        std::string ids;
        for (const Job& h : held) ids += (ids.empty() ? "#" : ", #") + std::to_string(h.id) + " " + h.variant;
        what += "; " + ids + (held.size() == 1 ? " waits" : " wait") + " for it and stay" +
                (held.size() == 1 ? "s" : "") + " queued until a build of " + j.variant +
                " succeeds (ptbuild cancel them too, or queue it again)";
      }
    out.push_back({{"id", j.id}, {"variant", j.variant}, {"outcome", what}});
  }
  return json{{"jobs", out}};
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
  return enqueue(ctx, names, proto);
}

}  // namespace

// A dashboard or a watch asks for `status` several times a second, and building the JSON of
// every job was a fifth of the daemon's CPU under 32 flooding builds: an unfiltered one is served
// again, as the text it was written as, while what it shows is the same. That is the store's
// jobs (a new snapshot after any write), why each queued job waits, the scheduler's state, and
// the second (ETAs are to it).
struct StatusReply {
  std::shared_ptr<const std::vector<Job>> jobs;
  std::vector<std::optional<std::string>> waiting;
  std::string second;
  json scheduler;
  ResultText text;
};

namespace {

json scheduler_json(const Scheduler::Summary& s) {
  json builders = json::array();
  for (const Scheduler::BuilderSummary& b : s.builders) builders.push_back(builder_json(b));
  return {{"paused", s.paused},
          {"draining", s.draining},
          {"running", s.running},
          {"slots", s.slots},
          {"builders", builders}};
}

json status_of(OpsContext& ctx, const std::vector<Job>& out, int slots, json scheduler) {
  json result = jobs_json(ctx, out);
  result["scheduler"] = std::move(scheduler);
  std::map<std::string, std::optional<std::string>> family;
  for (const VariantRecord& v : ctx.store.variants()) family[v.name] = v.axes.family;
  Store::Durations durations = ctx.store.typical_durations();
  auto expected = [&](const Job& j) {
    auto f = family.find(j.variant);
    return durations.expected(j.variant, f == family.end() ? std::nullopt : f->second);
  };
  std::map<int64_t, SystemTime> ends = estimate_ends(out, expected, slots, std::chrono::system_clock::now());
  for (json& j : result["jobs"]) {
    int64_t id = j["id"].get<int64_t>();
    JobState state = *parse_job_state(j["state"].get<std::string>());
    if (!is_finished(state)) j["eta"] = nullptr;
    if (auto end = ends.find(id); end != ends.end()) j["eta"] = format_rfc3339(end->second);
    // A running build's progress as it is now (the store's is written once a second).
    if (state == JobState::running)
      if (std::optional<Progress> p = ctx.scheduler.progress(id))
        j["progress"] = {{"done", p->done}, {"total", p->total}};
  }
  return result;
}

std::optional<OpResult> op_status(OpsContext& ctx, const OpCall& call) {
  std::vector<std::string> targets = protocol::from_args<protocol::StatusRequest>(call.req.args).targets;
  std::vector<std::string> names;
  if (!targets.empty()) names = resolve_or_throw(ctx, targets);
  std::set<std::string> wanted(names.begin(), names.end());
  std::shared_ptr<const std::vector<Job>> all = ctx.store.status_jobs();
  Scheduler::Summary s = ctx.scheduler.summary();
  json scheduler = scheduler_json(s);
  if (!wanted.empty()) {
    std::vector<Job> some;
    for (const Job& j : *all)
      if (wanted.count(j.variant)) some.push_back(j);
    return status_of(ctx, some, s.slots, std::move(scheduler));
  }
  std::vector<std::optional<std::string>> waiting;
  for (const Job& j : *all)
    if (j.state == JobState::queued) waiting.push_back(ctx.scheduler.waiting(j.id));
  std::string second = now();
  second.resize(std::min(second.find('.'), second.size()));
  if (!ctx.last_status) ctx.last_status = std::make_shared<StatusReply>();
  StatusReply& last = *ctx.last_status;
  if (last.jobs != all || last.waiting != waiting || last.second != second || last.scheduler != scheduler) {
    auto text =
        std::make_shared<const std::string>(protocol::json_text(status_of(ctx, *all, s.slots, scheduler)));
    last = {all, std::move(waiting), std::move(second), std::move(scheduler), ResultText{std::move(text)}};
  }
  return last.text;
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
  return jobs_json(ctx, ctx.store.recent_jobs(state, static_cast<int>(req.limit)));
}

std::optional<OpResult> op_show(OpsContext& ctx, const OpCall& call) {
  return job_json(ctx, find_job(ctx, protocol::from_args<protocol::ShowRequest>(call.req.args).job));
}

std::optional<OpResult> op_builders(OpsContext& ctx, const OpCall&) {
  json builders = json::array();
  for (const Scheduler::BuilderSummary& b : ctx.scheduler.summary().builders)
    builders.push_back(builder_json(b));
  return json{{"builders", builders}};
}

std::optional<OpResult> op_set_builder(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::SetBuilderRequest>(call.req.args);
  if (std::string error = ctx.scheduler.set_builder_enabled(req.name, req.enabled); !error.empty())
    throw OpError{code::kNotFound, error};
  return op_builders(ctx, call);
}

std::optional<OpResult> op_pause(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.pause();
  return json{{"paused", true}};
}

std::optional<OpResult> op_resume(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.resume();
  return json{{"paused", false}};
}

std::optional<OpResult> op_drain(OpsContext& ctx, const OpCall&) {
  ctx.scheduler.drain(ctx.exit_daemon);
  return json{{"draining", true}, {"running", ctx.scheduler.summary().running}};
}

// log JOB [--tail N] [-f]: see LogStream.
std::optional<OpResult> op_log(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::LogRequest>(call.req.args);
  auto stream = std::make_shared<LogStream>(ctx.scheduler, ctx.store, call.channel, call.req.id,
                                            find_job(ctx, req.job), req.tail, req.follow);
  stream->start();
  return std::nullopt;
}

// wait JOB…: the reply comes once every named job has ended.
std::optional<OpResult> op_wait(OpsContext& ctx, const OpCall& call) {
  const protocol::Request& req = call.req;
  const std::shared_ptr<Channel>& channel = call.channel;
  std::vector<int64_t> ids;
  for (const Job& j : find_jobs(ctx, protocol::from_args<protocol::JobsByRefRequest>(req.args).jobs))
    ids.push_back(j.id);
  Store& store = ctx.store;
  auto all_done = [&ctx, &store, ids]() -> std::optional<json> {
    std::vector<Job> jobs;
    for (int64_t id : ids) {
      std::optional<Job> j = store.job(id);
      if (!j || !is_finished(j->state)) return std::nullopt;
      jobs.push_back(*j);
    }
    return jobs_json(ctx, jobs);
  };
  if (auto done = all_done()) return done;
  int64_t rid = req.id;
  ctx.scheduler.listen_jobs(
      [channel, rid, all_done](const Job&) {
        if (!channel->is_open()) return false;
        auto done = all_done();
        if (!done) return true;
        channel->send(protocol::ok_reply(rid, std::move(*done)));
        return false;
      },
      while_connected(channel));
  return std::nullopt;
}

// publish TARGET… [--force] (docs/publishing.md): only the latest build, if it succeeded and passed
// verification and its recipe has not changed since, unless forced.
std::optional<OpResult> op_publish(OpsContext& ctx, const OpCall& call) {
  auto req = protocol::from_args<protocol::PublishRequest>(call.req.args);
  const std::vector<std::string>& targets = req.targets;
  bool force = req.force;
  if (ctx.config.backend.kind == "nix" && ctx.config.publish.store.empty())
    throw OpError{code::kConflict,
                  "publish.store is not set: the nix backend publishes with nix copy --to STORE "
                  "(e.g. file:///srv/cache)"};
  std::vector<std::string> names = resolve_or_throw(ctx, targets);
  std::vector<std::string> refusals;
  for (const std::string& name : names) {
    std::optional<Job> build = ctx.store.latest_job(name, JobKind::build);
    std::string id = build ? "build #" + std::to_string(build->id) : "";
    if (!build) {
      refusals.push_back(name + " has never been built");
    } else if (!build->out_path) {
      refusals.push_back(name + ": its latest " + id + " has no output (" +
                         std::string(to_string(build->state)) + ")");
    } else if (!force) {
      json verify = build->verify_json ? json::parse(*build->verify_json, nullptr, false) : json();
      std::optional<VariantRecord> variant = ctx.store.variant(name);
      if (build->state != JobState::succeeded)
        refusals.push_back(name + ": its latest " + id + " " + std::string(to_string(build->state)));
      else if (ctx.config.verify.enabled && !(verify.is_object() && verify.value("ok", false)))
        refusals.push_back(name + ": " + id + " did not pass verification");
      else if (variant && build->recipe_sha && recipe_sha(variant->repo_path + "/" + variant->recipe) != *build->recipe_sha)
        refusals.push_back(name + ": the recipe changed since " + id + " (build it again)");
    }
  }
  if (!refusals.empty())
    throw OpError{code::kConflict,
                  "not published: " + join(refusals, "; ") + (force ? "" : " (--force publishes anyway)")};
  NewJob proto;
  proto.kind = JobKind::publish;
  proto.reason = "published by hand";
  proto.force = force;
  return enqueue(ctx, names, proto);
}

// nightly [TARGET…] (docs/nightly.md): queue the variants whose inputs changed since their last good
// build; the reply comes once every variant has been looked at.
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
      channel->send(protocol::event(rid, "progress", {{"evaluated", done}, {"total", total}}));
  };
  ctx.plan_nightly(targets, resolve, progress, [c, channel, rid](NightlyPlan plan) {
    if (!plan.fatal.empty()) {
      channel->send(protocol::error_reply(rid, code::kUnknownTarget, plan.fatal));
      return;
    }
    json jobs = json::array();
    for (const NightlyPlan::Entry& e : plan.rebuild) {
      NewJob proto;
      proto.reason = "nightly: " + e.reason;
      json queued = enqueue(*c, {e.name}, proto)["jobs"][0];
      json job = job_json(*c, *c->store.job(queued["id"].get<int64_t>()));
      job["new"] = queued["new"];
      jobs.push_back(job);
    }
    auto entries = [](const std::vector<NightlyPlan::Entry>& list, const char* key) {
      json out = json::array();
      for (const auto& e : list) out.push_back({{key, e.name}, {"reason", e.reason}});
      return out;
    };
    channel->send(protocol::ok_reply(rid, {{"jobs", jobs},
                                           {"skipped", entries(plan.skipped, "variant")},
                                           {"errors", entries(plan.errors, "what")}}));
  });
  return std::nullopt;
}

std::optional<OpResult> op_fixes(OpsContext& ctx, const OpCall&) {
  json fixes = json::array();
  for (const Store::HashFixRecord& f : ctx.store.hash_fixes())
    fixes.push_back({{"id", f.id},
                     {"job", f.job_id},
                     {"variant", f.variant},
                     {"drv", f.drv},
                     {"file", f.file},
                     {"line", f.line},
                     {"old", f.old_hash},
                     {"new", f.new_hash},
                     {"at", f.at}});
  return json{{"fixes", fixes}};
}

// watch: pushes a "job" event whenever a job starts or ends, for `status --watch`; it never
// replies, the client hangs up when it is done.
std::optional<OpResult> op_watch(OpsContext& ctx, const OpCall& call) {
  int64_t rid = call.req.id;
  std::shared_ptr<Channel> channel = call.channel;
  ctx.scheduler.listen_jobs(
      [channel, rid](const Job& j) {
        if (!channel->is_open()) return false;
        channel->send(protocol::event(rid, "job", job_to_json(j)));
        return true;
      },
      while_connected(channel));
  return std::nullopt;
}

using OpFunction = std::optional<OpResult> (*)(OpsContext&, const OpCall&);

const std::map<std::string_view, OpFunction>& op_table() {
  namespace op = protocol::op;
  static const std::map<std::string_view, OpFunction> table{
      {op::kMatrix.name, op_matrix},     {op::kStatus.name, op_status},
      {op::kJobs.name, op_jobs},         {op::kShow.name, op_show},
      {op::kLog.name, op_log},           {op::kWait.name, op_wait},
      {op::kFixes.name, op_fixes},       {op::kWatch.name, op_watch},
      {op::kQueue.name, op_queue},       {op::kCancel.name, op_cancel},
      {op::kRetry.name, op_retry},       {op::kPause.name, op_pause},
      {op::kResume.name, op_resume},     {op::kDrain.name, op_drain},
      {op::kPublish.name, op_publish},   {op::kNightly.name, op_nightly},
      {op::kBuilders.name, op_builders}, {op::kSetBuilder.name, op_set_builder},
  };
  return table;
}

}  // namespace

std::optional<OpResult> Ops::handle(const protocol::Request& req, const Caller& caller,
                                    const std::shared_ptr<Channel>& channel) {
  const protocol::OpSpec* spec = protocol::find_op(req.op);
  auto it = op_table().find(req.op);
  if (!spec || it == op_table().end()) throw OpError{code::kUnknownOp, "unknown op '" + req.op + "'"};
  if (spec->changes_things && !caller.may_change)
    throw OpError{code::kPermissionDenied,
                  "'" + req.op + "' changes things: only root, the daemon's user and members of group '" +
                      ctx_.config.daemon.admin_group + "' may do it (uid " + std::to_string(caller.uid) +
                      " may only read)"};
  return it->second(ctx_, OpCall{req, caller, channel});
}

}  // namespace ptbuild
