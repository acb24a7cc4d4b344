-- Statements of the management API (api/admin.py, api/manage.py, api/uploads.py).

-- name: list_page
-- The admin list: {where} is built by Catalog.list_videos from the list_if_* fragments
-- below, so each filter mix is its own plain statement and uses its own index
-- (0002_list_indexes.sql). Keyset pagination on (created_at, id), newest first.
SELECT * FROM videos {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: list_if_status
status = %(status)s

-- name: list_if_origin
origin = %(origin)s

-- name: list_if_created_after
created_at >= %(created_after)s

-- name: list_if_created_before
created_at < %(created_before)s

-- name: list_if_cursor
(created_at, id) < (%(cursor_at)s, %(cursor_id)s)

-- name: rotate_token
UPDATE videos
SET access_token = %(token)s, token_expires_at = %(expires_at)s, updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- name: revoke_token
UPDATE videos SET access_token = NULL, token_expires_at = NULL, updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- name: delete_video
DELETE FROM videos WHERE id = %(id)s RETURNING *;

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

-- name: lookup_token
-- The token endpoints' hot path (Catalog.lookup_token): the unique index, the columns of
-- a Video only ({columns}: not the raw ffprobe JSON, which no token endpoint serves).
SELECT {columns} FROM videos
WHERE access_token = %(token)s AND (token_expires_at IS NULL OR token_expires_at > %(now)s)

-- name: lock_ready_token
-- Stream links (videodrop/links.py): before a change to a ready row commits, its lock and
-- its token, so that its link goes first; and, for this transaction, "the link is handled"
-- (migration 0004: the trigger does not announce this change).
SELECT access_token, set_config('videodrop.links_handled', 'on', true) AS handled
FROM videos WHERE id = %(id)s AND status = 'ready' FOR UPDATE;

-- name: link_row
-- A link is made only from a committed ready row held FOR SHARE: no change to it can
-- commit until the link is made (and then that change removes it).
SELECT access_token, stored_path, format, original_filename FROM videos
WHERE id = %(id)s AND status = 'ready' AND access_token IS NOT NULL
  AND token_expires_at IS NULL
FOR SHARE;

-- name: link_rows
SELECT id, access_token, stored_path, format, original_filename FROM videos
WHERE id > %(after)s AND status = 'ready' AND access_token IS NOT NULL
  AND token_expires_at IS NULL
ORDER BY id LIMIT %(limit)s
FOR SHARE;

-- name: link_rows_by_token
SELECT access_token, stored_path, format, original_filename FROM videos
WHERE access_token = ANY(%(tokens)s) AND status = 'ready' AND token_expires_at IS NULL;
