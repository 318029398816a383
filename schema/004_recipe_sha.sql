-- ptbuild schema, version 4: what the recipe file was when a build started, so that publishing
-- can tell whether the recipe changed since the build (SPEC §10).

ALTER TABLE jobs ADD COLUMN recipe_sha TEXT;
