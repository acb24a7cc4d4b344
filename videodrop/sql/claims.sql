-- Statements of the watch-folder claims (videodrop/catalog/claims.py): one row per name
-- of an inbox file, keyed by its claim key.

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
