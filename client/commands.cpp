#include "client/commands.h"

#include <unistd.h>

#include <iostream>

#include "core/duration.h"
#include "core/requests.h"

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

long long ParsedArgs::integer(const std::string& option, long long fallback) const {
  auto v = value(option);
  if (!v) return fallback;
  try {
    size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  throw UsageError{option + " needs a whole number, got '" + *v + "'"};
}

namespace {

void print_json(const json& j) {
  std::cout << j.dump(2) << "\n";
}
int print_queued(Context& ctx, const json& result);

int cmd_matrix(Context& ctx, const ParsedArgs&) {
  json result = ctx.connect().call(protocol::op::kMatrix);
  if (ctx.json)
    print_json(result);
  else
    print_matrix(std::cout, result["variants"], ctx.style);
  return kOk;
}

int cmd_queue(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"queue needs at least one TARGET"};
  protocol::QueueRequest req{a.positional, static_cast<int>(a.integer("--priority", 0)), a.has("--force")};
  if (auto reason = a.value("--reason")) req.reason = *reason;
  return print_queued(ctx, ctx.connect().call(protocol::op::kQueue, protocol::to_args(req)));
}

bool has_active(const json& jobs) {
  for (const json& j : jobs)
    if (j.value("state", "") == "queued" || j.value("state", "") == "running") return true;
  return false;
}

void print_status(Context& ctx, const json& result) {
  const json& s = result["scheduler"];
  if (s.is_object()) {
    std::cout << "builds running: " << s.value("running", 0) << " of " << s.value("slots", 0)
              << (s.value("paused", false) ? "   PAUSED" : "")
              << (s.value("draining", false) ? "   DRAINING" : "") << "\n";
    for (const json& b : s.value("builders", json::array()))
      if (b.value("state", "up") != "up")
        std::cout << ctx.style.paint("builder " + b.value("name", "") + ": " + b.value("state", ""), "33")
                  << "\n";
    std::cout << "\n";
  }
  print_jobs_table(std::cout, result["jobs"], ctx.style);
}

// --watch redraws whenever the daemon pushes a job's start or end, and every 2 s for the
// progress bars, until nothing is queued or running any more.
int cmd_status(Context& ctx, const ParsedArgs& a) {
  json args = protocol::to_args(protocol::StatusRequest{a.positional});
  bool watch = a.has("--watch");
  if (watch) ctx.connect().send(protocol::op::kWatch, json::object());
  while (true) {
    json result = ctx.connect().call(protocol::op::kStatus, args);
    if (ctx.json) {
      print_json(result);
    } else {
      if (watch && ctx.style.terminal) std::cout << "\x1b[H\x1b[2J";
      print_status(ctx, result);
    }
    if (!watch || !has_active(result["jobs"])) return kOk;
    std::cout << std::flush;
    ctx.connect().next(2000);  // a pushed job event, or the next tick
  }
}

int cmd_jobs(Context& ctx, const ParsedArgs& a) {
  protocol::JobsRequest req{a.value("--state").value_or(""), a.integer("--limit", 50)};
  json result = ctx.connect().call(protocol::op::kJobs, protocol::to_args(req));
  if (ctx.json)
    print_json(result);
  else
    print_jobs_table(std::cout, result["jobs"], ctx.style);
  return kOk;
}

// A job argument: a number is a job id, anything else a variant (its latest job).

int cmd_show(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"show needs exactly one JOB (an id or a variant)"};
  json result =
      ctx.connect().call(protocol::op::kShow,
                         protocol::to_args(protocol::ShowRequest{protocol::parse_job_ref(a.positional[0])}));
  if (ctx.json)
    print_json(result);
  else
    print_job(std::cout, result, ctx.style);
  return kOk;
}

json job_refs(const std::vector<std::string>& args, const char* what) {
  if (args.empty()) throw UsageError{std::string(what) + " needs at least one JOB (an id or a variant)"};
  protocol::JobsByRefRequest req;
  for (const std::string& a : args) req.jobs.push_back(protocol::parse_job_ref(a));
  return protocol::to_args(req);
}

