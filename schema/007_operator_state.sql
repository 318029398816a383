-- ptbuild schema, version 7: what an operator said survives a restart: pause and drain, and the
-- back-off of a job waiting to retry a network failure.

CREATE TABLE daemon_flags (
  name  TEXT PRIMARY KEY,   -- 'paused', 'draining'
  value INTEGER NOT NULL
);

ALTER TABLE jobs ADD COLUMN not_before TEXT;              -- RFC 3339 UTC: no start before this
ALTER TABLE jobs ADD COLUMN network_retries INTEGER NOT NULL DEFAULT 0;
