-- The list's sorts besides the added order (videodrop/catalog/lists.py: name, duration,
-- size, either way): a page of each, from any keyset cursor, is one index range scan
-- (read backwards for the other direction). The key expressions are sql/lists.sql's
-- list_key_*, written the same way, or the planner does not match them: an unknown
-- duration or size (not probed yet, failed) counts as -1. The name sorts in the
-- database's collation.
CREATE INDEX videos_name_id_idx ON videos (name, id);
CREATE INDEX videos_duration_id_idx ON videos ((coalesce(duration, -1)), id);
CREATE INDEX videos_size_id_idx ON videos ((coalesce(size, -1)), id);
