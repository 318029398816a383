#include "client/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iostream>

#include "core/changes.h"
#include "core/duration.h"
#include "core/provenance.h"
#include "core/replies.h"
#include "core/requests.h"
#include "core/resources.h"
#include "core/text.h"
#include "local/files.h"

#include <nlohmann/json.hpp>

namespace ptbuild::client {

using nlohmann::json;

Connection& Context::connect() {
  if (!connection_)
    connection_ = std::make_unique<Connection>(socket_override ? *socket_override : config().daemon.socket);
  return *connection_;
}

const Config& Context::config() {
  if (!config_) {
    ConfigResult loaded = load_config(config_path);
    if (auto* err = std::get_if<ConfigError>(&loaded)) throw UsageError{"config error: " + err->message};
    config_ = std::get<Config>(std::move(loaded));
  }
  return *config_;
}

long long ParsedArgs::integer(const std::string& option, long long fallback, long long min,
                              long long max) const {
  auto v = value(option);
  if (!v) return fallback;
  long long n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  bool whole = ec != std::errc::invalid_argument && end == v->data() + v->size();
  if (!whole) throw UsageError{option + " needs a whole number, got '" + *v + "'"};
  if (ec == std::errc::result_out_of_range || n < min || n > max)
    throw UsageError{option + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", got " + *v};
  return n;
}

namespace {

void print_json(const json& j) {
  std::cout << j.dump(2) << "\n";
}

// A reply as its type (core/replies.h); one that does not fit is the daemon's error.
template <class Reply>
Reply read_reply(const json& result) {
  try {
    return protocol::reply_from<Reply>(result);
  } catch (const protocol::ReplyError& e) {
    throw RemoteError{"bad_reply", e.message};
  }
}
template <class Reply>
Reply call(Context& ctx, const protocol::OpSpec& op, const json& args = json::object()) {
  return read_reply<Reply>(ctx.connect().call(op, args));
}

int print_queued(Context& ctx, const protocol::QueueReply& reply);

int cmd_matrix(Context& ctx, const ParsedArgs&) {
  auto reply = call<protocol::MatrixReply>(ctx, protocol::op::kMatrix);
  if (ctx.json)
    print_json(protocol::to_json(reply));
  else
    print_matrix(std::cout, reply.variants, ctx.style);
  return kOk;
}

int cmd_queue(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"queue needs at least one TARGET"};
  protocol::QueueRequest req{
      a.positional,
      static_cast<int>(a.integer("--priority", 0, -protocol::kMaxPriority, protocol::kMaxPriority)),
      a.has("--force")};
  if (auto reason = a.value("--reason")) req.reason = *reason;
  return print_queued(ctx, call<protocol::QueueReply>(ctx, protocol::op::kQueue, protocol::to_args(req)));
}

bool has_active(const std::vector<protocol::JobView>& jobs) {
  for (const protocol::JobView& v : jobs)
    if (!is_finished(v.job.state)) return true;
  return false;
}

void print_status(Context& ctx, const protocol::StatusReply& reply) {
  const protocol::SchedulerView& s = reply.scheduler;
  std::cout << "builds running: " << s.running << " of " << s.slots << (s.paused ? "   PAUSED" : "")
            << (s.draining ? "   DRAINING" : "") << (s.eta ? "   all done ~" + short_time(*s.eta) : "")
            << "\n";
  for (const protocol::BuilderView& b : s.builders)
    if (b.state != "up") std::cout << ctx.style.paint("builder " + b.name + ": " + b.state, "33") << "\n";
  for (const protocol::NotifyHookView& n : s.notify)
    if (n.failing)
      std::cout << ctx.style.paint("notify " + n.target + ": failing, last at " +
                                       n.last_error_at.value_or("?") + ": " + n.last_error.value_or("?"),
                                   "33")
                << "\n";
  std::cout << "\n";
  print_jobs_table(std::cout, reply.jobs, ctx.style);
}

// --watch redraws whenever the daemon pushes a job's start or end, and every 2 s for the
// progress bars, until nothing is queued or running any more.
int cmd_status(Context& ctx, const ParsedArgs& a) {
  json args = protocol::to_args(protocol::StatusRequest{a.positional});
  bool watch = a.has("--watch");
  if (watch) ctx.connect().send(protocol::op::kWatch, json::object());
  while (true) {
    auto reply = call<protocol::StatusReply>(ctx, protocol::op::kStatus, args);
    if (ctx.json) {
      print_json(protocol::to_json(reply));
    } else {
      if (watch && ctx.style.terminal) std::cout << "\x1b[H\x1b[2J";
      print_status(ctx, reply);
    }
    if (!watch || !has_active(reply.jobs)) return kOk;
    std::cout << std::flush;
    ctx.connect().next(2000);  // a pushed job event, or the next tick
  }
}

// A long listing comes a page at a time (protocol::kJobsPage) and is printed as it comes, so that
// neither side holds a million jobs at once.
int cmd_jobs(Context& ctx, const ParsedArgs& a) {
  protocol::JobsRequest req{a.value("--state").value_or(""),
                            a.integer("--limit", 50, 1, protocol::kMaxListing), 0,
                            a.value("--variant").value_or("")};
  auto reply = call<protocol::JobsReply>(ctx, protocol::op::kJobs, protocol::to_args(req));
  if (!reply.next_before) {  // one page: printed as one
    if (ctx.json)
      print_json(protocol::to_json(reply));
    else
      print_jobs_table(std::cout, reply.jobs, ctx.style);
    return kOk;
  }
  if (ctx.json) std::cout << "{\n  \"jobs\": [";
  bool first = true;
  for (int64_t left = req.limit;;) {
    if (ctx.json) {
      for (const protocol::JobView& v : reply.jobs) {
        std::string item = protocol::to_json(v).dump(2);
        replace_all(item, "\n", "\n    ");
        std::cout << (first ? "\n    " : ",\n    ") << item;
        first = false;
      }
    } else {
      print_jobs_table(std::cout, reply.jobs, ctx.style);
    }
    left -= static_cast<int64_t>(reply.jobs.size());
    if (!reply.next_before || left <= 0) break;
    req.limit = left;
    req.before = *reply.next_before;
    reply = call<protocol::JobsReply>(ctx, protocol::op::kJobs, protocol::to_args(req));
  }
  if (ctx.json) std::cout << "\n  ]\n}\n";
  return kOk;
}

// A job argument: a number is a job id, anything else a variant (its latest job).

int cmd_show(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"show needs exactly one JOB (an id or a variant)"};
  auto job = call<Job>(ctx, protocol::op::kShow,
                       protocol::to_args(protocol::ShowRequest{protocol::parse_job_ref(a.positional[0])}));
  if (ctx.json)
    print_json(job_to_json(job));
  else
    print_job(std::cout, job, ctx.style);
  return kOk;
}

