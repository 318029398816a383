#include "core/requests.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "core/protocol.h"

namespace ptbuild::protocol {

namespace {

nlohmann::json ref_json(const JobRef& ref) {
  return std::visit([](const auto& v) { return nlohmann::json(v); }, ref);
}

JobRef ref_from(const nlohmann::json& j) {
  if (j.is_number_integer()) return arg_int(nlohmann::json{{"job", j}}, "job", 0, {1, INT64_MAX});
  if (j.is_string()) return parse_job_ref(j.get<std::string>());
  throw ArgError{"a job must be named by its id or by a variant"};
}

std::vector<std::string> nonempty_targets(const nlohmann::json& args) {
  std::vector<std::string> targets = arg_strings(args, "targets");
  if (targets.empty()) throw ArgError{"argument \"targets\" must name at least one target"};
  return targets;
}

JobRef required_job(const nlohmann::json& args) {
  if (!args.contains("job")) throw ArgError{"argument \"job\" is required"};
  return ref_from(args["job"]);
}

}  // namespace

JobRef parse_job_ref(const std::string& text) {
  std::string digits = text.starts_with("#") ? text.substr(1) : text;
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return text;
  int64_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc{})
    throw ArgError{"job id " + text + " is past the largest id, " + std::to_string(INT64_MAX)};
  return id;
}

std::string describe(const JobRef& ref) {
  if (auto* id = std::get_if<int64_t>(&ref)) return "#" + std::to_string(*id);
  return std::get<std::string>(ref);
}

nlohmann::json to_args(const QueueRequest& r) {
  return {{"targets", r.targets}, {"priority", r.priority}, {"force", r.force}, {"reason", r.reason}};
}
nlohmann::json to_args(const StatusRequest& r) {
  return {{"targets", r.targets}};
}
nlohmann::json to_args(const JobsRequest& r) {
  nlohmann::json j{{"limit", r.limit}};
  if (r.before > 0) j["before"] = r.before;
  if (!r.state.empty()) j["state"] = r.state;
  if (!r.variant.empty()) j["variant"] = r.variant;
  return j;
}
nlohmann::json to_args(const ChangesRequest& r) {
  return {{"job", ref_json(r.job)}, {"since", r.since}};
}
nlohmann::json to_args(const BisectRequest& r) {
  return {{"variant", r.variant}, {"good", r.good}, {"bad", r.bad}};
}
nlohmann::json to_args(const BisectCancelRequest& r) {
  return {{"variant", r.variant}};
}
nlohmann::json to_args(const ShowRequest& r) {
  return {{"job", ref_json(r.job)}};
}
nlohmann::json to_args(const LogRequest& r) {
  return {{"job", ref_json(r.job)}, {"tail", r.tail}, {"follow", r.follow}};
}
nlohmann::json to_args(const JobsByRefRequest& r) {
  nlohmann::json jobs = nlohmann::json::array();
  for (const JobRef& ref : r.jobs) jobs.push_back(ref_json(ref));
  return {{"jobs", jobs}};
}
nlohmann::json to_args(const PublishRequest& r) {
  return {{"targets", r.targets}, {"force", r.force}};
}
nlohmann::json to_args(const NightlyRequest& r) {
  return {{"targets", r.targets}};
}
nlohmann::json to_args(const GcRequest& r) {
  return {{"dry_run", r.dry_run}, {"builder", r.builder}};
}
nlohmann::json to_args(const SetBuilderRequest& r) {
  return {{"name", r.name}, {"enabled", r.enabled}};
}

template <>
QueueRequest from_args(const nlohmann::json& args) {
  return {nonempty_targets(args),
          static_cast<int>(arg_int(args, "priority", 0, {-kMaxPriority, kMaxPriority})),
          arg_bool(args, "force"), arg_string(args, "reason", "queued by hand")};
}
template <>
StatusRequest from_args(const nlohmann::json& args) {
  return {arg_strings(args, "targets")};
}
template <>
JobsRequest from_args(const nlohmann::json& args) {
  return {arg_string(args, "state"), arg_int(args, "limit", 50, {1, kMaxListing}),
          arg_int(args, "before", 0, {0, INT64_MAX}), arg_string(args, "variant")};
}
template <>
ShowRequest from_args(const nlohmann::json& args) {
  return {required_job(args)};
}
template <>
BisectRequest from_args(const nlohmann::json& args) {
  BisectRequest r{arg_string(args, "variant"), arg_string(args, "good"), arg_string(args, "bad")};
  if (r.variant.empty()) throw ArgError{"bisect needs a variant"};
  return r;
}
template <>
BisectCancelRequest from_args(const nlohmann::json& args) {
  return {arg_string(args, "variant")};
}
template <>
ChangesRequest from_args(const nlohmann::json& args) {
  return {required_job(args), arg_int(args, "since", 0, {0, INT64_MAX})};
}
template <>
LogRequest from_args(const nlohmann::json& args) {
  return {required_job(args), arg_int(args, "tail", 0, {0, kMaxTail}), arg_bool(args, "follow")};
}
template <>
JobsByRefRequest from_args(const nlohmann::json& args) {
  const nlohmann::json* jobs = args.contains("jobs") ? &args["jobs"] : nullptr;
  if (!jobs || !jobs->is_array() || jobs->empty())
    throw ArgError{"argument \"jobs\" must be a non-empty array of job ids or variant names"};
  JobsByRefRequest r;
  for (const nlohmann::json& j : *jobs) r.jobs.push_back(ref_from(j));
  return r;
}
template <>
PublishRequest from_args(const nlohmann::json& args) {
  return {nonempty_targets(args), arg_bool(args, "force")};
}
template <>
NightlyRequest from_args(const nlohmann::json& args) {
  return {arg_strings(args, "targets")};
}
template <>
GcRequest from_args(const nlohmann::json& args) {
  return {arg_bool(args, "dry_run"), arg_string(args, "builder", "")};
}
template <>
SetBuilderRequest from_args(const nlohmann::json& args) {
  SetBuilderRequest r{arg_string(args, "name", ""), arg_bool(args, "enabled")};
  if (r.name.empty()) throw ArgError{"argument \"name\" must name a builder"};
  return r;
}

}  // namespace ptbuild::protocol
