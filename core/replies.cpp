#include "core/replies.h"

#include "core/hash.h"

#include <nlohmann/json.hpp>

namespace ptbuild::protocol {

using json = nlohmann::json;

namespace {

template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

template <class T>
std::optional<T> optional_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

template <class Item, class F>
json array_of(const std::vector<Item>& items, F convert) {
  json out = json::array();
  for (const Item& item : items) out.push_back(convert(item));
  return out;
}

template <class Item, class F>
std::vector<Item> items_of(const json& j, const char* key, F convert) {
  std::vector<Item> out;
  for (const json& item : j.at(key)) out.push_back(convert(item));
  return out;
}

JobState state_of(const json& j, const char* key) {
  std::string text = j.at(key).get<std::string>();
  std::optional<JobState> s = parse_job_state(text);
  if (!s) throw ReplyError{"unknown job state '" + text + "'"};
  return *s;
}

JobView job_view_from(const json& j) {
  JobView v{job_from_json(j), optional_of<bool>(j, "new"), j.contains("eta"),
            optional_of<std::string>(j, "eta")};
  return v;
}

std::optional<BuilderResourcesView> resources_from(const json& builder) {
  auto r = builder.find("resources");
  if (r == builder.end() || r->is_null()) return std::nullopt;
  BuilderResourcesView v{r->at("memory_total").get<uint64_t>(),
                         r->at("memory_available").get<uint64_t>(),
                         r->at("committed").get<uint64_t>(),
                         r->at("reserve").get<uint64_t>(),
                         r->at("cores").get<int>(),
                         r->at("store_free").get<uint64_t>(),
                         r->at("build_dir_free").get<uint64_t>(),
                         r->at("min_free").get<uint64_t>(),
                         optional_of<double>(*r, "pressure"),
                         r->value("store_size", uint64_t{0}),
                         {}};
  for (const json& h : r->at("holding"))
    v.holding.push_back(
        {h.at("job").get<int64_t>(), h.at("memory").get<uint64_t>(), optional_of<uint64_t>(h, "build_dir")});
  return v;
}

BuilderView builder_from(const json& j) {
  return {j.at("name").get<std::string>(),
          j.at("uri").get<std::string>(),
          j.at("state").get<std::string>(),
          j.at("running").get<int>(),
          j.at("slots").get<int>(),
          j.at("systems").get<std::vector<std::string>>(),
          j.at("supported_features").get<std::vector<std::string>>(),
          j.at("mandatory_features").get<std::vector<std::string>>(),
          j.at("speed_factor").is_number() ? j.at("speed_factor").get<double>() : 0.0,
          j.at("done").get<int>(),
          optional_of<std::string>(j, "last_error"),
          resources_from(j)};
}

SchedulerView scheduler_from(const json& j) {
  return {j.at("paused").get<bool>(),
          j.at("draining").get<bool>(),
          j.at("running").get<int>(),
          j.at("slots").get<int>(),
          items_of<BuilderView>(j, "builders", builder_from),
          items_of<NotifyHookView>(j, "notify",
                                   [](const json& n) {
                                     return NotifyHookView{n.at("target").get<std::string>(),
                                                           n.at("delivered").get<int64_t>(),
                                                           n.at("failed").get<int64_t>(),
                                                           n.at("failing").get<bool>(),
                                                           optional_of<std::string>(n, "last_error"),
                                                           optional_of<std::string>(n, "last_error_at")};
                                   }),
          optional_of<std::string>(j, "eta")};
}

NightlyEntry entry_from(const json& j, const char* key) {
  return {j.at(key).get<std::string>(), j.at("reason").get<std::string>()};
}

template <class Reply>
Reply read(const json& j);

template <>
QueueReply read(const json& j) {
  return {items_of<QueuedJob>(j, "jobs", [](const json& q) {
    return QueuedJob{q.at("id").get<int64_t>(), q.at("variant").get<std::string>(), state_of(q, "state"),
                     q.at("new").get<bool>()};
  })};
}
template <>
BuildersReply read(const json& j) {
  return {items_of<BuilderView>(j, "builders", builder_from)};
}
template <>
StatusReply read(const json& j) {
  return {items_of<JobView>(j, "jobs", job_view_from),
          j.contains("scheduler") ? scheduler_from(j.at("scheduler")) : SchedulerView{}};
}
template <>
JobsReply read(const json& j) {
  return {items_of<JobView>(j, "jobs", job_view_from), optional_of<int64_t>(j, "next_before")};
}
template <>
MatrixReply read(const json& j) {
  return {items_of<VariantView>(j, "variants", [](const json& v) {
    return VariantView{v.at("name").get<std::string>(),         v.at("repo").get<std::string>(),
                       optional_of<std::string>(v, "family"),   optional_of<std::string>(v, "python"),
                       optional_of<std::string>(v, "cuda"),     optional_of<std::string>(v, "gpu_arch"),
                       optional_of<std::string>(v, "isa"),      optional_of<std::string>(v, "extra"),
                       optional_of<std::string>(v, "platform"), v.at("recipe").get<std::string>(),
                       optional_of<int64_t>(v, "last_job"),     optional_of<std::string>(v, "last_state"),
                       optional_of<bool>(v, "tracked")};
  })};
}
template <>
CancelReply read(const json& j) {
  return {items_of<CancelledJob>(j, "jobs", [](const json& c) {
    return CancelledJob{c.at("id").get<int64_t>(), c.at("variant").get<std::string>(),
                        c.at("outcome").get<std::string>()};
  })};
}
template <>
GcReply read(const json& j) {
  GcReply r{j.at("dry_run").get<bool>(),
            items_of<GcReply::Dropped>(
                j, "dropped",
                [](const json& d) {
                  return GcReply::Dropped{d.at("job").get<int64_t>(), d.at("variant").get<std::string>(),
                                          d.at("out_path").get<std::string>(), d.at("size").get<uint64_t>()};
                }),
            j.at("kept").get<int64_t>(),
            j.at("dead_paths").get<int64_t>(),
            j.at("dead_bytes").get<uint64_t>(),
            j.at("freed_bytes").get<uint64_t>()};
  return r;
}
template <>
Changes read(const json& j) {
  return changes_from_json(j);
}
template <>
BisectsReply read(const json& j) {
  return {items_of<BisectView>(j, "bisects", [](const json& b) {
    BisectView v;
    v.id = b.at("id").get<int64_t>();
    v.variant = b.at("variant").get<std::string>();
    v.good = b.at("good").get<std::string>();
    v.bad = b.at("bad").get<std::string>();
    v.state = b.at("state").get<std::string>();
    for (const json& c : b.at("commits")) v.commits.push_back(bisect_commit_from_json(c));
    v.first_bad = optional_of<std::string>(b, "first_bad");
    v.message = b.at("message").get<std::string>();
    if (!b.at("changes").is_null()) v.changes = changes_from_json(b.at("changes"));
    v.builds = b.at("builds").get<int>();
    v.max_builds = b.at("max_builds").get<int>();
    v.created_at = b.at("created_at").get<std::string>();
    v.finished_at = optional_of<std::string>(b, "finished_at");
    return v;
  })};
}
template <>
ProvenanceReply read(const json& j) {
  return {j.at("job").get<int64_t>(), j.at("out_path").get<std::string>(), j.at("envelope").dump()};
}
template <>
FixesReply read(const json& j) {
  return {items_of<FixView>(j, "fixes", [](const json& f) {
    return FixView{
        f.at("id").get<int64_t>(),      f.at("job").get<int64_t>(),      f.at("variant").get<std::string>(),
        f.at("drv").get<std::string>(), f.at("file").get<std::string>(), f.at("line").get<int>(),
        f.at("old").get<std::string>(), f.at("new").get<std::string>(),  f.at("at").get<std::string>()};
  })};
}
template <>
PauseReply read(const json& j) {
  return {j.at("paused").get<bool>()};
}
template <>
DrainReply read(const json& j) {
  return {j.at("draining").get<bool>(), j.at("running").get<int>()};
}
template <>
NightlyReply read(const json& j) {
  return {items_of<JobView>(j, "jobs", job_view_from),
          items_of<NightlyEntry>(j, "skipped", [](const json& e) { return entry_from(e, "variant"); }),
          j.contains("errors")
              ? items_of<NightlyEntry>(j, "errors", [](const json& e) { return entry_from(e, "what"); })
              : std::vector<NightlyEntry>{}};
}
template <>
NightlyProgress read(const json& j) {
  return {j.at("evaluated").get<int64_t>(), j.at("total").get<int64_t>()};
}
template <>
LogText read(const json& j) {
  return {j.at("text").get<std::string>()};
}
template <>
LogReply read(const json& j) {
  return {job_from_json(j.at("job"))};
}
template <>
Job read(const json& j) {
  return job_from_json(j);
}

}  // namespace

json to_json(const JobView& v) {
  json out = job_to_json(v.job);
  if (v.fresh) out["new"] = *v.fresh;
  if (v.has_eta) out["eta"] = or_null(v.eta);
  return out;
}

json to_json(const QueueReply& r) {
  return {
      {"jobs", array_of(r.jobs, [](const QueuedJob& q) {
         return json{{"id", q.id}, {"variant", q.variant}, {"state", to_string(q.state)}, {"new", q.fresh}};
       })}};
}

json to_json(const BuilderResourcesView& r) {
  json holding = json::array();
  for (const auto& h : r.holding)
    holding.push_back({{"job", h.job}, {"memory", h.memory}, {"build_dir", or_null(h.build_dir)}});
  return {{"memory_total", r.memory_total},
          {"memory_available", r.memory_available},
          {"committed", r.committed},
          {"reserve", r.reserve},
          {"cores", r.cores},
          {"store_free", r.store_free},
          {"build_dir_free", r.build_dir_free},
          {"min_free", r.min_free},
          {"pressure", or_null(r.pressure)},
          {"store_size", r.store_size},
          {"holding", holding}};
}

json to_json(const BuilderView& b) {
  return {{"name", b.name},
          {"uri", b.uri},
          {"state", b.state},
          {"running", b.running},
          {"slots", b.slots},
          {"systems", b.systems},
          {"supported_features", b.supported_features},
          {"mandatory_features", b.mandatory_features},
          {"speed_factor", b.speed_factor},
          {"done", b.done},
          {"last_error", or_null(b.last_error)},
          {"resources", b.resources ? to_json(*b.resources) : json(nullptr)}};
}

json to_json(const BuildersReply& r) {
  return {{"builders", array_of(r.builders, [](const BuilderView& b) { return to_json(b); })}};
}

json to_json(const SchedulerView& s) {
  return {{"paused", s.paused},
          {"draining", s.draining},
          {"running", s.running},
          {"slots", s.slots},
          {"builders", array_of(s.builders, [](const BuilderView& b) { return to_json(b); })},
          {"notify", array_of(s.notify,
                              [](const NotifyHookView& n) {
                                return json{{"target", n.target},
                                            {"delivered", n.delivered},
                                            {"failed", n.failed},
                                            {"failing", n.failing},
                                            {"last_error", or_null(n.last_error)},
                                            {"last_error_at", or_null(n.last_error_at)}};
                              })},
          {"eta", or_null(s.eta)}};
}

json to_json(const StatusReply& r) {
  return {{"jobs", array_of(r.jobs, [](const JobView& v) { return to_json(v); })},
          {"scheduler", to_json(r.scheduler)}};
}

json to_json(const JobsReply& r) {
  json out{{"jobs", array_of(r.jobs, [](const JobView& v) { return to_json(v); })}};
  if (r.next_before) out["next_before"] = *r.next_before;
  return out;
}

json to_json(const MatrixReply& r) {
  return {{"variants", array_of(r.variants, [](const VariantView& v) {
             return json{{"name", v.name},
                         {"repo", v.repo},
                         {"family", or_null(v.family)},
                         {"python", or_null(v.python)},
                         {"cuda", or_null(v.cuda)},
                         {"gpu_arch", or_null(v.gpu_arch)},
                         {"isa", or_null(v.isa)},
                         {"extra", or_null(v.extra)},
                         {"platform", or_null(v.platform)},
                         {"recipe", v.recipe},
                         {"last_job", or_null(v.last_job)},
                         {"last_state", or_null(v.last_state)},
                         {"tracked", or_null(v.tracked)}};
           })}};
}

json to_json(const CancelReply& r) {
  return {{"jobs", array_of(r.jobs, [](const CancelledJob& c) {
             return json{{"id", c.id}, {"variant", c.variant}, {"outcome", c.outcome}};
           })}};
}

json to_json(const GcReply& r) {
  return {
      {"dry_run", r.dry_run},
      {"dropped",
       array_of(
           r.dropped,
           [](const GcReply::Dropped& d) {
             return json{{"job", d.job}, {"variant", d.variant}, {"out_path", d.out_path}, {"size", d.size}};
           })},
      {"kept", r.kept},
      {"dead_paths", r.dead_paths},
      {"dead_bytes", r.dead_bytes},
      {"freed_bytes", r.freed_bytes}};
}

json to_json(const BisectsReply& r) {
  return {{"bisects", array_of(r.bisects, [](const BisectView& b) {
             return json{{"id", b.id},
                         {"variant", b.variant},
                         {"good", b.good},
                         {"bad", b.bad},
                         {"state", b.state},
                         {"commits", array_of(b.commits, [](const BisectCommit& c) { return to_json(c); })},
                         {"first_bad", or_null(b.first_bad)},
                         {"message", b.message},
                         {"changes", b.changes ? to_json(*b.changes) : json(nullptr)},
                         {"builds", b.builds},
                         {"max_builds", b.max_builds},
                         {"created_at", b.created_at},
                         {"finished_at", or_null(b.finished_at)}};
           })}};
}

json to_json(const ProvenanceReply& r) {
  json envelope = json::parse(r.envelope, nullptr, false);
  json statement = nullptr;
  if (envelope.is_object() && envelope["payload"].is_string())
    if (std::optional<std::vector<uint8_t>> bytes = from_base64(envelope["payload"].get<std::string>()))
      statement = json::parse(std::string(bytes->begin(), bytes->end()), nullptr, false);
  if (statement.is_discarded()) statement = nullptr;
  return {{"job", r.job}, {"out_path", r.out_path}, {"envelope", envelope}, {"statement", statement}};
}

json to_json(const FixesReply& r) {
  return {{"fixes", array_of(r.fixes, [](const FixView& f) {
             return json{{"id", f.id},        {"job", f.job},      {"variant", f.variant},
                         {"drv", f.drv},      {"file", f.file},    {"line", f.line},
                         {"old", f.old_hash}, {"new", f.new_hash}, {"at", f.at}};
           })}};
}

json to_json(const PauseReply& r) {
  return {{"paused", r.paused}};
}

json to_json(const DrainReply& r) {
  return {{"draining", r.draining}, {"running", r.running}};
}

json to_json(const NightlyReply& r) {
  auto entries = [](const std::vector<NightlyEntry>& list, const char* key) {
    return array_of(list, [key](const NightlyEntry& e) { return json{{key, e.name}, {"reason", e.reason}}; });
  };
  return {{"jobs", array_of(r.jobs, [](const JobView& v) { return to_json(v); })},
          {"skipped", entries(r.skipped, "variant")},
          {"errors", entries(r.errors, "what")}};
}

json to_json(const NightlyProgress& p) {
  return {{"evaluated", p.evaluated}, {"total", p.total}};
}

json to_json(const LogText& t) {
  return {{"text", t.text}};
}

json to_json(const LogReply& r) {
  return {{"job", job_to_json(r.job)}};
}

Job job_from_json(const json& j) {
  Job job;
  job.id = j.at("id").get<int64_t>();
  job.variant = j.at("variant").get<std::string>();
  job.repo = j.value("repo", "");
  std::string kind = j.at("kind").get<std::string>();
  if (auto k = parse_job_kind(kind)) job.kind = *k;
  job.state = state_of(j, "state");
  job.priority = j.value("priority", 0);
  job.reason = j.value("reason", "");
  job.attempt = j.value("attempt", 0);
  job.created_at = j.value("created_at", "");
  job.started_at = optional_of<std::string>(j, "started_at");
  job.finished_at = optional_of<std::string>(j, "finished_at");
  job.exit_code = optional_of<int>(j, "exit_code");
  if (auto p = j.find("progress"); p != j.end() && p->is_object()) {
    job.progress_done = p->value("done", int64_t{0});
    job.progress_total = p->at("total").get<int64_t>();
  }
  if (auto f = j.find("failure"); f != j.end() && f->is_object())
    job.failure = Failure{f->value("class", ""), f->value("message", ""), f->value("hint", ""),
                          f->value("excerpt", "")};
  if (auto f = j.find("fixes"); f != j.end() && f->is_array()) job.fixes_json = f->dump();
  if (auto v = j.find("verify"); v != j.end() && !v->is_null()) job.verify_json = v->dump();
  job.out_path = optional_of<std::string>(j, "out_path");
  job.builder = optional_of<std::string>(j, "builder");
  if (auto r = j.find("resources"); r != j.end() && !r->is_null()) job.resources_json = r->dump();
  job.commit = optional_of<std::string>(j, "commit");
  job.rev = optional_of<std::string>(j, "rev");
  if (auto c = j.find("changes"); c != j.end() && !c->is_null()) job.changes_json = c->dump();
  job.waiting = optional_of<std::string>(j, "waiting");
  job.log_path = j.value("log_path", "");
  return job;
}

template <class Reply>
Reply reply_from(const json& result) {
  try {
    return read<Reply>(result);
  } catch (const json::exception& e) {
    throw ReplyError{std::string("the daemon's reply does not fit: ") + e.what()};
  }
}

template QueueReply reply_from<QueueReply>(const json&);
template BuildersReply reply_from<BuildersReply>(const json&);
template StatusReply reply_from<StatusReply>(const json&);
template JobsReply reply_from<JobsReply>(const json&);
template MatrixReply reply_from<MatrixReply>(const json&);
template CancelReply reply_from<CancelReply>(const json&);
template FixesReply reply_from<FixesReply>(const json&);
template Changes reply_from<Changes>(const json&);
template BisectsReply reply_from<BisectsReply>(const json&);
template ProvenanceReply reply_from<ProvenanceReply>(const json&);
template GcReply reply_from<GcReply>(const json&);
template PauseReply reply_from<PauseReply>(const json&);
template DrainReply reply_from<DrainReply>(const json&);
template NightlyReply reply_from<NightlyReply>(const json&);
template NightlyProgress reply_from<NightlyProgress>(const json&);
template LogText reply_from<LogText>(const json&);
template LogReply reply_from<LogReply>(const json&);
template Job reply_from<Job>(const json&);

}  // namespace ptbuild::protocol
