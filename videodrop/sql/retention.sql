-- Retention (videodrop/catalog/retention.py, videodrop/retention/): usage, the walks of
-- what a rule may remove, expiring a row, holds.

-- name: retention_usage
-- Per origin, the rows whose files are (or are about to be) on the store: bytes, files,
-- the oldest one's created_at.
SELECT origin, coalesce(sum(size), 0)::bigint AS bytes, count(*) AS files,
       min(created_at) AS oldest
FROM videos WHERE status <> 'expired' GROUP BY origin ORDER BY origin;

-- name: retention_walk_origin
-- What a rule may remove in one origin, oldest first, a batch after the keyset
-- (created_at, id), created before %(before)s.
SELECT id, origin, size, created_at FROM videos
WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
  AND created_at < %(before)s AND (created_at, id) > (%(after_at)s, %(after_id)s)
ORDER BY created_at, id LIMIT %(limit)s;

-- name: retention_walk_all
-- The same across every origin.
SELECT id, origin, size, created_at FROM videos
WHERE status IN ('ready', 'failed') AND held_at IS NULL
  AND created_at < %(before)s AND (created_at, id) > (%(after_at)s, %(after_id)s)
ORDER BY created_at, id LIMIT %(limit)s;

-- name: retention_expire
-- Step one of a removal, committed before any file goes: the rows say the files are gone.
-- Only a row still removable (ready or failed, not held) is expired; each with its rule
-- and sentence (the arrays run in step).
UPDATE videos AS v SET status = 'expired', expired_at = %(now)s, expired_reason = d.reason,
       expired_detail = d.detail, updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(reasons)s::text[], %(details)s::text[])
     AS d (id, reason, detail)
WHERE v.id = d.id AND v.status IN ('ready', 'failed') AND v.held_at IS NULL
RETURNING v.*;

-- name: retention_forget_derivatives
-- Expired videos' derivative rows: their files go with the videos'.
DELETE FROM derivatives WHERE video_id = ANY(%(ids)s);

-- name: retention_unremoved
-- Expired rows whose files a pass has still to remove (it crashed between the steps).
SELECT * FROM videos WHERE status = 'expired' AND files_removed_at IS NULL
ORDER BY id LIMIT %(limit)s;

-- name: retention_files_removed
UPDATE videos SET files_removed_at = %(now)s WHERE id = ANY(%(ids)s) AND status = 'expired';

-- name: retention_drop_rows
DELETE FROM videos WHERE id = ANY(%(ids)s) AND status = 'expired';

-- name: hold_video
UPDATE videos SET held_at = coalesce(held_at, %(now)s), updated_at = %(now)s
WHERE id = %(id)s AND status <> 'expired'
RETURNING *;

-- name: release_video
UPDATE videos SET held_at = NULL, updated_at = %(now)s WHERE id = %(id)s
RETURNING *;
