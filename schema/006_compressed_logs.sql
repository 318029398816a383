-- ptbuild schema, version 6: build logs are written zstd-compressed, as <id>.log.zst; the jobs of
-- earlier versions keep their plain <id>.log.

ALTER TABLE jobs ADD COLUMN log_zstd INTEGER NOT NULL DEFAULT 0;