bool all_succeeded(const json& jobs) {
  for (const json& j : jobs)
    if (j.value("state", "") != "succeeded") return false;
  return true;
}

int cmd_log(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"log needs exactly one JOB (an id or a variant)"};
  bool follow = a.has("-f") || a.has("--follow");
  Connection& c = ctx.connect();
  int64_t id = c.send(protocol::op::kLog,
                      protocol::to_args(protocol::LogRequest{protocol::parse_job_ref(a.positional[0]),
                                                             a.integer("--tail", 0), follow}));
  std::string collected;
  while (auto line = c.next()) {
    if (line->value("id", int64_t{-1}) != id) continue;
    if (line->contains("event")) {
      std::string text = (*line)["data"].value("text", "");
      if (ctx.json) {
        collected += text;
      } else {
        std::cout << text << std::flush;
      }
      continue;
    }
    if (!line->value("ok", false)) {
      const json& err = (*line)["error"];
      throw RemoteError{err.value("code", "error"), err.value("message", "")};
    }
    const json& job = (*line)["result"]["job"];
    if (ctx.json) {
      print_json({{"job", job}, {"log", collected}});
    } else if (follow) {
      std::cerr << "=== job #" << job.value("id", int64_t{0}) << " " << job.value("state", "") << "\n";
    }
    return !follow || job.value("state", "") == "succeeded" ? kOk : kWorkFailed;
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
    if (!line->value("ok", false)) {
      const json& err = (*line)["error"];
      throw RemoteError{err.value("code", "error"), err.value("message", "")};
    }
    const json& result = (*line)["result"];
    if (ctx.json)
      print_json(result);
    else
      print_jobs_table(std::cout, result["jobs"], ctx.style);
    return all_succeeded(result["jobs"]) ? kOk : kWorkFailed;
  }
  if (c.timed_out()) {
    if (ctx.json) print_json({{"error", {{"code", "timeout"}, {"message", "the jobs did not end in time"}}}});
    std::cerr << "ptbuild: timed out after " << *a.value("--timeout") << " waiting for the jobs to end\n";
    return kWorkFailed;
  }
  throw Unreachable{"ptbuildd closed the connection while waiting"};
}

int cmd_cancel(Context& ctx, const ParsedArgs& a) {
  json result = ctx.connect().call(protocol::op::kCancel, job_refs(a.positional, "cancel"));
  if (ctx.json) {
    print_json(result);
    return kOk;
  }
  for (const json& j : result["jobs"])
    std::cout << "#" << j["id"].get<int64_t>() << " " << printable(j["variant"].get<std::string>()) << ": "
              << printable(j["outcome"].get<std::string>()) << "\n";
  return kOk;
}

int print_queued(Context& ctx, const json& result) {
  if (ctx.json) {
    print_json(result);
    return kOk;
  }
  Table t({"ID", "VARIANT", "STATE", ""});
  for (const json& j : result["jobs"])
    t.add({"#" + std::to_string(j["id"].get<int64_t>()), printable(j["variant"].get<std::string>()),
           ctx.style.state(j["state"].get<std::string>()), j["new"].get<bool>() ? "" : "(an existing job)"});
  t.print(std::cout);
  return kOk;
}

