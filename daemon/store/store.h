// The store: the only code that talks SQL. It keeps the matrix and every job with its events.
//
// Writes that belong together take the caller's Transaction and the caller commits; a job's state
// change and its event row are always written by transition() inside one transaction.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bisect.h"
#include "core/job.h"
#include "core/gc_policy.h"
#include "core/resources.h"
#include "core/metrics.h"
#include "core/target.h"
#include "local/recipes.h"
#include "daemon/store/sqlite.h"

namespace ptbuild {

// The database cannot be used; what() says what and what to do, in one line.
struct StoreError : std::runtime_error {
  enum class Kind { unusable, transient };  // transient: a lock or a full disk may pass by itself
  StoreError(const std::string& what, Kind k = Kind::unusable) : std::runtime_error(what), kind(k) {}
  Kind kind;
};

struct RepoScan {
  std::string name;
  std::string path;
  std::string recipes_dir;
  std::vector<Recipe> recipes;
};

struct VariantRecord {
  std::string name;
  std::string repo;
  std::string repo_path;
  std::string recipe;  // relative to the repo
  VariantAxes axes;
};

struct JobEvent {
  int64_t job_id;
  std::string at;
  std::optional<std::string> from_state;
  std::string to_state;
  std::string detail;
};

// The fields a transition may set alongside the new state; unset ones keep their value.
struct JobChange {
  std::optional<std::string> started_at;
  std::optional<std::string> finished_at;
  std::optional<int> exit_code;
  std::optional<int> attempt;
  std::optional<Failure> failure;
  std::optional<std::string> out_path;
  std::optional<std::string> verify_json;
  std::optional<std::string> recipe_sha;
  std::optional<std::string> fingerprint;
  std::optional<std::string> drv_path;
  std::optional<std::string> builder;         // where the attempt runs (docs/fleet.md)
  std::optional<std::string> resources_json;  // what the build used (kept when requeued)
  std::optional<std::string> changes_json;    // a failure's changes since the last good build
  bool clear_outcome = false;                 // requeue: forget finished_at, exit_code, failure, progress
};

struct NewJob {
  std::string variant;
  JobKind kind = JobKind::build;
  int priority = 0;
  std::string reason;
  bool force = false;
  std::optional<std::string> rev;  // a bisect job's commit
};

// A bisection of a variant's history (docs/bisect.md).
struct BisectRecord {
  int64_t id = 0;
  std::string variant;
  std::string good, bad;              // commits
  std::string good_drv;               // the variant's derivation at `good` ("" where it did not evaluate)
  std::string state;                  // running, found, ambiguous, failed, cancelled
  std::vector<BisectCommit> commits;  // after `good`, oldest first; the last is `bad`
  std::optional<std::string> first_bad;
  std::string message;
  std::optional<std::string> changes_json;  // of the first bad commit against the last good one
  std::string created_at;
  std::optional<std::string> finished_at;
};

class Store {
 public:
  // Opens (creating if needed) the database, checks that it is whole and writable, switches it to
  // WAL and applies the migrations. Throws StoreError when it is from a newer ptbuild, damaged,
  // read-only, locked, on a full disk or cannot be opened.
  Store(const std::string& db_path, std::string logs_dir);
  ~Store();

  // Whether the database file is still the one opened: an operator's `rm` or a restore under a
  // running daemon. A deleted file is written back from the open connection (nothing is lost);
  // a replaced one is reported, for the daemon to stop: two histories cannot be merged.
  enum class FileCheck { same, restored, replaced };
  FileCheck check_file();

  static int latest_schema_version();
  int schema_version();

  sql::Transaction begin() { return sql::Transaction(*db_); }

  // Records the scanned recipes: new variants appear, vanished ones are marked absent (their
  // history stays). Returns warnings (e.g. one package name in two repos).
  std::vector<std::string> sync_catalog(const std::vector<RepoScan>& repos);
  std::vector<VariantRecord> variants();  // present ones, by name
  std::optional<VariantRecord> variant(const std::string& name);
  std::vector<CatalogEntry> catalog();

  // Jobs.
  Job insert_job(sql::Transaction& tx, const NewJob& job, const std::string& now);
  // The job of this kind that is queued or running for the variant, if any (the newest).
  std::optional<Job> active_job(const std::string& variant, JobKind kind, JobState state);
  // Changes the state from `from` to `to` with its event row. Returns false (and changes nothing)
  // when the job is not in state `from`.
  bool transition(sql::Transaction& tx, int64_t job_id, JobState from, JobState to, const JobChange& change,
                  const std::string& now, const std::string& detail);
  void set_progress(int64_t job_id, int64_t done, int64_t total);
  void set_drv_path(int64_t job_id, const std::string& drv_path);
  // What a build's recipe was when it started (read off the loop once the attempt began): its
  // sha, for publish, its fingerprint, for the nightly, and the repo's commit and the derivation,
  // for what changed since (docs/changes.md).
  struct RecipeFacts {
    std::string recipe_sha;
    std::string fingerprint;
    std::optional<std::string> commit;    // the build repo's HEAD; null where it is no git checkout
    std::optional<std::string> drv_path;  // null where it was not evaluated
  };
  void set_recipe_facts(int64_t job_id, const RecipeFacts& facts);
  // What changed since the variant's last good build, found when a failure was recorded (JSON of
  // core/changes.h); a requeue forgets it.
  void set_changes(int64_t job_id, const std::string& changes_json);
  // A queued job's back-off after a network failure (retry count and when it may start again),
  // kept so that a restart does not start it early.
  void set_backoff(int64_t job_id, int network_retries, const std::string& not_before);
  struct Backoff {
    int64_t job_id;
    int network_retries;
    std::string not_before;
  };
  std::vector<Backoff> backoffs();  // of queued jobs

