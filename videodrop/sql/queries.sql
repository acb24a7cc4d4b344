-- Every statement the catalog runs. Loaded once; each block starts with "-- name: <name>".

-- name: claim_inbox_file
-- Idempotent by claim key: a second message for the same name of the same file returns
-- the same row (migration 0006: the name is part of the key).
INSERT INTO videos (source_id, name, status, access_token, original_filename, origin,
                    origin_path, stored_path, size,
                    claim_dev, claim_ino, claim_size, claim_mtime_ns, claim_ctime_ns,
                    created_at, updated_at)
VALUES (%(source_id)s, %(name)s, 'processing', %(access_token)s, %(original_filename)s,
        %(origin)s, %(origin_path)s, %(stored_path)s, %(size)s,
        %(dev)s, %(ino)s, %(size)s, %(mtime_ns)s, %(ctime_ns)s, %(now)s, %(now)s)
ON CONFLICT ON CONSTRAINT videos_claim_key DO UPDATE SET updated_at = videos.updated_at
RETURNING *, (xmax = 0) AS inserted;

-- name: get_by_claim
SELECT * FROM videos
WHERE claim_dev = %(dev)s AND claim_ino = %(ino)s AND claim_size = %(size)s
  AND claim_mtime_ns = %(mtime_ns)s AND claim_ctime_ns = %(ctime_ns)s
  AND claim_path_sha256 = sha256(%(origin_path)s::bytea) AND origin_path = %(origin_path)s;

-- name: earlier_claims
-- Rows of this name of this inode, with the same size and mtime, claimed at an earlier
-- ctime and not probed yet: the file in the inbox may be theirs (removing another name of
-- the inode moves its ctime). Oldest first.
SELECT * FROM videos
WHERE claim_dev = %(dev)s AND claim_ino = %(ino)s AND claim_size = %(size)s
  AND claim_mtime_ns = %(mtime_ns)s AND claim_ctime_ns < %(ctime_ns)s
  AND origin_path = %(origin_path)s AND status = 'processing'
ORDER BY id;

-- name: rekey_claim
-- The file of this row, found again with a later ctime: the key follows the file.
UPDATE videos SET claim_ctime_ns = %(ctime_ns)s, updated_at = %(now)s
WHERE id = %(id)s AND claim_ctime_ns = %(old_ctime_ns)s
RETURNING *;

-- name: move_stored
-- A row not stored yet whose stored path is held by another file (a case-insensitive
-- store: folders `A` and `a` are one): the row gets another path before its file goes in.
UPDATE videos SET stored_path = %(stored_path)s, updated_at = %(now)s
WHERE id = %(id)s AND stored_path = %(old)s AND status = 'processing'
RETURNING *;

-- name: get_by_id
SELECT * FROM videos WHERE id = %(id)s;

-- name: get_by_token
SELECT * FROM videos
WHERE access_token = %(token)s AND (token_expires_at IS NULL OR token_expires_at > %(now)s);

-- name: create_upload
INSERT INTO videos (source_id, name, description, status, access_token, original_filename,
                    origin, stored_path, size, created_at, updated_at)
VALUES (%(source_id)s, %(name)s, %(description)s, 'uploading', %(access_token)s,
        %(original_filename)s, 'upload', %(stored_path)s, 0, %(now)s, %(now)s)
RETURNING *;

-- name: upload_received
UPDATE videos SET status = 'processing', size = %(size)s, updated_at = %(now)s
WHERE id = %(id)s AND status = 'uploading'
RETURNING *;

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

-- name: ids_by_status
SELECT id FROM videos WHERE status = %(status)s ORDER BY id;

-- name: count_by_status
SELECT status, count(*) AS n FROM videos GROUP BY status;

-- name: ids_known
SELECT id FROM videos WHERE id = ANY(%(ids)s);
