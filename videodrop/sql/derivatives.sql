-- Statements of the derivatives (videodrop/catalog/derivatives.py, migration 0009).

-- name: derivatives_of
SELECT * FROM derivatives WHERE video_id = %(id)s ORDER BY kind;

-- name: derivative
SELECT * FROM derivatives WHERE video_id = %(id)s AND kind = %(kind)s;

-- name: start_derivative
-- One more job started for a request to make (pending, or a ready one remaking; None:
-- neither, or gone).
UPDATE derivatives SET attempts = attempts + 1, updated_at = %(now)s
WHERE video_id = %(id)s AND kind = %(kind)s AND (status = 'pending' OR remaking)
RETURNING *;

-- name: finish_derivative
-- A request's outcome (None: no longer to make: requested afresh, or deleted); it replaces
-- the facts of a remade one. The video's row is locked first: the trigger that keeps its
-- derivative_bytes (migration 0022) writes it, and a retention pass locks videos before
-- their derivatives (the same order both ways: no deadlock).
WITH video AS (SELECT id FROM videos WHERE id = %(id)s FOR NO KEY UPDATE)
UPDATE derivatives
SET status = %(status)s, error_code = %(error_code)s, error = %(error)s, data = %(data)s,
    remaking = false, progress = NULL, running_since = NULL,
    wanted_at = CASE WHEN %(error_code)s::text = 'on_view' THEN wanted_at END, completed_at = %(now)s, updated_at = %(now)s
WHERE video_id = (SELECT id FROM video) AND kind = %(kind)s
  AND (status = 'pending' OR remaking) AND requested_at = %(requested_at)s
RETURNING *;

-- name: unqueued_derivatives
-- The outbox: requests to make (pending or remaking) with no job yet, oldest first,
-- locked for the relay that publishes them (another relay skips them). Only ready videos: a request of a video
-- probed again waits for its probe.
-- Wanted renditions (someone waits: migration 0013) first.
SELECT d.video_id, d.kind, d.wanted_at IS NOT NULL AS wanted
FROM derivatives AS d JOIN videos AS v ON v.id = d.video_id
WHERE (d.status = 'pending' OR d.remaking) AND d.queued_at IS NULL AND v.status = 'ready'
ORDER BY d.wanted_at NULLS LAST, d.requested_at, d.video_id
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED;

-- name: mark_queued
UPDATE derivatives SET queued_at = %(now)s
WHERE video_id = ANY(%(ids)s) AND (status = 'pending' OR remaking) AND queued_at IS NULL
  AND (wanted_at IS NOT NULL) = %(wanted)s;

