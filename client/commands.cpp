#include "client/commands.h"

#include <iostream>

#include <nlohmann/json.hpp>

namespace ptbuild::client {

using nlohmann::json;

Connection& Context::connect() {
  if (!connection_) connection_ = std::make_unique<Connection>(socket_path);
  return *connection_;
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

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

int cmd_matrix(Context& ctx, const ParsedArgs&) {
  json result = ctx.connect().call("matrix");
  if (ctx.json)
    print_json(result);
  else
    print_matrix(std::cout, result["variants"], ctx.style);
  return kOk;
}

int cmd_queue(Context& ctx, const ParsedArgs& a) {
  if (a.positional.empty()) throw UsageError{"queue needs at least one TARGET"};
  json args{{"targets", a.positional}, {"priority", a.integer("--priority", 0)}, {"force", a.has("--force")}};
  if (auto reason = a.value("--reason")) args["reason"] = *reason;
  json result = ctx.connect().call("queue", args);
  if (ctx.json) {
    print_json(result);
    return kOk;
  }
  Table t({"ID", "VARIANT", "STATE", ""});
  for (const json& j : result["jobs"])
    t.add({"#" + std::to_string(j["id"].get<int64_t>()), j["variant"].get<std::string>(),
           ctx.style.state(j["state"].get<std::string>()),
           j["new"].get<bool>() ? "queued" : "already " + j["state"].get<std::string>()});
  t.print(std::cout);
  return kOk;
}

int cmd_status(Context& ctx, const ParsedArgs& a) {
  json result = ctx.connect().call("status", {{"targets", a.positional}});
  if (ctx.json)
    print_json(result);
  else
    print_jobs_table(std::cout, result["jobs"], ctx.style);
  return kOk;
}

int cmd_jobs(Context& ctx, const ParsedArgs& a) {
  json args{{"limit", a.integer("--limit", 50)}};
  if (auto s = a.value("--state")) args["state"] = *s;
  json result = ctx.connect().call("jobs", args);
  if (ctx.json)
    print_json(result);
  else
    print_jobs_table(std::cout, result["jobs"], ctx.style);
  return kOk;
}

// A job argument: a number is a job id, anything else a variant (its latest job).
json job_ref(const std::string& s) {
  std::string digits = s.starts_with("#") ? s.substr(1) : s;
  if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos)
    return std::stoll(digits);
  return s;
}

int cmd_show(Context& ctx, const ParsedArgs& a) {
  if (a.positional.size() != 1) throw UsageError{"show needs exactly one JOB (an id or a variant)"};
  json result = ctx.connect().call("show", {{"job", job_ref(a.positional[0])}});
  if (ctx.json)
    print_json(result);
  else
    print_job(std::cout, result, ctx.style);
  return kOk;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> all{
      {"queue", "TARGET…", "queue builds of the variants the targets name",
       {{"--priority", true, "N: higher runs first (default 0)"},
        {"--reason", true, "TEXT: why, kept with the job"},
        {"--force", false, "queue a second build even if one is running"}},
       cmd_queue},
      {"status", "[TARGET…]", "queued and running jobs, and the latest result of each variant", {}, cmd_status},
      {"jobs", "", "the job history, newest first",
       {{"--state", true, "S: only jobs in state S"}, {"--limit", true, "N: at most N jobs (default 50)"}},
       cmd_jobs},
      {"show", "JOB", "one job in full (JOB is an id or a variant's latest job)", {}, cmd_show},
      {"matrix", "", "the variant matrix with the state of each variant's latest job", {}, cmd_matrix},
  };
  return all;
}

const Command* find_command(const std::string& name) {
  for (const Command& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

std::string command_help(const Command& c) {
  std::string text = "usage: ptbuild " + c.name + (c.args.empty() ? "" : " " + c.args) +
                     " [--json]\n\n" + c.summary + "\n";
  text += "\noptions:\n";
  for (const OptionSpec& o : c.options) text += "  " + o.name + "  " + o.help + "\n";
  return text + "  --json  print one JSON document on stdout\n  --help  this text\n";
}

}  // namespace ptbuild::client
