-- Reading single rows and ids (videodrop/catalog/reads.py); lists are in lists.sql.

-- name: get_by_id
SELECT * FROM videos WHERE id = %(id)s;

-- name: video_by_id
-- Catalog.by_id: {columns}, those of a Video and its derivatives' states.
SELECT {columns} FROM videos WHERE id = %(id)s;

-- name: lookup_token
-- The token endpoints' hot path (Catalog.lookup_token): the unique index, the columns of
-- a Video only ({columns}: not the raw ffprobe JSON, which no token endpoint serves).
SELECT {columns} FROM videos
WHERE access_token = %(token)s AND (token_expires_at IS NULL OR token_expires_at > %(now)s)

-- name: ids_by_status
SELECT id FROM videos WHERE status = %(status)s ORDER BY id;

-- name: ids_known
SELECT id FROM videos WHERE id = ANY(%(ids)s);

-- name: stored_paths_known
-- Which of these keys a row names (whatever its status): a spool file no row names is left
-- by a row deleted while its prober was dead.
SELECT stored_path FROM videos WHERE stored_path = ANY(%(keys)s);

-- name: stored_keys
-- The originals the store must hold (storage migrate): rows whose file is stored.
SELECT stored_path, sha256 FROM videos WHERE status IN ('processing', 'ready')
ORDER BY stored_path;