// changes JOB|VARIANT [--since JOB]
int cmd_changes(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"changes needs exactly one JOB (an id or a variant)"};
  int64_t since = 0;
  if (std::optional<std::string> s = a.value("--since")) {
    protocol::JobRef ref = protocol::parse_job_ref(*s);
    if (!std::holds_alternative<int64_t>(ref)) throw UsageError{"--since takes a job id, got '" + *s + "'"};
    since = std::get<int64_t>(ref);
  }
  auto changes = call<Changes>(
      ctx, protocol::op::kChanges,
      protocol::to_args(protocol::ChangesRequest{protocol::parse_job_ref(a.positional[0]), since}));
  if (ctx.json)
    print_json(to_json(changes));
  else
    print_changes(std::cout, changes, ctx.style);
  return kOk;
}

json job_refs(const std::vector<std::string>& args, const char* what) {
  if (args.empty()) throw UsageError{std::string(what) + " needs at least one JOB (an id or a variant)"};
  protocol::JobsByRefRequest req;
  for (const std::string& a : args) req.jobs.push_back(protocol::parse_job_ref(a));
  return protocol::to_args(req);
}

bool all_succeeded(const std::vector<protocol::JobView>& jobs) {
  for (const protocol::JobView& v : jobs)
    if (v.job.state != JobState::succeeded) return false;
  return true;
}

[[noreturn]] void throw_remote(const json& line) {
  const json& err = line["error"];
  throw RemoteError{err.value("code", "error"), err.value("message", "")};
}

