#include "daemon/store/store.h"
#include "core/protocol.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/stat.h>

namespace ptbuild {
namespace {

struct Migration {
  int version;
  const char* sql;
};
// Generated from schema/NNN_*.sql at build time.
constexpr Migration kMigrations[] = {
#include "migrations.inc"
};

}  // namespace

Store::Store(const std::string& db_path, std::string logs_dir)
    : db_path_(db_path), logs_dir_(std::move(logs_dir)) {
  try {
    open_db();
    if (db_->read_only()) throw sql::Error("attempt to write a readonly database", SQLITE_READONLY);
    // A damaged file must not be written further (SQLite would keep going around the damage).
    if (std::string verdict = quick_check(); verdict != "ok")
      throw sql::Error("database disk image is malformed (" + verdict + ")", SQLITE_CORRUPT);
    migrate();
  } catch (const sql::Error& e) {
    throw StoreError(db_path + ": " + e.what() + " — " + sql::advice(e.code, db_path),
                     sql::is_transient(e.code) ? StoreError::Kind::transient : StoreError::Kind::unusable);
  }
}

Store::~Store() = default;

void Store::open_db() {
  db_ = std::make_unique<sql::Db>(db_path_);
  // What was read of another file, or of this one by the connection before, is not this one.
  variants_cache_.reset();
  durations_cache_.reset();
  history_cache_.reset();
  status_cache_.reset();
  progress_changes_ = 0;  // the new connection counts its own changes from 0
  db_->exec("PRAGMA journal_mode = WAL");
  db_->exec("PRAGMA synchronous = NORMAL");
  db_->exec("PRAGMA foreign_keys = ON");
  struct stat st {};
  if (::stat(db_path_.c_str(), &st) == 0) {
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
}

Store::FileCheck Store::check_file() {
  struct stat st {};
  if (::stat(db_path_.c_str(), &st) == 0)
    return st.st_dev == file_dev_ && st.st_ino == file_ino_ ? FileCheck::same : FileCheck::replaced;
  if (errno != ENOENT) return FileCheck::same;  // cannot look (EACCES, EIO): nothing to act on
  // Deleted: the open connection still reads everything; write it back where it was.
  std::string quoted;
  for (char c : db_path_) quoted += c == '\'' ? "''" : std::string(1, c);
  db_->exec("VACUUM INTO '" + quoted + "'");
  db_.reset();  // closing checkpoints the old WAL into the deleted file and removes it
  open_db();
  return FileCheck::restored;
}

std::string Store::quick_check() {
  auto check = db_->prepare("PRAGMA quick_check(1)");
  return check.step() ? check.text(0) : "no answer";
}

int Store::latest_schema_version() {
  return std::size(kMigrations) ? kMigrations[std::size(kMigrations) - 1].version : 0;
}

int Store::schema_version() {
  auto st = db_->prepare("PRAGMA user_version");
  st.step();
  return st.integer(0);
}

void Store::migrate() {
  int current = schema_version();
  if (current > latest_schema_version())
    throw StoreError("the database has schema version " + std::to_string(current) +
                     ", but this ptbuildd knows only up to version " +
                     std::to_string(latest_schema_version()) +
                     "; it was written by a newer ptbuild — upgrade ptbuild or point state_dir "
                     "elsewhere");
  // A migration may rebuild a table others refer to (SQLite's procedure for what ALTER TABLE
  // cannot do): foreign keys are off meanwhile, and checked before each migration commits.
  db_->exec("PRAGMA foreign_keys = OFF");
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    sql::Transaction tx(*db_);
    try {
      db_->exec(m.sql);
      if (auto check = db_->prepare("PRAGMA foreign_key_check"); check.step())
        throw StoreError("migration " + std::to_string(m.version) + " broke a reference of table " +
                         check.text(0));
    } catch (const sql::Error& e) {
      throw StoreError("migration " + std::to_string(m.version) + " failed: " + e.what());
    }
    db_->exec("PRAGMA user_version = " + std::to_string(m.version));
    tx.commit();
  }
  db_->exec("PRAGMA foreign_keys = ON");
}

std::vector<std::string> Store::sync_catalog(const std::vector<RepoScan>& repos) {
  variants_cache_.reset();
  durations_cache_.reset();
  history_cache_.reset();  // families may have changed
  std::vector<std::string> warnings;
  sql::Transaction tx(*db_);
  auto upsert_repo = db_->prepare(
      "INSERT INTO repos(name, path, recipes) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(name) DO UPDATE SET path = excluded.path, recipes = excluded.recipes "
      "RETURNING id");
  auto upsert_variant = db_->prepare(
      "INSERT INTO variants(repo_id, name, recipe, family, python, cuda, gpu_arch, isa, extra, "
      "platform, present) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1) "
      "ON CONFLICT(name) DO UPDATE SET repo_id = excluded.repo_id, recipe = excluded.recipe, "
      "family = excluded.family, python = excluded.python, cuda = excluded.cuda, "
      "gpu_arch = excluded.gpu_arch, isa = excluded.isa, extra = excluded.extra, "
      "platform = excluded.platform, present = 1");
  db_->exec("UPDATE variants SET present = 0");
  std::map<std::string, std::string> owner;  // package -> repo that claimed it first
  for (const RepoScan& repo : repos) {
    upsert_repo.reset();
    upsert_repo.bind(1, repo.name).bind(2, repo.path).bind(3, repo.recipes_dir);
    upsert_repo.step();
    int64_t repo_id = upsert_repo.int64(0);
    upsert_repo.run();
    for (const Recipe& r : repo.recipes) {
      auto [it, fresh] = owner.emplace(r.package, repo.name);
      if (!fresh) {
        warnings.push_back("package '" + r.package + "' is in repos '" + it->second + "' and '" + repo.name +
                           "'; using the one in '" + it->second + "'");
        continue;
      }
      VariantAxes a = parse_variant_name(r.package);
      upsert_variant.reset();
      upsert_variant.bind(1, repo_id)
          .bind(2, r.package)
          .bind(3, r.file)
          .bind(4, a.family)
          .bind(5, a.python)
          .bind(6, a.cuda)
          .bind(7, a.gpu_arch)
          .bind(8, a.isa)
          .bind(9, a.extra)
          .bind(10, a.platform);
      upsert_variant.run();
    }
  }
  tx.commit();
  return warnings;
}

// Present variants by name; `name` empty: all of them.
std::vector<VariantRecord> Store::query_variants(const std::string& name) {
  std::vector<VariantRecord> out;
  auto st = db_->prepare(
      "SELECT v.name, r.name, r.path, v.recipe, v.family, v.python, v.cuda, v.gpu_arch, v.isa, "
      "v.extra, v.platform FROM variants v JOIN repos r ON r.id = v.repo_id "
      "WHERE v.present = 1 AND (?1 = '' OR v.name = ?1) ORDER BY v.name");
  st.bind(1, name);
  while (st.step()) {
    VariantRecord v{st.text(0), st.text(1), st.text(2), st.text(3), {}};
    v.axes.family = st.optional_text(4);
    v.axes.python = st.optional_text(5);
    v.axes.cuda = st.optional_text(6);
    v.axes.gpu_arch = st.optional_text(7);
    v.axes.isa = st.optional_text(8);
    v.axes.extra = st.optional_text(9);
    v.axes.platform = st.optional_text(10);
    out.push_back(std::move(v));
  }
  return out;
}

bool Store::may_cache() const {
  return sqlite3_get_autocommit(db_->handle()) != 0;
}

std::vector<VariantRecord> Store::variants() {
  if (variants_cache_) return *variants_cache_;
  std::vector<VariantRecord> all = query_variants("");
  if (may_cache()) variants_cache_ = all;
  return all;
}

std::optional<VariantRecord> Store::variant(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<VariantRecord> found = query_variants(name);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::vector<CatalogEntry> Store::catalog() {
  std::vector<CatalogEntry> out;
  for (VariantRecord& v : variants()) out.push_back({v.name, v.repo, v.axes});
  return out;
}

Job Store::insert_job(sql::Transaction&, const NewJob& nj, const std::string& now) {
  auto st = db_->prepare(
      "INSERT INTO jobs(variant_id, kind, state, priority, reason, force, created_at, log_zstd, rev) "
      "SELECT id, ?2, 'queued', ?3, ?4, ?5, ?6, 1, ?7 FROM variants WHERE name = ?1");
  st.bind(1, nj.variant)
      .bind(2, to_string(nj.kind))
      .bind(3, nj.priority)
      .bind(4, nj.reason)
      .bind(5, nj.force ? 1 : 0)
      .bind(6, now)
      .bind(7, nj.rev);
  st.run();
  if (db_->changes() != 1) throw StoreError("no variant named '" + nj.variant + "'");
  int64_t id = db_->last_insert_rowid();
  auto ev = db_->prepare(
      "INSERT INTO job_events(job_id, at, from_state, to_state, detail) "
      "VALUES(?1, ?2, NULL, 'queued', ?3)");
  ev.bind(1, id).bind(2, now).bind(3, nj.reason);
  ev.run();
  return *job(id);
}

std::optional<Job> Store::active_job(const std::string& variant, JobKind kind, JobState state) {
  auto jobs = query_jobs(
      "WHERE v.name = ?1 AND j.kind = ?2 AND j.state = ?3 ORDER BY j.id DESC LIMIT 1",
      [&](sql::Statement& st) { st.bind(1, variant).bind(2, to_string(kind)).bind(3, to_string(state)); });
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

bool Store::transition(sql::Transaction&, int64_t job_id, JobState from, JobState to, const JobChange& c,
                       const std::string& now, const std::string& detail) {
  durations_cache_.reset();
  history_cache_.reset();
  // A NULL parameter keeps the column; ?14 (clear_outcome) first forgets the last outcome.
  static constexpr const char* kUpdate = R"(
    UPDATE jobs SET
      state = ?3,
      started_at = COALESCE(?4, started_at),
      finished_at = COALESCE(?5, CASE WHEN ?14 THEN NULL ELSE finished_at END),
      exit_code = COALESCE(?6, CASE WHEN ?14 THEN NULL ELSE exit_code END),
      attempt = COALESCE(?7, attempt),
      failure_class = CASE WHEN ?8 IS NOT NULL THEN ?8 WHEN ?14 THEN NULL ELSE failure_class END,
      failure_message = CASE WHEN ?8 IS NOT NULL THEN ?9 WHEN ?14 THEN NULL ELSE failure_message END,
      failure_hint = CASE WHEN ?8 IS NOT NULL THEN ?10 WHEN ?14 THEN NULL ELSE failure_hint END,
      failure_excerpt = CASE WHEN ?8 IS NOT NULL THEN ?11 WHEN ?14 THEN NULL ELSE failure_excerpt END,
      out_path = COALESCE(?12, out_path),
      verify = COALESCE(?13, CASE WHEN ?14 THEN NULL ELSE verify END),
      progress_done = CASE WHEN ?14 THEN NULL ELSE progress_done END,
      progress_total = CASE WHEN ?14 THEN NULL ELSE progress_total END,
      recipe_sha = COALESCE(?15, recipe_sha),
      fingerprint = COALESCE(?16, fingerprint),
      drv_path = COALESCE(?17, drv_path),
      builder = COALESCE(?18, builder),
      resources = COALESCE(?19, resources),
      changes = COALESCE(?20, CASE WHEN ?14 THEN NULL ELSE changes END)
    WHERE id = ?1 AND state = ?2)";
  auto st = db_->prepare(kUpdate);
  st.bind(1, job_id).bind(2, to_string(from)).bind(3, to_string(to));
  st.bind(4, c.started_at).bind(5, c.finished_at).bind(6, c.exit_code).bind(7, c.attempt);
  if (c.failure)
    st.bind(8, c.failure->failure_class)
        .bind(9, c.failure->message)
        .bind(10, c.failure->hint)
        .bind(11, c.failure->excerpt);
  st.bind(12, c.out_path).bind(13, c.verify_json).bind(14, c.clear_outcome ? 1 : 0).bind(15, c.recipe_sha);
  st.bind(16, c.fingerprint).bind(17, c.drv_path).bind(18, c.builder).bind(19, c.resources_json);
  st.bind(20, c.changes_json);
  st.run();
  if (db_->changes() != 1) return false;
  auto ev = db_->prepare(
      "INSERT INTO job_events(job_id, at, from_state, to_state, detail) VALUES(?1, ?2, ?3, ?4, ?5)");
  ev.bind(1, job_id).bind(2, now).bind(3, to_string(from)).bind(4, to_string(to)).bind(5, detail);
  ev.run();
  return true;
}

void Store::set_progress(int64_t job_id, int64_t done, int64_t total) {
  auto st = db_->prepare("UPDATE jobs SET progress_done = ?2, progress_total = ?3 WHERE id = ?1");
  st.bind(1, job_id).bind(2, done).bind(3, total);
  st.run();
  // Written every second while builds print; `status` shows a running build's progress from
  // the scheduler: not a change of what status_jobs() reads for it.
  progress_changes_ += sqlite3_changes64(db_->handle());
}

void Store::set_recipe_facts(int64_t job_id, const RecipeFacts& facts) {
  auto st = db_->prepare(
      "UPDATE jobs SET recipe_sha = ?2, fingerprint = ?3, commit_sha = ?4, drv_path = COALESCE(?5, drv_path) "
      "WHERE id = ?1");
  st.bind(1, job_id).bind(2, facts.recipe_sha).bind(3, facts.fingerprint).bind(4, facts.commit);
  st.bind(5, facts.drv_path);
  st.run();
}

void Store::set_changes(int64_t job_id, const std::string& changes_json) {
  auto st = db_->prepare("UPDATE jobs SET changes = ?2 WHERE id = ?1");
  st.bind(1, job_id).bind(2, changes_json);
  st.run();
}

void Store::set_drv_path(int64_t job_id, const std::string& drv_path) {
  auto st = db_->prepare("UPDATE jobs SET drv_path = ?2 WHERE id = ?1");
  st.bind(1, job_id).bind(2, drv_path);
  st.run();
}

void Store::set_backoff(int64_t job_id, int network_retries, const std::string& not_before) {
  auto st = db_->prepare("UPDATE jobs SET network_retries = ?2, not_before = ?3 WHERE id = ?1");
  st.bind(1, job_id).bind(2, network_retries).bind(3, not_before);
  st.run();
}

std::vector<Store::Backoff> Store::backoffs() {
  auto st = db_->prepare(
      "SELECT id, network_retries, COALESCE(not_before, '') FROM jobs "
      "WHERE state = 'queued' AND (not_before IS NOT NULL OR network_retries > 0)");
  std::vector<Backoff> out;
  while (st.step()) out.push_back({st.int64(0), st.integer(1), st.text(2)});
  return out;
}

void Store::set_flag(const std::string& name, bool value) {
  auto st = db_->prepare(
      "INSERT INTO daemon_flags(name, value) VALUES(?1, ?2) "
      "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  st.bind(1, name).bind(2, value ? 1 : 0);
  st.run();
}

std::map<std::string, int> Store::builds_done_by_builder() {
  auto st = db_->prepare(
      "SELECT builder, count(*) FROM jobs WHERE builder IS NOT NULL AND state IN ('succeeded', 'failed', 'cancelled') "
      "GROUP BY builder");
  std::map<std::string, int> out;
  while (st.step()) out[st.text(0)] = st.integer(1);
  return out;
}

bool Store::flag(const std::string& name) {
  auto st = db_->prepare("SELECT value FROM daemon_flags WHERE name = ?1");
  st.bind(1, name);
  return st.step() && st.int64(0) != 0;
}

void Store::set_build_process(int64_t job_id, int pgid, const std::string& identity) {
  auto st = db_->prepare("UPDATE jobs SET pgid = ?2, process_identity = ?3 WHERE id = ?1");
  st.bind(1, job_id).bind(2, pgid).bind(3, identity);
  st.run();
}

std::vector<Store::BuildProcessRecord> Store::running_build_processes() {
  auto st = db_->prepare(
      "SELECT id, pgid, process_identity FROM jobs WHERE state = 'running' AND pgid IS NOT NULL");
  std::vector<BuildProcessRecord> out;
  while (st.step()) out.push_back({st.int64(0), st.integer(1), st.text(2)});
  return out;
}

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
}  // namespace

double Store::Durations::expected(const std::string& variant,
                                  const std::optional<std::string>& family) const {
  if (auto it = by_variant.find(variant); it != by_variant.end()) return it->second;
  if (family)
    if (auto it = by_family.find(*family); it != by_family.end()) return it->second;
  return -1;
}

Store::Durations Store::typical_durations() {
  if (durations_cache_) return *durations_cache_;
  // Per variant, its newest successful builds through the (variant_id, id) index: the cost
  // follows the number of variants, not the length of the history.
  auto st = db_->prepare(R"(
    SELECT v.name, v.family, (julianday(j.finished_at) - julianday(j.started_at)) * 86400.0
    FROM variants v JOIN jobs j ON j.id IN (
      SELECT id FROM jobs WHERE variant_id = v.id AND kind = 'build' AND state = 'succeeded'
        AND started_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 5)
    ORDER BY v.name, j.id DESC)");
  std::map<std::string, std::vector<double>> recent;
  std::map<std::string, std::string> family_of;
  while (st.step()) {
    auto& list = recent[st.text(0)];
    if (!st.is_null(1)) family_of[st.text(0)] = st.text(1);
    if (list.size() < 5) list.push_back(st.real(2));
  }
  Durations out;
  std::map<std::string, std::vector<double>> families;
  for (auto& [name, list] : recent) {
    out.by_variant[name] = median(list);
    if (auto f = family_of.find(name); f != family_of.end())
      families[f->second].push_back(out.by_variant[name]);
  }
  for (auto& [family, list] : families) out.by_family[family] = median(list);
  if (may_cache()) durations_cache_ = out;
  return out;
}

Store::ResourceHistory Store::resource_history() {
  if (history_cache_) return *history_cache_;
  // expect_from takes the most of the last three; their fixed share is learned from more.
  constexpr int kKept = 8;
  auto st = db_->prepare(R"(
    SELECT v.name, v.family, v.cuda, j.resources
    FROM variants v JOIN jobs j ON j.id IN (
      SELECT id FROM jobs WHERE variant_id = v.id AND kind = 'build' AND resources IS NOT NULL
        AND (state = 'succeeded' OR json_extract(resources, '$.oom_killed'))
        AND json_extract(resources, '$.peak_memory') IS NOT NULL
      ORDER BY id DESC LIMIT 8)
    ORDER BY v.name, j.id DESC)");
  ResourceHistory out;
  while (st.step()) {
    std::string name = st.text(0);
    std::optional<ResourceUse> use = parse_resource_use(st.text(3));
    auto& list = out.by_variant[name];
    if (!use || !use->peak_memory || list.size() >= kKept) continue;
    VariantAxes axes;
    axes.family = st.optional_text(1);
    axes.cuda = st.optional_text(2);
    out.family_of[name] = resource_family(axes);
    list.push_back({*use->peak_memory, use->cores,
                    use->output_size.value_or(0) + use->build_dir_peak.value_or(0), use->oom_killed});
  }
  if (may_cache()) history_cache_ = out;
  return out;
}

std::vector<GcBuild> Store::gc_candidates() {
  auto st = db_->prepare(R"(
    SELECT j.id, v.name, j.out_path,
      j.verify IS NULL OR json_extract(j.verify, '$.ok') = 1,
      COALESCE(json_extract(j.verify, '$.ok') = 1, 0),
      EXISTS(SELECT 1 FROM jobs p WHERE p.kind = 'publish' AND p.state = 'succeeded' AND p.out_path = j.out_path),
      EXISTS(SELECT 1 FROM jobs p WHERE p.kind = 'publish' AND p.state = 'running' AND p.out_path = j.out_path),
      EXISTS(SELECT 1 FROM jobs p WHERE p.kind = 'publish' AND p.state = 'queued' AND p.variant_id = j.variant_id)
    FROM jobs j JOIN variants v ON v.id = j.variant_id
    WHERE j.kind = 'build' AND j.state = 'succeeded' AND j.out_path IS NOT NULL
    ORDER BY j.id DESC)");
  std::vector<GcBuild> out;
  std::set<std::string> newest_seen;
  while (st.step()) {
    GcBuild b{st.int64(0),      st.text(1),       st.text(2),      st.int64(3) != 0,
              st.int64(4) != 0, st.int64(5) != 0, st.int64(6) != 0};
    // A queued publish takes the variant's newest build when it starts.
    bool newest = newest_seen.insert(b.variant).second;
    if (newest && st.int64(7) != 0) b.pending_publish = true;
    out.push_back(std::move(b));
  }
  return out;
}

void Store::fill_metrics(MetricsSnapshot& m) {
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"})
    m.jobs_by_state[state] = 0;
  auto states = db_->prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (states.step()) m.jobs_by_state[states.text(0)] = states.integer(1);
  auto failures = db_->prepare(
      "SELECT COALESCE(failure_class, 'unknown'), COUNT(*) FROM jobs WHERE state = 'failed' GROUP BY 1");
  while (failures.step()) m.failures_by_class[failures.text(0)] = failures.integer(1);
  auto durations = db_->prepare(R"(
    SELECT COALESCE(v.family, 'unknown'), (julianday(j.finished_at) - julianday(j.started_at)) * 86400.0
    FROM jobs j JOIN variants v ON v.id = j.variant_id
    WHERE j.kind = 'build' AND j.state IN ('succeeded', 'failed')
      AND j.started_at IS NOT NULL AND j.finished_at IS NOT NULL)");
  while (durations.step())
    m.build_seconds_by_family[durations.text(0)].push_back(std::max(0.0, durations.real(1)));
  auto peaks = db_->prepare(R"(
    SELECT COALESCE(v.family, 'unknown'), json_extract(j.resources, '$.peak_memory')
    FROM jobs j JOIN variants v ON v.id = j.variant_id
    WHERE j.kind = 'build' AND j.state IN ('succeeded', 'failed')
      AND json_extract(j.resources, '$.peak_memory') IS NOT NULL)");
  while (peaks.step()) m.peak_memory_by_family[peaks.text(0)].push_back(peaks.real(1));
  auto fixes = db_->prepare("SELECT COUNT(*) FROM hash_fixes");
  m.hash_repairs = fixes.step() ? fixes.integer(0) : 0;
}

void Store::add_hash_fix(sql::Transaction&, const HashFixRecord& fix) {
  auto st = db_->prepare(
      "INSERT INTO hash_fixes(job_id, drv, file, line, old_hash, new_hash, at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  st.bind(1, fix.job_id)
      .bind(2, fix.drv)
      .bind(3, fix.file)
      .bind(4, fix.line)
      .bind(5, fix.old_hash)
      .bind(6, fix.new_hash)
      .bind(7, fix.at);
  st.run();
}

std::vector<Store::HashFixRecord> Store::hash_fixes() {
  auto st = db_->prepare(
      "SELECT f.id, f.job_id, v.name, f.drv, f.file, f.line, f.old_hash, f.new_hash, f.at FROM hash_fixes f "
      "JOIN jobs j ON j.id = f.job_id JOIN variants v ON v.id = j.variant_id ORDER BY f.id");
  std::vector<HashFixRecord> out;
  while (st.step())
    out.push_back({st.int64(0), st.int64(1), st.text(2), st.text(3), st.text(4), st.integer(5), st.text(6),
                   st.text(7), st.text(8)});
  return out;
}

namespace {
std::string commits_text(const std::vector<BisectCommit>& commits) {
  nlohmann::json j = nlohmann::json::array();
  for (const BisectCommit& c : commits) j.push_back(to_json(c));
  return protocol::json_text(j);
}
}  // namespace

int64_t Store::insert_bisect(const BisectRecord& b) {
  auto st = db_->prepare(
      "INSERT INTO bisects(variant_id, good, bad, state, commits, message, created_at, good_drv) "
      "SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM variants WHERE name = ?1");
  st.bind(1, b.variant).bind(2, b.good).bind(3, b.bad).bind(4, b.state).bind(5, commits_text(b.commits));
  st.bind(6, b.message).bind(7, b.created_at).bind(8, b.good_drv);
  st.run();
  if (db_->changes() != 1) throw StoreError("no variant named '" + b.variant + "'");
  return db_->last_insert_rowid();
}

void Store::update_bisect(const BisectRecord& b) {
  auto st = db_->prepare(
      "UPDATE bisects SET state = ?2, commits = ?3, first_bad = ?4, message = ?5, changes = ?6, finished_at = ?7 "
      "WHERE id = ?1");
  st.bind(1, b.id).bind(2, b.state).bind(3, commits_text(b.commits)).bind(4, b.first_bad).bind(5, b.message);
  st.bind(6, b.changes_json).bind(7, b.finished_at);
  st.run();
}

std::vector<BisectRecord> Store::bisects(int limit) {
  auto st = db_->prepare(
      "SELECT b.id, v.name, b.good, b.bad, b.state, b.commits, b.first_bad, b.message, b.changes, b.created_at, "
      "b.finished_at, b.good_drv FROM bisects b JOIN variants v ON v.id = b.variant_id "
      "ORDER BY b.state = 'running' DESC, b.id DESC LIMIT ?1");
  st.bind(1, limit);
  std::vector<BisectRecord> out;
  while (st.step()) {
    BisectRecord b{st.int64(0), st.text(1),          st.text(2), st.text(3),
                   st.text(11), st.text(4),          {},         st.optional_text(6),
                   st.text(7),  st.optional_text(8), st.text(9), st.optional_text(10)};
    nlohmann::json commits = nlohmann::json::parse(st.text(5), nullptr, false);
    if (commits.is_array())
      for (const nlohmann::json& c : commits) b.commits.push_back(bisect_commit_from_json(c));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace ptbuild
