-- ptbuild schema, version 5: what decides whether a variant must be rebuilt (SPEC §11).

ALTER TABLE jobs ADD COLUMN fingerprint TEXT;  -- sha256 of the recipe and the repo files it imports
ALTER TABLE jobs ADD COLUMN drv_path TEXT;     -- the derivation that produced out_path (nix backend)
