-- ptbuild schema, version 11: bisections of the build repo's history (docs/bisect.md). A job may
-- be of kind 'bisect': a build of its variant at one commit (`rev`), from a git worktree of it.
-- SQLite cannot widen a CHECK in place: the jobs table is rebuilt as SQLite's documented
-- procedure does (the migration runner turns foreign keys off, and checks them before commit).

CREATE TABLE jobs_new (
  id               INTEGER PRIMARY KEY,
  variant_id       INTEGER NOT NULL REFERENCES variants(id),
  kind             TEXT NOT NULL CHECK (kind IN ('build', 'publish', 'bisect')),
  state            TEXT NOT NULL
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority         INTEGER NOT NULL DEFAULT 0,
  reason           TEXT NOT NULL DEFAULT '',
  force            INTEGER NOT NULL DEFAULT 0,
  attempt          INTEGER NOT NULL DEFAULT 0,
  created_at       TEXT NOT NULL,
  started_at       TEXT,
  finished_at      TEXT,
  exit_code        INTEGER,
  progress_done    INTEGER,
  progress_total   INTEGER,
  failure_class    TEXT,
  failure_message  TEXT,
  failure_hint     TEXT,
  failure_excerpt  TEXT,
  verify           TEXT,
  out_path         TEXT,
  pgid             INTEGER,
  process_identity TEXT,
  recipe_sha       TEXT,
  fingerprint      TEXT,
  drv_path         TEXT,
  log_zstd         INTEGER NOT NULL DEFAULT 0,
  not_before       TEXT,
  network_retries  INTEGER NOT NULL DEFAULT 0,
  builder          TEXT,
  resources        TEXT,
  commit_sha       TEXT,
  changes          TEXT,
  rev              TEXT                  -- a bisect job's commit
);
INSERT INTO jobs_new (id, variant_id, kind, state, priority, reason, force, attempt, created_at, started_at,
                      finished_at, exit_code, progress_done, progress_total, failure_class, failure_message,
                      failure_hint, failure_excerpt, verify, out_path, pgid, process_identity, recipe_sha,
                      fingerprint, drv_path, log_zstd, not_before, network_retries, builder, resources,
                      commit_sha, changes)
  SELECT id, variant_id, kind, state, priority, reason, force, attempt, created_at, started_at, finished_at,
         exit_code, progress_done, progress_total, failure_class, failure_message, failure_hint,
         failure_excerpt, verify, out_path, pgid, process_identity, recipe_sha, fingerprint, drv_path,
         log_zstd, not_before, network_retries, builder, resources, commit_sha, changes
  FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_by_state ON jobs(state);
CREATE INDEX jobs_by_variant ON jobs(variant_id, id);

CREATE TABLE bisects (
  id          INTEGER PRIMARY KEY,
  variant_id  INTEGER NOT NULL REFERENCES variants(id),
  good        TEXT NOT NULL,
  bad         TEXT NOT NULL,
  good_drv    TEXT NOT NULL DEFAULT '',  -- the variant's derivation at `good`
  state       TEXT NOT NULL,             -- running, found, ambiguous, failed, cancelled
  commits     TEXT NOT NULL DEFAULT '[]',
  first_bad   TEXT,
  message     TEXT NOT NULL DEFAULT '',
  changes     TEXT,
  created_at  TEXT NOT NULL,
  finished_at TEXT
);