int cmd_log(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"log needs exactly one JOB (an id or a variant)"};
  protocol::LogRequest req{protocol::parse_job_ref(a.positional[0]),
                           a.integer("--tail", 0, 0, protocol::kMaxTail), a.has("-f") || a.has("--follow")};
  Connection& c = ctx.connect();
  int64_t id = c.send(protocol::op::kLog, protocol::to_args(req));
  std::string collected;
  while (auto line = c.next()) {
    if (line->value("id", int64_t{-1}) != id) continue;
    if (line->contains("event")) {
      std::string text = read_reply<protocol::LogText>((*line)["data"]).text;
      if (ctx.json) {
        collected += text;
      } else {
        std::cout << text << std::flush;
      }
      continue;
    }
    if (!line->value("ok", false)) throw_remote(*line);
    Job job = read_reply<protocol::LogReply>((*line)["result"]).job;
    if (ctx.json) {
      print_json({{"job", job_to_json(job)}, {"log", collected}});
    } else if (req.follow) {
      std::cerr << "=== job #" << job.id << " " << to_string(job.state) << "\n";
    }
    return !req.follow || job.state == JobState::succeeded ? kOk : kWorkFailed;
  }
  throw Unreachable{"ptbuildd closed the connection while following the log"};
}

int cmd_wait(Context& ctx, const ParsedArgs& a) {
  json refs = job_refs(a.positional, "wait");
  int timeout_ms = -1;
  if (auto t = a.value("--timeout")) {
    auto d = ptbuild::parse_duration(*t);
    if (!d) throw UsageError{"--timeout needs a duration such as 30s, 10m or 2h, got '" + *t + "'"};
    timeout_ms = static_cast<int>(d->count());
  }
  Connection& c = ctx.connect();
  int64_t id = c.send(protocol::op::kWait, refs);
  while (auto line = c.next(timeout_ms)) {
    if (line->value("id", int64_t{-1}) != id || line->contains("event")) continue;
    if (!line->value("ok", false)) throw_remote(*line);
    auto reply = read_reply<protocol::JobsReply>((*line)["result"]);
    if (ctx.json)
      print_json(protocol::to_json(reply));
    else
      print_jobs_table(std::cout, reply.jobs, ctx.style);
    return all_succeeded(reply.jobs) ? kOk : kWorkFailed;
  }
  if (c.timed_out()) {
    if (ctx.json) print_json({{"error", {{"code", "timeout"}, {"message", "the jobs did not end in time"}}}});
    std::cerr << "ptbuild: timed out after " << *a.value("--timeout") << " waiting for the jobs to end\n";
    return kWorkFailed;
  }
  throw Unreachable{"ptbuildd closed the connection while waiting"};
}

int cmd_cancel(Context& ctx, const ParsedArgs& a) {
  auto reply = call<protocol::CancelReply>(ctx, protocol::op::kCancel, job_refs(a.positional, "cancel"));
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return kOk;
  }
  for (const protocol::CancelledJob& j : reply.jobs)
    std::cout << "#" << j.id << " " << printable(j.variant) << ": " << printable(j.outcome) << "\n";
  return kOk;
}

int print_queued(Context& ctx, const protocol::QueueReply& reply) {
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return kOk;
  }
  Table t({"ID", "VARIANT", "STATE", ""});
  for (const protocol::QueuedJob& j : reply.jobs)
    t.add({"#" + std::to_string(j.id), printable(j.variant), ctx.style.state(std::string(to_string(j.state))),
           j.fresh ? "" : "(an existing job)"});
  t.print(std::cout);
  return kOk;
}

