-- ptbuild schema, version 8: the builder a job's last attempt ran on (SPEC §15), so that status,
-- show and the dashboard say where a build runs and where it ran.

ALTER TABLE jobs ADD COLUMN builder TEXT;
