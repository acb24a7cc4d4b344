-- Changing a video's access token or removing the video (videodrop/catalog/tokens.py).

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
