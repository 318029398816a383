-- ptbuild schema, version 9: what a build used where Nix ran it (docs/resources.md): peak memory,
-- CPU and wall time, output size, the cores it was given and how it was measured, as JSON; the
-- scheduler learns each variant's expected figures from it.

ALTER TABLE jobs ADD COLUMN resources TEXT;
