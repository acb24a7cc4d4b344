-- Statements of the prober's record of a probe (videodrop/catalog/processing.py).

-- name: start_processing
UPDATE videos
SET status = 'processing', processing_started_at = %(now)s, processing_completed_at = NULL,
    processing_error = NULL, error_code = NULL, attempts = attempts + 1, updated_at = %(now)s
WHERE id = %(id)s AND status <> 'expired'  -- a tombstone's files are gone for good
RETURNING *;

-- name: finish_processing
-- A row that turns ready has its derivatives requested (%(derive)s: the kinds) in the same
-- transaction: pending rows without a job yet, which the derive role publishes (migration
-- 0009). Probed again, a ready video's derivatives are requested afresh; a failed one
-- loses them.
WITH done AS (
    UPDATE videos
    SET status = %(status)s, processing_error = %(error)s, error_code = %(error_code)s,
        processing_completed_at = %(now)s,
        size = %(size)s, sha256 = %(sha256)s, format = %(format)s, duration = %(duration)s,
        resolution = %(resolution)s, fps = %(fps)s, codec = %(codec)s,
        audio_codec = %(audio_codec)s, metadata = %(metadata)s, ffprobe = %(ffprobe)s,
        recorded_start = %(recorded_start)s, recorded_end = %(recorded_end)s,
        recorded_source = %(recorded_source)s, timeline_origin = %(timeline_origin)s,
        updated_at = %(now)s
    WHERE id = %(id)s
    RETURNING *
), requested AS (
    INSERT INTO derivatives AS d (video_id, kind, requested_at, updated_at)
    SELECT done.id, k.kind, %(now)s, %(now)s
    FROM done, unnest(%(derive)s::text[]) AS k (kind)
    WHERE done.status = 'ready'
    ON CONFLICT (video_id, kind) DO UPDATE
    SET status = 'pending', error = NULL, error_code = NULL, data = '{}'::jsonb,
        attempts = 0, requested_at = EXCLUDED.requested_at, queued_at = NULL,
        completed_at = NULL, updated_at = EXCLUDED.updated_at
), dropped AS (
    -- probed again and failed: its derivatives went with the file it had
    DELETE FROM derivatives AS d USING done
    WHERE d.video_id = done.id AND done.status <> 'ready'
)
SELECT * FROM done;

-- name: note_waiting
-- Why a claimed file still waits (disk full...); cleared when processing starts.
UPDATE videos SET processing_error = %(error)s, updated_at = %(now)s
WHERE id = %(id)s AND status = 'processing';

-- name: mark_failed
UPDATE videos
SET status = 'failed', processing_error = %(error)s, error_code = %(error_code)s,
    processing_completed_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status NOT IN ('ready', 'expired')
RETURNING *;

-- name: mark_missing
UPDATE videos
SET status = 'failed', processing_error = %(error)s, error_code = 'missing_file',
    processing_completed_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status NOT IN ('uploading', 'expired')
RETURNING *;