int cmd_nightly(Context& ctx, const ParsedArgs& a) {
  // Evaluating every recipe takes as long as it takes; the daemon bounds it itself, and says how
  // far it is on stderr meanwhile.
  bool stderr_tty = ::isatty(STDERR_FILENO);
  auto progress = [&](const json& event) {
    if (event.value("event", "") != "progress") return;
    auto p = read_reply<protocol::NightlyProgress>(event["data"]);
    std::cerr << "nightly: evaluated " << p.evaluated << " of " << p.total << " recipe(s)"
              << (stderr_tty ? "\r" : "\n") << std::flush;
  };
  auto reply = read_reply<protocol::NightlyReply>(ctx.connect().call(
      protocol::op::kNightly, protocol::to_args(protocol::NightlyRequest{a.positional}), -1, progress));
  if (stderr_tty) std::cerr << "\n";
  size_t unevaluated = 0;
  for (const protocol::NightlyEntry& e : reply.errors)
    if (e.reason.find("evaluat") != std::string::npos) ++unevaluated;
  int code = reply.errors.empty() ? kOk : kWorkFailed;  // a night that could not look is not a quiet one
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return code;
  }
  if (!reply.jobs.empty()) {
    std::cout << "queued (inputs changed):\n";
    Table t({"ID", "VARIANT", "", "WHY"});
    for (const protocol::JobView& v : reply.jobs)
      t.add({"#" + std::to_string(v.job.id), printable(v.job.variant),
             v.fresh.value_or(true) ? "queued" : "already " + std::string(to_string(v.job.state)),
             printable(v.job.reason)});
    t.print(std::cout);
  }
  size_t known = 0;
  for (const protocol::NightlyEntry& e : reply.skipped)
    if (e.reason.starts_with("known failure")) {
      if (known++ == 0) std::cout << "not rebuilt (known failures, inputs unchanged):\n";
      std::cout << "  " << printable(e.name) << ": "
                << printable(e.reason.substr(std::string_view("known failure, inputs unchanged: ").size()))
                << "\n";
    }
  std::cout << reply.skipped.size() - known << " unchanged variant(s) skipped";
  std::cout << (reply.jobs.empty() ? ": nothing to rebuild\n" : "\n");
  for (const protocol::NightlyEntry& e : reply.errors)
    std::cerr << "ptbuild: " << printable(e.name) << ": " << printable(e.reason) << "\n";
  if (unevaluated)
    std::cerr << "ptbuild: " << unevaluated
              << " variant(s) could not be evaluated: their recipe files were compared "
                 "instead, and a derivation changed by its inputs alone would go unseen\n";
  return code;
}

int cmd_publish(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"publish needs at least one TARGET"};
  return print_queued(ctx, call<protocol::QueueReply>(
                               ctx, protocol::op::kPublish,
                               protocol::to_args(protocol::PublishRequest{a.positional, a.has("--force")})));
}

// gc [--dry-run] [--builder NAME]
int cmd_gc(Context& ctx, const ParsedArgs& a) {
  if (!a.positional.empty()) throw UsageError{"gc takes no TARGET (options: --dry-run, --builder NAME)"};
  auto reply = call<protocol::GcReply>(
      ctx, protocol::op::kGc,
      protocol::to_args(protocol::GcRequest{a.has("--dry-run"), a.value("--builder").value_or("")}));
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return kOk;
  }
  uint64_t dropped_bytes = 0;
  for (const auto& d : reply.dropped) {
    std::cout << (reply.dry_run ? "would drop " : "dropped ") << "#" << d.job << " " << printable(d.variant)
              << "  " << d.out_path << (d.size ? "  " + human_size(d.size) : "") << "\n";
    dropped_bytes += d.size;
  }
  std::cout << reply.dropped.size() << " build(s) let go (" << human_size(dropped_bytes) << "), "
            << reply.kept << " kept by the policy; ";
  if (reply.dry_run)
    std::cout << "the store has " << reply.dead_paths << " dead path(s) now (" << human_size(reply.dead_bytes)
              << ")\n";
  else
    std::cout << "Nix's GC deleted " << reply.dead_paths << " path(s), " << human_size(reply.freed_bytes)
              << " freed\n";
  return kOk;
}

int cmd_retry(Context& ctx, const ParsedArgs& a) {
  return print_queued(ctx,
                      call<protocol::QueueReply>(ctx, protocol::op::kRetry, job_refs(a.positional, "retry")));
}

int cmd_fixes(Context& ctx, const ParsedArgs&) {
  auto reply = call<protocol::FixesReply>(ctx, protocol::op::kFixes);
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return kOk;
  }
  if (reply.fixes.empty()) {
    std::cout << "no hash has been repaired\n";
    return kOk;
  }
  Table t({"JOB", "VARIANT", "FILE:LINE", "OLD", "NEW", "AT"});
  for (const protocol::FixView& f : reply.fixes)
    t.add({"#" + std::to_string(f.job), printable(f.variant), f.file + ":" + std::to_string(f.line),
           f.old_hash, f.new_hash, f.at});
  t.print(std::cout);
  return kOk;
}

