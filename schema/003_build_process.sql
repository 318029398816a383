-- ptbuild schema, version 3: which process group a running build is, so that the next start
-- after a crash can kill what is left of it, and never a stranger that reused the number.

ALTER TABLE jobs ADD COLUMN pgid INTEGER;          -- process group of the running build
ALTER TABLE jobs ADD COLUMN process_identity TEXT; -- "<boot id>:<start time in ticks>" of its leader