int cmd_nightly(Context& ctx, const ParsedArgs& a) {
  // Evaluating every recipe takes as long as it takes; the daemon bounds it itself, and says how
  // far it is on stderr meanwhile.
  bool stderr_tty = ::isatty(STDERR_FILENO);
  auto progress = [&](const json& event) {
    const json& data = event["data"];
    if (event.value("event", "") != "progress" || !data.is_object()) return;
    std::cerr << "nightly: evaluated " << data.value("evaluated", 0) << " of " << data.value("total", 0)
              << " recipe(s)" << (stderr_tty ? "\r" : "\n") << std::flush;
  };
  json result = ctx.connect().call(protocol::op::kNightly,
                                   protocol::to_args(protocol::NightlyRequest{a.positional}), -1, progress);
  if (stderr_tty) std::cerr << "\n";
  size_t unevaluated = 0;
  for (const json& e : result["errors"])
    if (e["reason"].get<std::string>().find("evaluat") != std::string::npos) ++unevaluated;
  int code = result["errors"].empty() ? kOk : kWorkFailed;  // a night that could not look is not a quiet one
  if (ctx.json) {
    print_json(result);
    return code;
  }
  if (!result["jobs"].empty()) {
    std::cout << "queued (inputs changed):\n";
    Table t({"ID", "VARIANT", "", "WHY"});
    for (const json& j : result["jobs"])
      t.add({"#" + std::to_string(j["id"].get<int64_t>()), printable(j["variant"].get<std::string>()),
             j["new"].get<bool>() ? "queued" : "already " + j["state"].get<std::string>(),
             printable(j["reason"].get<std::string>())});
    t.print(std::cout);
  }
  size_t known = 0;
  for (const json& e : result["skipped"])
    if (e["reason"].get<std::string>().starts_with("known failure")) {
      if (known++ == 0) std::cout << "not rebuilt (known failures, inputs unchanged):\n";
      std::cout << "  " << printable(e["variant"].get<std::string>()) << ": "
                << printable(e["reason"].get<std::string>().substr(
                       std::string_view("known failure, inputs unchanged: ").size()))
                << "\n";
    }
  std::cout << result["skipped"].size() - known << " unchanged variant(s) skipped";
  std::cout << (result["jobs"].empty() ? ": nothing to rebuild\n" : "\n");
  for (const json& e : result["errors"])
    std::cerr << "ptbuild: " << printable(e["what"].get<std::string>()) << ": "
              << printable(e["reason"].get<std::string>()) << "\n";
  if (unevaluated)
    std::cerr << "ptbuild: " << unevaluated
              << " variant(s) could not be evaluated: their recipe files were compared "
                 "instead, and a derivation changed by its inputs alone would go unseen\n";
  return code;
}

int cmd_publish(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"publish needs at least one TARGET"};
  return print_queued(
      ctx, ctx.connect().call(protocol::op::kPublish,
                              protocol::to_args(protocol::PublishRequest{a.positional, a.has("--force")})));
}

int cmd_retry(Context& ctx, const ParsedArgs& a) {
  return print_queued(ctx, ctx.connect().call(protocol::op::kRetry, job_refs(a.positional, "retry")));
}

int cmd_fixes(Context& ctx, const ParsedArgs&) {
  json result = ctx.connect().call(protocol::op::kFixes);
  if (ctx.json) {
    print_json(result);
    return kOk;
  }
  if (result["fixes"].empty()) {
    std::cout << "no hash has been repaired\n";
    return kOk;
  }
  Table t({"JOB", "VARIANT", "FILE:LINE", "OLD", "NEW", "AT"});
  for (const json& f : result["fixes"])
    t.add({"#" + std::to_string(f["job"].get<int64_t>()), printable(f["variant"].get<std::string>()),
           f["file"].get<std::string>() + ":" + std::to_string(f["line"].get<int>()),
           f["old"].get<std::string>(), f["new"].get<std::string>(), f["at"].get<std::string>()});
  t.print(std::cout);
  return kOk;
}