void print_builders(Context& ctx, const std::vector<protocol::BuilderView>& builders) {
  Table t(
      {"BUILDER", "STATE", "SLOTS", "MEMORY", "DISK", "SYSTEMS", "FEATURES", "DONE", "URI", "LAST ERROR"});
  auto list = [](const std::vector<std::string>& items) { return join(items, ","); };
  for (const protocol::BuilderView& b : builders) {
    std::string features = list(b.supported_features);
    if (!b.mandatory_features.empty()) features += " (must: " + list(b.mandatory_features) + ")";
    // "3.1/20.0 GiB held, 23.0 free" and "70.0 GiB free (min 25.0)": docs/resources.md
    std::string memory = "-", disk = "-";
    if (const auto& r = b.resources) {
      memory = human_size(r->committed) + " held of " + human_size(r->memory_total) + ", " +
               human_size(r->memory_available) + " free";
      if (r->pressure && *r->pressure >= 1)
        memory += ", PSI " + std::to_string(static_cast<int>(*r->pressure)) + "%";
      disk = human_size(std::min(r->store_free, r->build_dir_free)) + " free (min " +
             human_size(r->min_free) + ")";
    }
    t.add({printable(b.name), ctx.style.paint(printable(b.state), b.state == "up" ? "32" : "33"),
           std::to_string(b.running) + "/" + std::to_string(b.slots), memory, disk, list(b.systems),
           features.empty() ? "-" : features, std::to_string(b.done), printable(b.uri),
           b.last_error ? printable(*b.last_error) : ""});
  }
  t.print(std::cout);
}

// builders | builders disable NAME | builders enable NAME
int cmd_builders(Context& ctx, const ParsedArgs& a) {
  protocol::BuildersReply reply;
  if (a.positional.empty()) {
    reply = call<protocol::BuildersReply>(ctx, protocol::op::kBuilders);
  } else if (a.positional.size() == 2 && (a.positional[0] == "disable" || a.positional[0] == "enable")) {
    reply = call<protocol::BuildersReply>(
        ctx, protocol::op::kSetBuilder,
        protocol::to_args(protocol::SetBuilderRequest{a.positional[1], a.positional[0] == "enable"}));
  } else {
    throw UsageError{"builders takes nothing, or disable NAME, or enable NAME"};
  }
  if (ctx.json)
    print_json(protocol::to_json(reply));
  else
    print_builders(ctx, reply.builders);
  return kOk;
}

// bisect VARIANT [--good REV] [--bad REV] | bisect status | bisect cancel [VARIANT]
int cmd_bisect(Context& ctx, const ParsedArgs& a) {
  protocol::BisectsReply reply;
  const std::vector<std::string>& p = a.positional;
  if (p.size() == 1 && p[0] == "status") {
    reply = call<protocol::BisectsReply>(ctx, protocol::op::kBisectStatus);
  } else if (!p.empty() && p.size() <= 2 && p[0] == "cancel") {
    reply = call<protocol::BisectsReply>(
        ctx, protocol::op::kBisectCancel,
        protocol::to_args(protocol::BisectCancelRequest{p.size() == 2 ? p[1] : ""}));
  } else if (p.size() == 1) {
    reply = call<protocol::BisectsReply>(
        ctx, protocol::op::kBisect,
        protocol::to_args(
            protocol::BisectRequest{p[0], a.value("--good").value_or(""), a.value("--bad").value_or("")}));
  } else {
    throw UsageError{"bisect takes one VARIANT, or status, or cancel [VARIANT]"};
  }
  if (ctx.json) {
    print_json(protocol::to_json(reply));
    return kOk;
  }
  if (reply.bisects.empty()) std::cout << "no bisection yet\n";
  for (const protocol::BisectView& b : reply.bisects) {
    std::cout << "bisect #" << b.id << " " << printable(b.variant) << ": " << b.state << ", " << b.builds
              << " builds (at most " << b.max_builds << ") over " << b.commits.size() << " commits after "
              << b.good.substr(0, 7) << "\n";
    if (!b.message.empty()) std::cout << "  " << printable(b.message) << "\n";
    for (const BisectCommit& c : b.commits)
      std::cout << "  " << c.sha.substr(0, 7) << " " << (c.verdict.empty() ? std::string("?") : c.verdict)
                << std::string(c.verdict.size() < 4 ? 5 - std::max<size_t>(c.verdict.size(), 1) : 1, ' ')
                << printable(c.subject) << (c.how.empty() ? "" : "  (" + printable(c.how) + ")") << "\n";
    if (b.changes)
      for (const std::string& line : b.changes->summary)
        std::cout << "  changed: " << printable(line) << "\n";
  }
  return kOk;
}

