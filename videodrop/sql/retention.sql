-- Retention (videodrop/catalog/retention.py, videodrop/retention/): usage, the walks of
-- what a rule may remove, expiring a row, holds. A video's bytes are its original's and
-- its derivatives' (``size + derivative_bytes``, migration 0022).

-- name: retention_usage
-- Per origin, the rows whose files are (or are about to be) on the store: bytes (originals
-- and derivatives), files, the oldest one's created_at.
SELECT origin, coalesce(sum(coalesce(size, 0) + derivative_bytes), 0)::bigint AS bytes,
       count(*) AS files, min(created_at) AS oldest
FROM videos WHERE status <> 'expired' GROUP BY origin ORDER BY origin;

-- name: retention_origin_boundary
-- Where an origin's quota is met: the first row, oldest first among those a rule may
-- remove, at which their running total of bytes reaches %(over)s. No row: never reached.
SELECT created_at, id FROM (
    SELECT created_at, id, sum(coalesce(size, 0) + derivative_bytes) OVER (
        ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS run
    FROM videos
    WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
      AND created_at < %(before)s
    ORDER BY created_at, id) AS s
WHERE run >= %(over)s LIMIT 1;

-- name: retention_group_boundary
-- The same over several origins ruled by one table (a camera's per-day folders): their
-- rows merged oldest first (one index range each, fenced by OFFSET 0).
SELECT created_at, id FROM (
    SELECT x.created_at, x.id, sum(x.size) OVER (
        ORDER BY x.created_at, x.id ROWS UNBOUNDED PRECEDING) AS run
    FROM unnest(%(origins)s::text[]) AS o (origin)
    CROSS JOIN LATERAL (
        SELECT v.created_at, v.id, coalesce(v.size, 0) + v.derivative_bytes AS size
        FROM videos AS v
        WHERE v.origin = o.origin AND v.status IN ('ready', 'failed') AND v.held_at IS NULL
          AND v.created_at < %(before)s
        OFFSET 0
    ) AS x
    ORDER BY x.created_at, x.id) AS s
WHERE run >= %(over)s LIMIT 1;

-- name: retention_origin_bytes
-- Bytes and videos a rule may remove of one origin, up to (created_at, id) %(upto)s.
SELECT coalesce(sum(coalesce(size, 0) + derivative_bytes), 0)::bigint AS bytes,
       count(*) AS files FROM videos
WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
  AND created_at < %(before)s AND (created_at, id) <= (%(upto_at)s, %(upto_id)s);

-- name: retention_global_boundary
-- Where a global need of %(need)s bytes is met: merging what each origin's own rules
-- leave (its rows a rule may remove after its own end: (after_at, after_id), each origin
-- one index range), oldest first, the first row at which the running total reaches it;
-- when it never does, the last row with the total of all (next_id NULL). No row: nothing
-- to remove.
SELECT created_at, id, run FROM (
    SELECT x.created_at, x.id,
           sum(x.size) OVER (ORDER BY x.created_at, x.id ROWS UNBOUNDED PRECEDING)::bigint
               AS run,
           lead(x.id) OVER (ORDER BY x.created_at, x.id) AS next_id
    FROM unnest(%(origins)s::text[], %(befores)s::timestamptz[], %(after_ats)s::timestamptz[],
                %(after_ids)s::bigint[]) AS o (origin, before, after_at, after_id)
    CROSS JOIN LATERAL (
        SELECT v.created_at, v.id, coalesce(v.size, 0) + v.derivative_bytes AS size
        FROM videos AS v
        WHERE v.origin = o.origin AND v.status IN ('ready', 'failed') AND v.held_at IS NULL
          AND v.created_at < o.before AND (v.created_at, v.id) > (o.after_at, o.after_id)
        OFFSET 0  -- a fence: one index range per origin, not a join over the table
    ) AS x
    ORDER BY x.created_at, x.id) AS s
WHERE run >= %(need)s OR next_id IS NULL LIMIT 1;

-- name: retention_origin_rows
-- A batch of what a rule may remove of one origin, oldest first, after the keyset
-- (created_at, id) and up to %(upto)s: a range of videos_retention_origin_idx.
SELECT id, origin, coalesce(size, 0) + derivative_bytes AS size, created_at FROM videos
WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
  AND created_at < %(before)s
  AND (created_at, id) > (%(after_at)s, %(after_id)s)
  AND (created_at, id) <= (%(upto_at)s, %(upto_id)s)
ORDER BY created_at, id LIMIT %(limit)s;

-- name: retention_lock_removable
-- Of the rows a pass decided on, those still removable (ready or failed, not held), locked
-- until the expiry commits: a hold placed meanwhile waits, then finds the row expired.
SELECT id FROM videos
WHERE id = ANY(%(ids)s) AND status IN ('ready', 'failed') AND held_at IS NULL
ORDER BY id FOR UPDATE;

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
SELECT * FROM videos WHERE status = 'expired' AND files_removed_at IS NULL AND id > %(after)s
ORDER BY id LIMIT %(limit)s;

-- name: retention_files_removed
UPDATE videos SET files_removed_at = %(now)s WHERE id = ANY(%(ids)s) AND status = 'expired';

-- name: retention_drop_rows
DELETE FROM videos WHERE id = ANY(%(ids)s) AND status = 'expired';

-- name: retention_expired_among
-- Of the ids given, the expired rows: when and why (``videodrop requeue`` refuses them).
SELECT id, expired_at, expired_reason FROM videos
WHERE id = ANY(%(ids)s) AND status = 'expired' ORDER BY id;

-- name: hold_video
UPDATE videos SET held_at = coalesce(held_at, %(now)s), updated_at = %(now)s
WHERE id = %(id)s AND status <> 'expired'
RETURNING *;

-- name: release_video
UPDATE videos SET held_at = NULL, updated_at = %(now)s WHERE id = %(id)s
RETURNING *;
