-- ptbuild schema, version 1: the matrix and every job with its history.
-- Times are RFC 3339 UTC text with milliseconds, so they sort and read as they are.

CREATE TABLE repos (
  id       INTEGER PRIMARY KEY,
  name     TEXT NOT NULL UNIQUE,
  path     TEXT NOT NULL,
  recipes  TEXT NOT NULL
);

CREATE TABLE variants (
  id        INTEGER PRIMARY KEY,
  repo_id   INTEGER NOT NULL REFERENCES repos(id),
  name      TEXT NOT NULL UNIQUE,
  recipe    TEXT NOT NULL,            -- path of the recipe file, relative to the repo
  family    TEXT,
  python    TEXT,
  cuda      TEXT,
  gpu_arch  TEXT,
  isa       TEXT,
  extra     TEXT,
  platform  TEXT,
  present   INTEGER NOT NULL DEFAULT 1 -- 0 once the recipe is gone; the row stays for its jobs
);

CREATE TABLE jobs (
  id              INTEGER PRIMARY KEY,
  variant_id      INTEGER NOT NULL REFERENCES variants(id),
  kind            TEXT NOT NULL CHECK (kind IN ('build', 'publish')),
  state           TEXT NOT NULL
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority        INTEGER NOT NULL DEFAULT 0,
  reason          TEXT NOT NULL DEFAULT '',
  force           INTEGER NOT NULL DEFAULT 0,
  attempt         INTEGER NOT NULL DEFAULT 0,
  created_at      TEXT NOT NULL,
  started_at      TEXT,
  finished_at     TEXT,
  exit_code       INTEGER,
  progress_done   INTEGER,
  progress_total  INTEGER,
  failure_class   TEXT,
  failure_message TEXT,
  failure_hint    TEXT,
  failure_excerpt TEXT,
  verify          TEXT,                -- JSON {ok, facts, problems}
  out_path        TEXT
);
CREATE INDEX jobs_by_state ON jobs(state);
CREATE INDEX jobs_by_variant ON jobs(variant_id, id);

-- One row per state change, written in the same transaction as the change itself.
CREATE TABLE job_events (
  id          INTEGER PRIMARY KEY,
  job_id      INTEGER NOT NULL REFERENCES jobs(id),
  at          TEXT NOT NULL,
  from_state  TEXT,                    -- NULL when the job was created
  to_state    TEXT NOT NULL,
  detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_events_by_job ON job_events(job_id);