// A short command of this machine (nix), its stdout; nullopt when it fails. The client's only
// processes: provenance --verify and keys generate work offline, without the daemon.
std::optional<std::string> capture(const std::string& shell_command) {
  FILE* pipe = ::popen(shell_command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return out;
}

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// provenance JOB [--verify --public-key K]: K is a Nix public key ("NAME:BASE64") or a file of one.
int cmd_provenance(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"provenance needs exactly one JOB (an id or a variant)"};
  auto reply = call<protocol::ProvenanceReply>(
      ctx, protocol::op::kProvenance,
      protocol::to_args(protocol::ShowRequest{protocol::parse_job_ref(a.positional[0])}));
  json shown = protocol::to_json(reply);
  if (!a.has("--verify")) {
    if (ctx.json)
      print_json(shown);
    else
      std::cout << shown["statement"].dump(2) << "\n";
    return kOk;
  }
  std::string key_text = a.value("--public-key").value_or("");
  if (key_text.empty()) throw UsageError{"--verify needs --public-key K (a key, or a file with one)"};
  if (std::optional<std::string> file = read_file(key_text)) key_text = *file;
  std::string error;
  std::optional<NixKey> key = parse_nix_key(key_text, false, error);
  if (!key) throw UsageError{"--public-key: " + error};
  auto refuse = [&](const std::string& why) {
    if (ctx.json) print_json({{"ok", false}, {"job", reply.job}, {"error", why}});
    std::cerr << "ptbuild: provenance of #" << reply.job << " refused: " << why << "\n";
    return kWorkFailed;
  };
  std::optional<json> statement = open_envelope(json::parse(reply.envelope), *key, error);
  if (!statement) return refuse(error);
  const json& subject = (*statement)["subject"][0];
  std::string path = subject.value("name", "");
  std::string claimed = subject["digest"].value("sha256", "");
  if (path != reply.out_path) return refuse("the statement is about " + path + ", not " + reply.out_path);
  std::optional<std::string> actual =
      capture("nix --extra-experimental-features nix-command hash path --type sha256 --base16 " +
              shell_quoted(path) + " 2>/dev/null");
  if (!actual) return refuse(path + " is not in this machine's store (or nix hash path failed)");
  std::string now(trim(*actual));
  if (now != claimed)
    return refuse("the artifact differs from the statement: NAR sha256 of " + path + " is " + now +
                  ", the statement says " + claimed);
  if (ctx.json)
    print_json({{"ok", true},
                {"job", reply.job},
                {"out_path", path},
                {"key", key->name},
                {"statement", *statement}});
  else
    std::cout << "ok: #" << reply.job << " " << path << " is what the statement signed by " << key->name
              << " says (NAR sha256 " << claimed << ")\n";
  return kOk;
}

// keys generate NAME [--dir DIR]: a Nix signing key pair, made by Nix: DIR/NAME.sec (0600) and
// DIR/NAME.pub; prints the public key.
int cmd_keys(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 2 || a.positional[0] != "generate")
    throw UsageError{"keys takes: generate NAME"};
  const std::string& name = a.positional[1];
  std::string dir = a.value("--dir").value_or(".");
  std::string secret_file = dir + "/" + name + ".sec", public_file = dir + "/" + name + ".pub";
  if (read_file(secret_file)) throw UsageError{secret_file + " exists already: it is never overwritten"};
  const std::string nix = "nix --extra-experimental-features nix-command ";
  std::optional<std::string> secret = capture(nix + "key generate-secret --key-name " + shell_quoted(name));
  if (!secret) {
    std::cerr << "ptbuild: nix key generate-secret failed (is Nix installed?)\n";
    return kWorkFailed;
  }
  ::umask(077);  // the secret key is the owner's only
  std::ofstream secret_out(secret_file);
  if (!(secret_out << *secret) || !secret_out.flush()) {
    std::cerr << "ptbuild: cannot write " << secret_file << "\n";
    return kWorkFailed;
  }
  std::optional<std::string> pub =
      capture(nix + "key convert-secret-to-public < " + shell_quoted(secret_file));
  if (!pub) {
    std::cerr << "ptbuild: nix key convert-secret-to-public failed\n";
    return kWorkFailed;
  }
  std::ofstream(public_file) << trim(*pub) << "\n";
  if (ctx.json)
    print_json({{"name", name},
                {"secret_key_file", secret_file},
                {"public_key_file", public_file},
                {"public_key", std::string(trim(*pub))}});
  else
    std::cout << trim(*pub) << "\n";
  return kOk;
}

