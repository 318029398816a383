-- ptbuild schema, version 2: the audit trail of automatic fixed-output hash repairs (SPEC §7).

CREATE TABLE hash_fixes (
  id        INTEGER PRIMARY KEY,
  job_id    INTEGER NOT NULL REFERENCES jobs(id),
  drv       TEXT NOT NULL,   -- the fixed-output derivation that failed
  file      TEXT NOT NULL,   -- path relative to the repo
  line      INTEGER NOT NULL,
  old_hash  TEXT NOT NULL,
  new_hash  TEXT NOT NULL,
  at        TEXT NOT NULL
);
CREATE INDEX hash_fixes_by_job ON hash_fixes(job_id);
