#include "daemon/server/ops.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/target.h"
#include "core/text.h"
#include "daemon/server/server.h"
#include "daemon/store/store.h"

namespace ptbuild {

using nlohmann::json;
namespace code = protocol::code;

namespace {

std::string now() { return format_rfc3339(std::chrono::system_clock::now()); }

AliasDefaults alias_defaults(const Config& config) {
  AliasDefaults d;
  for (const RepoConfig& r : config.repos) d.default_cuda_by_repo.emplace_back(r.name, r.default_cuda);
  d.default_family = config.daemon.default_family;
  return d;
}

// Resolves targets or throws the first error as an OpError (all errors in its message).
std::vector<std::string> resolve_or_throw(const OpsContext& ctx,
                                          const std::vector<std::string>& targets) {
  Resolution res = resolve_targets(targets, ctx.store.catalog(), alias_defaults(ctx.config));
  if (!res.ok()) {
    std::vector<std::string> messages;
    for (const TargetError& e : res.errors) messages.push_back(e.message);
    throw OpError{res.errors.front().code, join(messages, "; ")};
  }
  return res.names;
}

json jobs_json(const std::vector<Job>& jobs) {
  json arr = json::array();
  for (const Job& j : jobs) arr.push_back(job_to_json(j));
  return {{"jobs", arr}};
}

// A job named by id (a number) or by variant (its latest job).
Job find_job(Store& store, const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) throw protocol::ArgError{std::string("argument \"") + key + "\" is required"};
  std::optional<Job> job;
  if (it->is_number_integer()) {
    job = store.job(it->get<int64_t>());
    if (!job) throw OpError{code::kNotFound, "no job " + std::to_string(it->get<int64_t>())};
  } else if (it->is_string()) {
    job = store.latest_job(it->get<std::string>());
    if (!job) throw OpError{code::kNotFound, "no job for variant '" + it->get<std::string>() + "'"};
  } else {
    throw protocol::ArgError{std::string("argument \"") + key +
                             "\" must be a job id or a variant name"};
  }
  return *job;
}

json op_matrix(OpsContext& ctx, const json&) {
  std::map<std::string, std::pair<int64_t, std::string>> last;
  for (const Job& j : ctx.store.latest_jobs())
    last[j.variant] = {j.id, std::string(to_string(j.state))};
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
                        {"last_state", it == last.end() ? json(nullptr) : json(it->second.second)}});
  }
  return {{"variants", variants}};
}

json op_queue(OpsContext& ctx, const json& args) {
  std::vector<std::string> targets = protocol::arg_strings(args, "targets");
  if (targets.empty()) throw protocol::ArgError{"argument \"targets\" must name at least one target"};
  NewJob proto;
  proto.priority = static_cast<int>(protocol::arg_int(args, "priority", 0));
  proto.reason = protocol::arg_string(args, "reason", "queued by hand");
  proto.force = protocol::arg_bool(args, "force");
  std::vector<std::string> names = resolve_or_throw(ctx, targets);

  // Dedupe (SPEC §6): a queued job is returned as it is; a running one gets a second job only
  // with force. All of it in one transaction, so a request queues all of its variants or none.
  json out = json::array();
  auto tx = ctx.store.begin();
  std::string at = now();
  for (const std::string& name : names) {
    std::optional<Job> existing = ctx.store.active_job(name, JobKind::build, JobState::queued);
    if (!existing && !proto.force)
      existing = ctx.store.active_job(name, JobKind::build, JobState::running);
    bool fresh = !existing;
    Job job = existing ? *existing : [&] {
      NewJob nj = proto;
      nj.variant = name;
      return ctx.store.insert_job(tx, nj, at);
    }();
    out.push_back({{"id", job.id}, {"variant", job.variant}, {"state", to_string(job.state)}, {"new", fresh}});
  }
  tx.commit();
  if (ctx.jobs_changed) ctx.jobs_changed();
  return {{"jobs", out}};
}

json op_status(OpsContext& ctx, const json& args) {
  std::vector<std::string> targets = protocol::arg_strings(args, "targets");
  std::vector<std::string> names;
  if (!targets.empty()) names = resolve_or_throw(ctx, targets);
  std::set<std::string> wanted(names.begin(), names.end());
  auto asked = [&](const Job& j) { return wanted.empty() || wanted.count(j.variant); };

  std::vector<Job> out;
  for (JobState s : {JobState::running, JobState::queued})
    for (Job& j : ctx.store.jobs_in_state(s))
      if (asked(j)) out.push_back(std::move(j));
  for (Job& j : ctx.store.latest_finished(names)) out.push_back(std::move(j));
  return jobs_json(out);
}

json op_jobs(OpsContext& ctx, const json& args) {
  std::optional<JobState> state;
  if (std::string s = protocol::arg_string(args, "state"); !s.empty()) {
    state = parse_job_state(s);
    if (!state)
      throw OpError{code::kBadRequest, "unknown state '" + s +
                                           "' (queued, running, succeeded, failed, cancelled)"};
  }
  int64_t limit = protocol::arg_int(args, "limit", 50);
  if (limit < 1 || limit > 1'000'000) throw OpError{code::kBadRequest, "limit must be between 1 and 1000000"};
  return jobs_json(ctx.store.recent_jobs(state, static_cast<int>(limit)));
}

json op_show(OpsContext& ctx, const json& args) { return job_to_json(find_job(ctx.store, args, "job")); }

struct OpEntry {
  bool changes_things;
  json (*run)(OpsContext&, const json&);
};

const std::map<std::string, OpEntry>& op_table() {
  static const std::map<std::string, OpEntry> table{
      {"matrix", {false, op_matrix}}, {"queue", {true, op_queue}}, {"status", {false, op_status}},
      {"jobs", {false, op_jobs}},     {"show", {false, op_show}},
  };
  return table;
}

}  // namespace

std::optional<json> Ops::handle(const protocol::Request& req, const Caller& caller,
                                const std::shared_ptr<Channel>&) {
  auto it = op_table().find(req.op);
  if (it == op_table().end()) throw OpError{code::kUnknownOp, "unknown op '" + req.op + "'"};
  if (it->second.changes_things && !caller.may_change)
    throw OpError{code::kPermissionDenied,
                  "'" + req.op + "' changes things: only root, the daemon's user and members of group '" +
                      ctx_.config.daemon.admin_group + "' may do it (uid " +
                      std::to_string(caller.uid) + " may only read)"};
  return it->second.run(ctx_, req.args);
}

}  // namespace ptbuild