// why TARGET|JOB: what each job is waiting for, or where it stands if it is not waiting.
int cmd_why(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"why needs a TARGET or a JOB"};
  protocol::JobsReply found;
  for (const std::string& arg : a.positional) {
    protocol::JobRef ref = protocol::parse_job_ref(arg);
    if (std::holds_alternative<int64_t>(ref)) {
      found.jobs.push_back(
          {call<Job>(ctx, protocol::op::kShow, protocol::to_args(protocol::ShowRequest{ref}))});
      continue;
    }
    auto status = call<protocol::StatusReply>(ctx, protocol::op::kStatus,
                                              protocol::to_args(protocol::StatusRequest{{arg}}));
    for (protocol::JobView& v : status.jobs) found.jobs.push_back(std::move(v));
  }
  if (ctx.json) {
    print_json(protocol::to_json(found));
    return kOk;
  }
  if (found.jobs.empty()) std::cout << "no job: nothing is queued or running for that\n";
  for (const protocol::JobView& v : found.jobs) {
    const Job& j = v.job;
    std::string state(to_string(j.state));
    std::string why =
        j.state == JobState::queued ? "waiting: " + j.waiting.value_or("not looked at yet")
        : j.state == JobState::running
            ? "running on " + j.builder.value_or("local")
            : state + (j.failure ? ": " + j.failure->failure_class + ": " + j.failure->message : "");
    std::cout << "#" << j.id << " " << printable(j.variant) << "  " << printable(why) << "\n";
  }
  return kOk;
}