void print_builders(Context& ctx, const json& builders) {
  Table t({"BUILDER", "STATE", "SLOTS", "SYSTEMS", "FEATURES", "DONE", "URI", "LAST ERROR"});
  auto list = [](const json& items) {
    std::string out;
    for (const json& i : items) out += (out.empty() ? "" : ",") + i.get<std::string>();
    return out;
  };
  for (const json& b : builders) {
    std::string state = b.value("state", "");
    std::string features = list(b["supported_features"]);
    if (!b["mandatory_features"].empty()) features += " (must: " + list(b["mandatory_features"]) + ")";
    t.add({printable(b.value("name", "")), ctx.style.paint(printable(state), state == "up" ? "32" : "33"),
           std::to_string(b.value("running", 0)) + "/" + std::to_string(b.value("slots", 0)),
           list(b["systems"]), features.empty() ? "-" : features, std::to_string(b.value("done", 0)),
           printable(b.value("uri", "")),
           b["last_error"].is_string() ? printable(b["last_error"].get<std::string>()) : ""});
  }
  t.print(std::cout);
}

// builders | builders disable NAME | builders enable NAME
int cmd_builders(Context& ctx, const ParsedArgs& a) {
  json result;
  if (a.positional.empty()) {
    result = ctx.connect().call(protocol::op::kBuilders);
  } else if (a.positional.size() == 2 && (a.positional[0] == "disable" || a.positional[0] == "enable")) {
    result = ctx.connect().call(
        protocol::op::kSetBuilder,
        protocol::to_args(protocol::SetBuilderRequest{a.positional[1], a.positional[0] == "enable"}));
  } else {
    throw UsageError{"builders takes nothing, or disable NAME, or enable NAME"};
  }
  if (ctx.json)
    print_json(result);
  else
    print_builders(ctx, result["builders"]);
  return kOk;
}

// why TARGET|JOB: what each job is waiting for, or where it stands if it is not waiting.
int cmd_why(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"why needs a TARGET or a JOB"};
  json jobs = json::array();
  for (const std::string& arg : a.positional) {
    protocol::JobRef ref = protocol::parse_job_ref(arg);
    if (std::holds_alternative<int64_t>(ref)) {
      jobs.push_back(ctx.connect().call(protocol::op::kShow, protocol::to_args(protocol::ShowRequest{ref})));
      continue;
    }
    json status =
        ctx.connect().call(protocol::op::kStatus, protocol::to_args(protocol::StatusRequest{{arg}}));
    for (json& j : status["jobs"]) jobs.push_back(std::move(j));
  }
  if (ctx.json) {
    print_json({{"jobs", jobs}});
    return kOk;
  }
  if (jobs.empty()) std::cout << "no job: nothing is queued or running for that\n";
  for (const json& j : jobs) {
    std::string state = j.value("state", "");
    std::string why =
        state == "queued"
            ? "waiting: " + (j["waiting"].is_string() ? j["waiting"].get<std::string>() : "not looked at yet")
        : state == "running"
            ? "running on " + (j["builder"].is_string() ? j["builder"].get<std::string>() : "local")
            : state + (j["failure"].is_object()
                           ? ": " + j["failure"].value("class", "") + ": " + j["failure"].value("message", "")
                           : "");
    std::cout << "#" << j.value("id", int64_t{0}) << " " << printable(j.value("variant", "")) << "  "
              << printable(why) << "\n";
  }
  return kOk;
}

int simple_op(Context& ctx, const protocol::OpSpec& op, const char* done) {
  json result = ctx.connect().call(op);
  if (ctx.json)
    print_json(result);
  else
    std::cout << done << "\n";
  return kOk;
}
int cmd_pause(Context& ctx, const ParsedArgs&) {
  return simple_op(ctx, protocol::op::kPause, "paused: no new build starts until `ptbuild resume`");
}
int cmd_resume(Context& ctx, const ParsedArgs&) {
  return simple_op(ctx, protocol::op::kResume, "resumed");
}
int cmd_drain(Context& ctx, const ParsedArgs&) {
  return simple_op(ctx, protocol::op::kDrain,
                   "draining: nothing new starts; ptbuildd exits when the running builds end");
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
       {{"--state", true, "S: only jobs in state S"}, {"--limit", true, "N: at most N jobs (default 50)"}},
       cmd_jobs},
      {"show", "JOB", "one job in full (JOB is an id or a variant's latest job)", {}, cmd_show},
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
