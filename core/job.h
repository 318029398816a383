// Jobs as both sides see them (docs/jobs.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild {

// Stored in SQLite by name; the names are part of the contract, so never rename one.
enum class JobState { queued, running, succeeded, failed, cancelled };
// bisect: a build of the variant at one commit of its repo, for `ptbuild bisect` (docs/bisect.md).
enum class JobKind { build, publish, bisect };

std::string_view to_string(JobState s);
std::string_view to_string(JobKind k);
std::optional<JobState> parse_job_state(std::string_view s);
std::optional<JobKind> parse_job_kind(std::string_view s);
inline bool is_finished(JobState s) {
  return s == JobState::succeeded || s == JobState::failed || s == JobState::cancelled;
}

struct Failure {
  std::string failure_class;  // "hash_mismatch", "cuda_not_found", ... (docs/failures.md)
  std::string message;
  std::string hint;
  std::string excerpt;
};

struct Job {
  int64_t id = 0;
  std::string variant;
  std::string repo;
  JobKind kind = JobKind::build;
  JobState state = JobState::queued;
  int priority = 0;
  std::string reason;
  int attempt = 0;
  std::string created_at;
  std::optional<std::string> started_at;
  std::optional<std::string> finished_at;
  std::optional<int> exit_code;
  std::optional<int64_t> progress_done;
  std::optional<int64_t> progress_total;
  std::optional<Failure> failure;
  std::string fixes_json = "[]";           // stored as JSON text: list of repairs (hash repair issue)
  std::optional<std::string> verify_json;  // {ok, facts, problems}
  std::optional<std::string> out_path;
  std::string log_path;
  bool force = false;  // queued with --force (publish: skip the preconditions on the build)
  std::optional<std::string> recipe_sha;      // sha256 of the recipe file when the build started
  std::optional<std::string> fingerprint;     // see daemon/nightly/fingerprint.h
  std::optional<std::string> drv_path;        // the derivation that produced out_path
  std::optional<std::string> builder;         // the builder of its last attempt (docs/fleet.md)
  std::optional<std::string> resources_json;  // what its last build used (docs/resources.md)
  std::optional<std::string> commit;          // the build repo's commit when it started
  std::optional<std::string> rev;             // a bisect job: the commit it builds, from a worktree
  std::optional<std::string> changes_json;    // a failure: what changed since the last good build
  // Not stored: why a queued job has not started (docs/fleet.md), filled in by the daemon.
  std::optional<std::string> waiting;
};

// The job object of docs/jobs.md.
nlohmann::json job_to_json(const Job& job);

}  // namespace ptbuild