template <class Reply>
int simple_op(Context& ctx, const protocol::OpSpec& op, const char* done) {
  auto reply = call<Reply>(ctx, op);
  if (ctx.json)
    print_json(protocol::to_json(reply));
  else
    std::cout << done << "\n";
  return kOk;
}
int cmd_pause(Context& ctx, const ParsedArgs&) {
  return simple_op<protocol::PauseReply>(ctx, protocol::op::kPause,
                                         "paused: no new build starts until `ptbuild resume`");
}
int cmd_resume(Context& ctx, const ParsedArgs&) {
  return simple_op<protocol::PauseReply>(ctx, protocol::op::kResume, "resumed");
}
int cmd_drain(Context& ctx, const ParsedArgs&) {
  return simple_op<protocol::DrainReply>(
      ctx, protocol::op::kDrain, "draining: nothing new starts; ptbuildd exits when the running builds end");
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> all{
      {"queue",
       "TARGET…",
       "queue builds of the variants the targets name",
       {{"--priority", true, "N: higher runs first (default 0)"},
        {"--reason", true, "TEXT: why, kept with the job"},
        {"--force", false, "queue a second build even if one is running"}},
       cmd_queue},
      {"status",
       "[TARGET…]",
       "queued and running jobs, and the latest result of each variant",
       {{"--watch", false, "redraw every 2 s until nothing is queued or running"}},
       cmd_status},
      {"jobs",
       "",
       "the job history, newest first",
       {{"--state", true, "S: only jobs in state S"},
        {"--limit", true, "N: at most N jobs (default 50)"},
        {"--variant", true, "V: only the jobs of variant V"}},
       cmd_jobs},
      {"show", "JOB", "one job in full (JOB is an id or a variant's latest job)", {}, cmd_show},
      {"changes",
       "JOB|VARIANT",
       "what changed since the variant's last good build: inputs, flags, sources, commits, repairs",
       {{"--since", true, "JOB: compare with this earlier build instead"}},
       cmd_changes},
      {"bisect",
       "VARIANT|status|cancel [VARIANT]",
       "find the commit at which a variant began to fail: builds at commits in between, below normal priority",
       {{"--good", true, "REV: a commit it built at (default: its last good build's)"},
        {"--bad", true, "REV: a commit it fails at (default: its failed build's, else HEAD)"}},
       cmd_bisect},
      {"provenance",
       "JOB",
       "a verified build's signed provenance (in-toto, SLSA v1), or --verify it offline",
       {{"--verify", false, "check the signature and that the artifact in this store is the one signed"},
        {"--public-key", true, "K: the Nix public key (NAME:BASE64, or a file of it)"}},
       cmd_provenance},
      {"keys",
       "generate NAME",
       "make a Nix signing key pair for publish.signing_key; prints the public key",
       {{"--dir", true, "DIR: where NAME.sec and NAME.pub go (default .)"}},
       cmd_keys},
      {"matrix", "", "the variant matrix with the state of each variant's latest job", {}, cmd_matrix},
      {"log",
       "JOB|VARIANT",
       "a build's log",
       {{"--tail", true, "N: only the last N lines"},
        {"-f", false, "follow a running build until it ends"},
        {"--follow", false, "same as -f"}},
       cmd_log},
      {"wait",
       "JOB|VARIANT…",
       "wait until the jobs end; exit 1 if one did not succeed",
       {{"--timeout", true, "D: give up after D (e.g. 30m), exit 1"}},
       cmd_wait},
      {"cancel",
       "JOB|VARIANT…",
       "cancel queued or running jobs (the build's whole process group)",
       {},
       cmd_cancel},
      {"retry", "JOB|VARIANT…", "queue a finished job's variant again", {}, cmd_retry},
      {"publish",
       "TARGET…",
       "publish the latest verified build of each variant (flox publish / nix copy)",
       {{"--force", false, "publish even if the build failed verification or the recipe changed since"}},
       cmd_publish},
      {"fixes", "", "every fixed-output hash ptbuild repaired in the recipes", {}, cmd_fixes},
      {"gc",
       "",
       "let go of builds the retention policy ([gc] keep_good) does not keep, then Nix's own GC",
       {{"--dry-run", false, "change nothing: list what would go and how much"},
        {"--builder", true, "NAME: the builder whose store (this machine's only)"}},
       cmd_gc},
      {"nightly",
       "[TARGET…]",
       "queue the variants whose inputs changed since their last good build",
       {},
       cmd_nightly},
      {"recipes",
       "plan|render",
       "compare the recipes with the matrix in the config, or write the missing ones",
       {{"--write", false, "render: also rewrite generated recipes that drifted from their template"},
        {"--force", false, "render --write: rewrite drifted recipes that were not generated too"}},
       cmd_recipes},
      {"doctor",
       "",
       "lint every recipe offline, grouped by rule: pnames, architectures and their spelling, CUDA, cpuFlags, pins, strays",
       {},
       cmd_doctor},
      {"builders",
       "[disable|enable NAME]",
       "the builders: state, slots, systems, features; or take one out or back",
       {},
       cmd_builders},
      {"why", "TARGET|JOB…", "why a queued job has not started (or where it stands)", {}, cmd_why},
      {"pause", "", "start no new build until resume (running ones go on)", {}, cmd_pause},
      {"resume",
       "",
       "start builds again after pause, or on a builder resting after a nix_setup fault",
       {},
       cmd_resume},
      {"drain", "", "start nothing new; ptbuildd exits when the running builds end", {}, cmd_drain},
  };
  return all;
}

const Command* find_command(const std::string& name) {
  for (const Command& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

std::string command_help(const Command& c) {
  std::string text =
      "usage: ptbuild " + c.name + (c.args.empty() ? "" : " " + c.args) + " [--json]\n\n" + c.summary + "\n";
  text += "\noptions:\n";
  for (const OptionSpec& o : c.options) text += "  " + o.name + "  " + o.help + "\n";
  return text + "  --json  print one JSON document on stdout\n  --help  this text\n";
}

}  // namespace ptbuild::client