  // Builds that ended on each builder (its last attempt ran there), for `builders`' DONE after a
  // restart.
  std::map<std::string, int> builds_done_by_builder();
  // Operator flags that survive a restart ("paused", "draining").
  void set_flag(const std::string& name, bool value);
  bool flag(const std::string& name);
  // The process group of a job's running build (and its leader's identity), for crash recovery.
  void set_build_process(int64_t job_id, int pgid, const std::string& identity);
  struct BuildProcessRecord {
    int64_t job_id;
    int pgid;
    std::string identity;
  };
  std::vector<BuildProcessRecord> running_build_processes();
  // Median duration in seconds of each variant's recent successful builds (the last 5), and of
  // each family's variants (for variants never built).
  struct Durations {
    std::map<std::string, double> by_variant;
    std::map<std::string, double> by_family;
    double expected(const std::string& variant,
                    const std::optional<std::string>& family) const;  // -1: unknown
  };
  Durations typical_durations();

  // What each variant's recent builds used (docs/resources.md): its last measured builds that
  // succeeded or were OOM-killed, newest first, and its family for a variant never measured.
  struct ResourceHistory {
    std::map<std::string, std::vector<PastUse>> by_variant;
    std::map<std::string, std::string> family_of;  // variant -> resource_family()
  };
  ResourceHistory resource_history();

  // Every successful build with an output, newest first, and what the GC policy must know of it
  // (core/gc_policy.h).
  std::vector<GcBuild> gc_candidates();

  // Jobs by state, failures by class, finished build durations by family, hash repairs: the
  // database's part of GET /metrics.
  void fill_metrics(MetricsSnapshot& m);

  // The audit trail of hash repairs (docs/hash-repair.md).
  struct HashFixRecord {
    int64_t id = 0;
    int64_t job_id = 0;
    std::string variant;
    std::string drv;
    std::string file;
    int line = 0;
    std::string old_hash;
    std::string new_hash;
    std::string at;
  };
  void add_hash_fix(sql::Transaction& tx, const HashFixRecord& fix);
  std::vector<HashFixRecord> hash_fixes();

  std::optional<Job> job(int64_t id);
  // The variant's newest build or publish job (its own history: bisect jobs build other commits).
  std::optional<Job> latest_job(const std::string& variant);
  std::optional<Job> latest_job(const std::string& variant, JobKind kind);
  // The newest build that succeeded (and passed verification, when it was verified), older than
  // job `before` when it is not 0.
  std::optional<Job> latest_good_build(const std::string& variant, int64_t before = 0);
  std::vector<Job> jobs_in_state(JobState state);
  // How the variant's last build before job `before` ended (succeeded or failed; cancelled ones
  // are passed over), for "newly failing" and "fixed"; nullopt when there was none.
  std::optional<JobState> previous_outcome(const std::string& variant, int64_t before);
  // Queued and running jobs whose reason begins with `prefix` ("nightly:").
  int64_t count_active(const std::string& reason_prefix);
  // Newest first; state filter optional.
  // The newest `limit` jobs (in `state`), only those older than job `before` when it is not 0.
  std::vector<Job> recent_jobs(std::optional<JobState> state, int limit, int64_t before = 0,
                               const std::string& variant = "");
  // The newest job of each variant, any state.
  std::vector<Job> latest_jobs();
  // The latest finished job of each named variant (all variants when `variants` is empty).
  std::vector<Job> latest_finished(const std::vector<std::string>& variants);
  // What `status` shows: the running jobs, the queued ones, then each variant's latest finished
  // one. Watchers ask for it several times a second; it is read again only after a write, but
  // for set_progress (`status` has a running build's progress from the scheduler).
  std::shared_ptr<const std::vector<Job>> status_jobs();
  std::vector<JobEvent> events(int64_t job_id);

  // Bisections: a new one (its id), one's progress, and the running ones then the newest others.
  int64_t insert_bisect(const BisectRecord& b);
  void update_bisect(const BisectRecord& b);
  std::vector<BisectRecord> bisects(int limit);

 private:
  void migrate();
  std::string quick_check();  // "ok", or the first problem SQLite finds in the file
  std::vector<VariantRecord> query_variants(const std::string& name);
  std::vector<Job> query_jobs(const std::string& where_and_order,
                              const std::function<void(sql::Statement&)>& bind = {});

  void open_db();
  // Read outside a transaction: what one reads inside may still be rolled back.
  bool may_cache() const;

  std::string db_path_;
  std::unique_ptr<sql::Db> db_;
  std::string logs_dir_;
  uint64_t file_dev_ = 0, file_ino_ = 0;  // the identity of the file opened
  // What `status` asks for several times a second and what changes only when a job changes
  // state or the catalog is scanned again: kept until then.
  std::optional<std::vector<VariantRecord>> variants_cache_;
  std::optional<Durations> durations_cache_;
  std::optional<ResourceHistory> history_cache_;
  std::shared_ptr<const std::vector<Job>> status_cache_;
  int64_t status_cache_version_ = -1;  // the rows changed before it was read, but progress_changes_
  int64_t progress_changes_ = 0;       // rows changed by set_progress
};

}  // namespace ptbuild
