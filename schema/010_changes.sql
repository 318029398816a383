-- ptbuild schema, version 10: what a build was made from and what changed since the variant's last
-- good build (docs/changes.md): the build repo's commit when it started, and for a failure the
-- changes found when it was recorded (JSON), kept because its derivation may be collected later.

ALTER TABLE jobs ADD COLUMN commit_sha TEXT;
ALTER TABLE jobs ADD COLUMN changes TEXT;