-- name: request_missing
-- Ready videos lacking a kind of %(kinds)s get its request; every request to make of
-- those kinds (pending or remaking) is published again (a job lost with a purged or
-- deleted queue).
WITH added AS (
    INSERT INTO derivatives (video_id, kind, requested_at, updated_at)
    SELECT v.id, k.kind, %(now)s, %(now)s
    FROM videos AS v, unnest(%(kinds)s::text[]) AS k (kind)
    WHERE v.status = 'ready'
    ON CONFLICT (video_id, kind) DO NOTHING
    RETURNING 1
), again AS (
    UPDATE derivatives SET queued_at = NULL
    WHERE (status = 'pending' OR remaking) AND queued_at IS NOT NULL
      AND kind = ANY(%(kinds)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM again) AS again;

-- name: request_again
-- Requests of %(kinds)s in %(states)s made afresh (no job yet): a ready one stays ready,
-- served as it is, and is remade (``remaking``); any other becomes pending.
UPDATE derivatives
SET status = CASE WHEN status = 'ready' THEN 'ready' ELSE 'pending' END,
    remaking = (status = 'ready'),
    data = CASE WHEN status = 'ready' THEN data ELSE '{}'::jsonb END,
    error = NULL, error_code = NULL, attempts = 0, progress = NULL, running_since = NULL,
    wanted_at = NULL,
    completed_at = CASE WHEN status = 'ready' THEN completed_at END,
    requested_at = %(now)s, queued_at = NULL, updated_at = %(now)s
WHERE kind = ANY(%(kinds)s) AND status = ANY(%(states)s)
  AND video_id IN (SELECT id FROM videos WHERE status = 'ready')
RETURNING video_id;

-- name: derivative_states
-- One video's states as a record shows them (as videodrop/catalog/rows.py selects them).
SELECT coalesce(jsonb_object_agg(kind, jsonb_build_object(
    'status', status, 'error', error, 'error_code', error_code, 'remaking', remaking,
    'progress', progress, 'file', data->'file', 'stream', data->'stream')),
    '{}'::jsonb) AS states
FROM derivatives WHERE video_id = %(id)s;

-- name: derivative_counts
-- Rows by kind and state; a ready one being remade counts as 'remaking'.
SELECT kind, CASE WHEN remaking THEN 'remaking' ELSE status END AS status, count(*) AS n
FROM derivatives GROUP BY 1, 2;

-- name: derivative_progress
-- A running job's progress (0..1) of a request still to make.
UPDATE derivatives SET progress = %(progress)s
WHERE video_id = %(id)s AND kind = %(kind)s AND (status = 'pending' OR remaking)
  AND requested_at = %(requested_at)s
RETURNING video_id;

-- name: run_transcode
-- A transcode job took the request (derive/transcoder.py): it holds the rendition lock
-- from now until its outcome is recorded.
UPDATE derivatives SET running_since = %(now)s, progress = 0, attempts = attempts + 1,
    updated_at = %(now)s
WHERE video_id = %(id)s AND kind = 'rendition' AND (status = 'pending' OR remaking)
RETURNING *;

-- name: interrupt_transcode
-- A transcode its role stopped (SIGTERM) before the end: the job it took is given back
-- (not counted as an attempt), first in the outbox, so a derive role publishes it again.
UPDATE derivatives SET running_since = NULL, progress = NULL, queued_at = NULL,
    attempts = greatest(attempts - 1, 0), wanted_at = coalesce(wanted_at, %(now)s),
    updated_at = %(now)s
WHERE video_id = %(id)s AND kind = 'rendition' AND running_since IS NOT NULL
  AND (status = 'pending' OR remaking) AND requested_at = %(requested_at)s
RETURNING video_id;

-- name: running_transcodes
-- Requests a transcode job took: the sweep checks that their job still holds its lock.
SELECT video_id FROM derivatives
WHERE kind = 'rendition' AND running_since IS NOT NULL AND (status = 'pending' OR remaking);

-- name: orphaned_transcode
-- A request whose transcode job died: no job any more (the relay publishes one again).
UPDATE derivatives SET running_since = NULL, progress = NULL, queued_at = NULL,
    wanted_at = coalesce(wanted_at, %(now)s)
WHERE video_id = %(id)s AND kind = 'rendition' AND running_since IS NOT NULL
  AND (status = 'pending' OR remaking)
RETURNING video_id;

-- name: want_rendition
-- Someone asks to watch the video. A rendition waiting for a viewer (skipped, on_view) is
-- pending again, first in the outbox, published straight to the transcode queue; one not
-- made yet (pending, no transcode running) is marked wanted and published there too: it
-- does not wait behind the other kinds of a derive job of the video (whichever job comes
-- to it first makes it; the other finds it running or made).
UPDATE derivatives
SET status = 'pending', error = NULL, error_code = NULL, data = '{}'::jsonb,
    attempts = CASE WHEN status = 'skipped' THEN 0 ELSE attempts END,
    progress = NULL, completed_at = NULL,
    requested_at = CASE WHEN status = 'skipped' THEN %(now)s ELSE requested_at END,
    queued_at = NULL, wanted_at = %(now)s, updated_at = %(now)s
WHERE video_id = %(id)s AND kind = 'rendition'
  AND ((status = 'skipped' AND error_code = 'on_view')
       OR (status = 'pending' AND wanted_at IS NULL AND running_since IS NULL))
RETURNING video_id;

-- name: rendition_bytes
-- Bytes of the ready renditions of both kinds (their files in the media store).
SELECT coalesce(sum((data->>'bytes')::bigint), 0) AS bytes
FROM derivatives WHERE kind IN ('rendition', 'hevc') AND status = 'ready';

-- name: republish_rendition
-- A rendition request with no transcode running gets a job again (the relay publishes
-- it): the one a transcode's dropped outcome left (requested afresh while it ran: the
-- fresh request's job met the transcode's lock and did nothing).
UPDATE derivatives SET queued_at = NULL
WHERE video_id = %(id)s AND kind = 'rendition' AND (status = 'pending' OR remaking)
  AND running_since IS NULL AND queued_at IS NOT NULL
RETURNING video_id;

-- name: republish_stranded
-- Requests of a video still to make, other than its rendition (which has its own), whose
-- job was published but none is making them: the job a lock holder's run met (requested
-- afresh while another job of the video held its lock, it did nothing) gets published
-- again by the relay. Run by the job that held the lock, after letting go of it.
UPDATE derivatives SET queued_at = NULL
WHERE video_id = %(id)s AND kind <> 'rendition' AND (status = 'pending' OR remaking)
  AND queued_at IS NOT NULL
RETURNING kind;
