-- Retention (videodrop/catalog/retention.py, videodrop/retention/): usage, the walks of
-- what a rule may remove, expiring a row, holds.

-- name: retention_usage
-- Per origin, the rows whose files are (or are about to be) on the store: bytes, files,
-- the oldest one's created_at.
SELECT origin, coalesce(sum(size), 0)::bigint AS bytes, count(*) AS files,
       min(created_at) AS oldest
FROM videos WHERE status <> 'expired' GROUP BY origin ORDER BY origin;

-- The plan's origins, as arrays in step (videodrop/catalog/retention.py Bounds): each
-- removable origin, the created_at under which its rows may go (min_age), and the end of
-- its own removals: rows older than ``cutoff`` (max_age) and rows up to (qb_at, qb_id)
-- in (created_at, id) order (its quota).

-- name: retention_origin_boundary
-- Where an origin's quota is met: the first row, oldest first among those a rule may
-- remove, at which their running total of bytes reaches %(over)s. No row: never reached.
SELECT created_at, id FROM (
    SELECT created_at, id, sum(coalesce(size, 0)) OVER (
        ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS run
    FROM videos
    WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
      AND created_at < %(before)s
    ORDER BY created_at, id) AS s
WHERE run >= %(over)s LIMIT 1;

-- name: retention_origin_removable
-- Bytes a rule may remove of one origin (when its quota cannot be met: how far short).
SELECT coalesce(sum(size), 0)::bigint AS bytes FROM videos
WHERE origin = %(origin)s AND status IN ('ready', 'failed') AND held_at IS NULL
  AND created_at < %(before)s;

-- name: retention_origin_totals
-- What the origins' own rules remove: videos and bytes per origin and rule.
SELECT v.origin,
       CASE WHEN v.created_at < o.cutoff THEN 'max_age' ELSE 'origin_quota' END AS rule,
       count(*) AS files, coalesce(sum(v.size), 0)::bigint AS bytes
FROM videos AS v
JOIN unnest(%(origins)s::text[], %(befores)s::timestamptz[], %(cutoffs)s::timestamptz[],
            %(qb_ats)s::timestamptz[], %(qb_ids)s::bigint[])
     AS o (origin, before, cutoff, qb_at, qb_id) ON v.origin = o.origin
WHERE v.status IN ('ready', 'failed') AND v.held_at IS NULL AND v.created_at < o.before
  AND (v.created_at < o.cutoff OR (v.created_at, v.id) <= (o.qb_at, o.qb_id))
GROUP BY 1, 2;

-- name: retention_global_boundary
-- Where a global need of %(need)s bytes is met: the first row, oldest first across the
-- origins among those their own rules leave, at which the running total reaches it; the
-- total of all of them when it is never reached (then the row is NULL).
SELECT created_at, id, run FROM (
    SELECT v.created_at, v.id, sum(coalesce(v.size, 0)) OVER (
        ORDER BY v.created_at, v.id ROWS UNBOUNDED PRECEDING)::bigint AS run,
        lead(v.id) OVER (ORDER BY v.created_at, v.id) AS next_id
    FROM videos AS v
    JOIN unnest(%(origins)s::text[], %(befores)s::timestamptz[], %(cutoffs)s::timestamptz[],
                %(qb_ats)s::timestamptz[], %(qb_ids)s::bigint[])
         AS o (origin, before, cutoff, qb_at, qb_id) ON v.origin = o.origin
    WHERE v.status IN ('ready', 'failed') AND v.held_at IS NULL AND v.created_at < o.before
      AND NOT (v.created_at < o.cutoff OR (v.created_at, v.id) <= (o.qb_at, o.qb_id))
    ORDER BY v.created_at, v.id) AS s
WHERE run >= %(need)s OR next_id IS NULL LIMIT 1;

-- name: retention_decided
-- A batch of the plan's videos after the keyset (created_at, id), oldest first, each
-- with its rule: the origin's own (max_age, origin_quota), else the global ones up to
-- their ends (global_quota up to %(gq_at)s/%(gq_id)s, free_space up to %(g_at)s/%(g_id)s).
SELECT v.id, v.origin, coalesce(v.size, 0) AS size, v.created_at,
       CASE WHEN v.created_at < o.cutoff THEN 'max_age'
            WHEN (v.created_at, v.id) <= (o.qb_at, o.qb_id) THEN 'origin_quota'
            WHEN (v.created_at, v.id) <= (%(gq_at)s, %(gq_id)s) THEN 'global_quota'
            ELSE 'free_space' END AS rule
FROM videos AS v
JOIN unnest(%(origins)s::text[], %(befores)s::timestamptz[], %(cutoffs)s::timestamptz[],
            %(qb_ats)s::timestamptz[], %(qb_ids)s::bigint[])
     AS o (origin, before, cutoff, qb_at, qb_id) ON v.origin = o.origin
WHERE v.status IN ('ready', 'failed') AND v.held_at IS NULL AND v.created_at < o.before
  AND (v.created_at < o.cutoff OR (v.created_at, v.id) <= (o.qb_at, o.qb_id)
       OR (v.created_at, v.id) <= (%(g_at)s, %(g_id)s))
  AND (v.created_at, v.id) > (%(after_at)s, %(after_id)s)
ORDER BY v.created_at, v.id LIMIT %(limit)s;

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
