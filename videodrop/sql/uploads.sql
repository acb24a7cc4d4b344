-- Statements of HTTP uploads (videodrop/catalog/uploads.py): a row 'uploading' while its
-- file arrives.

-- name: create_upload
INSERT INTO videos (source_id, name, description, status, access_token, original_filename,
                    origin, stored_path, size, created_at, updated_at)
VALUES (%(source_id)s, %(name)s, %(description)s, 'uploading', %(access_token)s,
        %(original_filename)s, 'upload', %(stored_path)s, 0, %(now)s, %(now)s)
RETURNING *;

-- name: upload_received
-- sha256: what the receiving put hashed (an object store's upload), or NULL (the prober's).
UPDATE videos SET status = 'processing', size = %(size)s,
    sha256 = coalesce(%(sha256)s, sha256), updated_at = %(now)s
WHERE id = %(id)s AND status = 'uploading'
RETURNING *;

-- name: touch_upload
-- An upload's heartbeat: a row left 'uploading' without one is swept (fail_stale_uploads);
-- size holds the bytes received so far.
UPDATE videos SET updated_at = %(now)s, size = %(received)s
WHERE id = %(id)s AND status = 'uploading'
RETURNING id;

-- name: discard_upload
-- A refused upload (too large, duplicate source_id...) leaves no row behind.
DELETE FROM videos WHERE id = %(id)s AND status = 'uploading' RETURNING *;

-- name: upload_details
-- Form fields that came after the file part: applied before the file is renamed into place.
UPDATE videos
SET name = coalesce(%(name)s, name), description = coalesce(%(description)s, description),
    source_id = coalesce(%(source_id)s, source_id),
    stored_path = coalesce(%(stored_path)s, stored_path), updated_at = %(now)s
WHERE id = %(id)s AND status = 'uploading'
RETURNING *;

-- name: fail_stale_uploads
UPDATE videos
SET status = 'failed', processing_error = 'upload interrupted',
    error_code = 'upload_interrupted',
    processing_completed_at = %(now)s, updated_at = %(now)s
WHERE status = 'uploading' AND updated_at < %(cutoff)s
RETURNING *;

-- name: claim_unpublished_uploads
-- Uploads whose ProbeVideo message may never have reached the broker: received, never
-- started. Bumping updated_at hands each row to one API worker per round.
UPDATE videos SET updated_at = %(now)s
WHERE status = 'processing' AND origin = 'upload' AND processing_started_at IS NULL
  AND updated_at < %(cutoff)s
RETURNING id;

-- name: note_leftover
-- A key the store may hold that no row may come to name (migration 0023).
INSERT INTO store_leftovers (key, video_id, since) VALUES (%(key)s, %(video_id)s, %(now)s)
ON CONFLICT (key) DO UPDATE SET since = excluded.since, video_id = excluded.video_id;

-- name: forget_leftover
DELETE FROM store_leftovers WHERE key = %(key)s;

-- name: forget_named_leftovers
-- Old notes of keys a row names: that row's removal deletes its object.
DELETE FROM store_leftovers l
WHERE l.since < %(cutoff)s AND EXISTS (SELECT 1 FROM videos v WHERE v.stored_path = l.key);

-- name: due_leftovers
SELECT l.key, l.video_id FROM store_leftovers l
WHERE l.since < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM videos v WHERE v.stored_path = l.key)
ORDER BY l.since LIMIT %(limit)s;
