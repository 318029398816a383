// The store's reading of jobs: one query shape (the job with its variant, repo and hash repairs)
// for every way the daemon asks for jobs. The rest of the store is in store.cpp.
#include <set>

#include <sqlite3.h>

#include "daemon/store/store.h"

namespace ptbuild {
namespace {

constexpr const char* kJobColumns =
    "j.id, v.name, r.name, j.kind, j.state, j.priority, j.reason, j.attempt, j.created_at, "
    "j.started_at, j.finished_at, j.exit_code, j.progress_done, j.progress_total, "
    "j.failure_class, j.failure_message, j.failure_hint, j.failure_excerpt, j.verify, "
    "j.out_path, j.force, "
    "(SELECT json_group_array(json_object('id', f.id, 'drv', f.drv, 'file', f.file, 'line', f.line, "
    "'old', f.old_hash, 'new', f.new_hash, 'at', f.at)) FROM hash_fixes f WHERE f.job_id = j.id), "
    "j.recipe_sha, j.fingerprint, j.drv_path, j.log_zstd, j.builder, j.resources, j.commit_sha, j.changes, j.rev";
constexpr const char* kJobFrom =
    " FROM jobs j JOIN variants v ON v.id = j.variant_id JOIN repos r ON r.id = v.repo_id ";

std::optional<int> to_int(std::optional<int64_t> v) {
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace

std::vector<Job> Store::query_jobs(const std::string& where_and_order,
                                   const std::function<void(sql::Statement&)>& bind) {
  auto st = db_->prepare(std::string("SELECT ") + kJobColumns + kJobFrom + where_and_order);
  if (bind) bind(st);
  std::vector<Job> out;
  while (st.step()) {
    Job j;
    j.id = st.int64(0);
    j.variant = st.text(1);
    j.repo = st.text(2);
    j.kind = parse_job_kind(st.text(3)).value_or(JobKind::build);
    j.state = parse_job_state(st.text(4)).value_or(JobState::failed);
    j.priority = st.integer(5);
    j.reason = st.text(6);
    j.attempt = st.integer(7);
    j.created_at = st.text(8);
    j.started_at = st.optional_text(9);
    j.finished_at = st.optional_text(10);
    j.exit_code = to_int(st.optional_int64(11));
    j.progress_done = st.optional_int64(12);
    j.progress_total = st.optional_int64(13);
    if (!st.is_null(14)) j.failure = Failure{st.text(14), st.text(15), st.text(16), st.text(17)};
    j.verify_json = st.optional_text(18);
    j.out_path = st.optional_text(19);
    j.force = st.int64(20) != 0;
    j.fixes_json = st.text(21);
    j.recipe_sha = st.optional_text(22);
    j.fingerprint = st.optional_text(23);
    j.drv_path = st.optional_text(24);
    j.log_path = logs_dir_ + "/" + std::to_string(j.id) + (st.int64(25) ? ".log.zst" : ".log");
    j.builder = st.optional_text(26);
    j.resources_json = st.optional_text(27);
    j.commit = st.optional_text(28);
    j.changes_json = st.optional_text(29);
    j.rev = st.optional_text(30);
    out.push_back(std::move(j));
  }
  return out;
}

std::optional<Job> Store::job(int64_t id) {
  auto jobs = query_jobs("WHERE j.id = ?1", [&](sql::Statement& st) { st.bind(1, id); });
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::optional<Job> Store::latest_job(const std::string& variant) {
  auto jobs = query_jobs("WHERE v.name = ?1 AND j.kind != 'bisect' ORDER BY j.id DESC LIMIT 1",
                         [&](sql::Statement& st) { st.bind(1, variant); });
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::optional<Job> Store::latest_job(const std::string& variant, JobKind kind) {
  auto jobs = query_jobs("WHERE v.name = ?1 AND j.kind = ?2 ORDER BY j.id DESC LIMIT 1",
                         [&](sql::Statement& st) { st.bind(1, variant).bind(2, to_string(kind)); });
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::optional<Job> Store::latest_good_build(const std::string& variant, int64_t before) {
  auto jobs = query_jobs(
      "WHERE v.name = ?1 AND j.kind = 'build' AND j.state = 'succeeded' "
      "AND (j.verify IS NULL OR json_extract(j.verify, '$.ok') = 1) AND (?2 = 0 OR j.id < ?2) "
      "ORDER BY j.id DESC LIMIT 1",
      [&](sql::Statement& st) { st.bind(1, variant).bind(2, before); });
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::optional<JobState> Store::previous_outcome(const std::string& variant, int64_t before) {
  auto st = db_->prepare(
      "SELECT j.state FROM jobs j JOIN variants v ON v.id = j.variant_id WHERE v.name = ?1 AND j.kind = 'build' "
      "AND j.id < ?2 AND j.state IN ('succeeded', 'failed') ORDER BY j.id DESC LIMIT 1");
  st.bind(1, variant).bind(2, before);
  if (!st.step()) return std::nullopt;
  return parse_job_state(st.text(0));
}

int64_t Store::count_active(const std::string& reason_prefix) {
  auto st = db_->prepare(
      "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') AND substr(reason, 1, length(?1)) = ?1");
  st.bind(1, reason_prefix);
  st.step();
  return st.int64(0);
}

std::vector<Job> Store::jobs_in_state(JobState state) {
  return query_jobs("WHERE j.state = ?1 ORDER BY j.id",
                    [&](sql::Statement& st) { st.bind(1, to_string(state)); });
}

std::vector<Job> Store::recent_jobs(std::optional<JobState> state, int limit, int64_t before,
                                    const std::string& variant) {
  std::string where = state ? "WHERE j.state = ?1" : "WHERE ?1 IS NULL";
  if (!variant.empty()) where += " AND v.name = ?4";
  return query_jobs(where + " AND j.id < ?3 ORDER BY j.id DESC LIMIT ?2", [&](sql::Statement& st) {
    if (state)
      st.bind(1, to_string(*state));
    else
      st.bind(1, std::nullopt);
    st.bind(2, limit);
    st.bind(3, before > 0 ? before : INT64_MAX);
    if (!variant.empty()) st.bind(4, variant);
  });
}

std::vector<Job> Store::latest_jobs() {
  return query_jobs(
      "WHERE j.id IN (SELECT (SELECT max(id) FROM jobs WHERE variant_id = v2.id) FROM variants v2) ORDER BY v.name");
}

std::vector<Job> Store::latest_finished(const std::vector<std::string>& variants) {
  // The newest finished job per variant: the max id among its finished jobs.
  std::vector<Job> all = query_jobs(
      "WHERE j.id IN (SELECT (SELECT id FROM jobs WHERE variant_id = v2.id AND state IN ('succeeded', 'failed', "
      "'cancelled') ORDER BY id DESC LIMIT 1) FROM variants v2) ORDER BY v.name");
  if (variants.empty()) return all;
  std::set<std::string> wanted(variants.begin(), variants.end());
  std::vector<Job> out;
  for (Job& j : all)
    if (wanted.count(j.variant)) out.push_back(std::move(j));
  return out;
}

std::shared_ptr<const std::vector<Job>> Store::status_jobs() {
  // Every write of this connection, the store's only one, changes rows (a write that changes
  // none changes nothing read here): the count of changed rows is the version of what is read,
  // but for the progress of running builds (set_progress), which `status` takes from the
  // scheduler: rereading every job each second for it was a third of a `status` under load.
  int64_t version = sqlite3_total_changes64(db_->handle()) - progress_changes_;
  if (status_cache_ && version == status_cache_version_) return status_cache_;
  std::vector<Job> jobs;
  for (JobState s : {JobState::running, JobState::queued})
    for (Job& j : jobs_in_state(s)) jobs.push_back(std::move(j));
  for (Job& j : latest_finished({})) jobs.push_back(std::move(j));
  auto snapshot = std::make_shared<const std::vector<Job>>(std::move(jobs));
  if (may_cache()) {
    status_cache_ = snapshot;
    status_cache_version_ = version;
  }
  return snapshot;
}

std::vector<JobEvent> Store::events(int64_t job_id) {
  auto st = db_->prepare(
      "SELECT job_id, at, from_state, to_state, detail FROM job_events WHERE job_id = ?1 "
      "ORDER BY id");
  st.bind(1, job_id);
  std::vector<JobEvent> out;
  while (st.step()) out.push_back({st.int64(0), st.text(1), st.optional_text(2), st.text(3), st.text(4)});
  return out;
}

}  // namespace ptbuild
