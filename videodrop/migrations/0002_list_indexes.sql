-- The admin list pages newest first by (created_at, id), filtered by any mix of status,
-- origin and a creation-time window: each mix is an index range scan in list order, so a
-- page costs the same at any depth of a million-row table (see catalog.list_videos).
-- These replace the (status, id) and (origin, id) indexes, which only served id order.
DROP INDEX IF EXISTS videos_status_id_idx;
DROP INDEX IF EXISTS videos_origin_id_idx;
CREATE INDEX videos_status_created_idx ON videos (status, created_at DESC, id DESC);
CREATE INDEX videos_origin_created_idx ON videos (origin, created_at DESC, id DESC);
CREATE INDEX videos_status_origin_created_idx
    ON videos (status, origin, created_at DESC, id DESC);
