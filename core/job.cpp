#include "core/job.h"

#include <array>
#include <nlohmann/json.hpp>

namespace ptbuild {
namespace {
constexpr std::array<std::string_view, 5> kStateNames{"queued", "running", "succeeded", "failed",
                                                      "cancelled"};
constexpr std::array<std::string_view, 3> kKindNames{"build", "publish", "bisect"};

template <class Enum, size_t N>
std::optional<Enum> parse_enum(const std::array<std::string_view, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<Enum>(i);
  return std::nullopt;
}

template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// JSON the store keeps as text (verify, resources, changes): as it was, or null when there is
// none or it does not parse.
nlohmann::json stored_or_null(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}
}  // namespace

std::string_view to_string(JobState s) {
  return kStateNames[static_cast<size_t>(s)];
}
std::string_view to_string(JobKind k) {
  return kKindNames[static_cast<size_t>(k)];
}
std::optional<JobState> parse_job_state(std::string_view s) {
  return parse_enum<JobState>(kStateNames, s);
}
std::optional<JobKind> parse_job_kind(std::string_view s) {
  return parse_enum<JobKind>(kKindNames, s);
}

nlohmann::json job_to_json(const Job& j) {
  // Filled in place: an initializer list of pairs builds and copies a temporary array for each
  // field, and `status` makes this for every job it shows.
  nlohmann::json out = nlohmann::json::object();
  out["id"] = j.id;
  out["variant"] = j.variant;
  out["repo"] = j.repo;
  out["kind"] = to_string(j.kind);
  out["state"] = to_string(j.state);
  out["priority"] = j.priority;
  out["reason"] = j.reason;
  out["attempt"] = j.attempt;
  out["created_at"] = j.created_at;
  out["started_at"] = or_null(j.started_at);
  out["finished_at"] = or_null(j.finished_at);
  out["exit_code"] = or_null(j.exit_code);
  nlohmann::json& progress = out["progress"];
  if (j.progress_total) {
    progress["done"] = j.progress_done.value_or(0);
    progress["total"] = *j.progress_total;
  }
  nlohmann::json& failure = out["failure"];
  if (j.failure) {
    failure["class"] = j.failure->failure_class;
    failure["message"] = j.failure->message;
    failure["hint"] = j.failure->hint;
    failure["excerpt"] = j.failure->excerpt;
  }
  nlohmann::json& fixes = out["fixes"];
  fixes = nlohmann::json::parse(j.fixes_json, nullptr, false);
  if (fixes.is_discarded()) fixes = nlohmann::json::array();
  out["verify"] = stored_or_null(j.verify_json);
  out["out_path"] = or_null(j.out_path);
  out["builder"] = or_null(j.builder);
  out["resources"] = stored_or_null(j.resources_json);
  out["commit"] = or_null(j.commit);
  out["rev"] = or_null(j.rev);
  out["changes"] = stored_or_null(j.changes_json);
  out["waiting"] = or_null(j.waiting);
  out["log_path"] = j.log_path;
  return out;
}

}  // namespace ptbuild
