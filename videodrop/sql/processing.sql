-- Statements of the prober's record of a probe (videodrop/catalog/processing.py).

-- name: start_processing
UPDATE videos
SET status = 'processing', processing_started_at = %(now)s, processing_completed_at = NULL,
    processing_error = NULL, error_code = NULL, attempts = attempts + 1, updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- name: finish_processing
UPDATE videos
SET status = %(status)s, processing_error = %(error)s, error_code = %(error_code)s,
    processing_completed_at = %(now)s,
    size = %(size)s, sha256 = %(sha256)s, format = %(format)s, duration = %(duration)s,
    resolution = %(resolution)s, fps = %(fps)s, codec = %(codec)s,
    audio_codec = %(audio_codec)s, metadata = %(metadata)s, ffprobe = %(ffprobe)s,
    updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- name: note_waiting
-- Why a claimed file still waits (disk full...); cleared when processing starts.
UPDATE videos SET processing_error = %(error)s, updated_at = %(now)s
WHERE id = %(id)s AND status = 'processing';

-- name: mark_failed
UPDATE videos
SET status = 'failed', processing_error = %(error)s, error_code = %(error_code)s,
    processing_completed_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status <> 'ready'
RETURNING *;

-- name: mark_missing
UPDATE videos
SET status = 'failed', processing_error = %(error)s, error_code = 'missing_file',
    processing_completed_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status <> 'uploading'
RETURNING *;
