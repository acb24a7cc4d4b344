-- Stream links (videodrop/links.py, videodrop/catalog/streamlinks.py): the rows whose
-- links nginx serves.

-- name: lock_ready_token
-- Stream links (videodrop/links.py): before a change to a ready row commits, its lock and
-- its token, so that its link goes first; and, for this transaction, "the link is handled"
-- (migration 0004: the trigger does not announce this change).
SELECT access_token, set_config('videodrop.links_handled', 'on', true) AS handled
FROM videos WHERE id = %(id)s AND status = 'ready' FOR UPDATE;

-- name: link_row
-- A link is made only from a committed ready row held FOR SHARE: no change to it can
-- commit until the link is made (and then that change removes it). ``rendition``: the
-- file of its ready browser rendition (derive/rendition.py), which the link points at;
-- ``awaits_viewer``: its transcode waits for someone to watch (VIDEODROP_TRANSCODE=on-view),
-- so it has no link: its /stream/ goes to the API, which asks for the transcode.
SELECT access_token, stored_path, format, original_filename,
       (SELECT r.data->>'file' FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'ready') AS rendition,
       EXISTS (SELECT FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'skipped'
        AND r.error_code = 'on_view') AS awaits_viewer
FROM videos
WHERE id = %(id)s AND status = 'ready' AND access_token IS NOT NULL
  AND token_expires_at IS NULL
FOR SHARE;

-- name: link_rows
SELECT id, access_token, stored_path, format, original_filename,
       (SELECT r.data->>'file' FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'ready') AS rendition,
       EXISTS (SELECT FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'skipped'
        AND r.error_code = 'on_view') AS awaits_viewer
FROM videos
WHERE id > %(after)s AND status = 'ready' AND access_token IS NOT NULL
  AND token_expires_at IS NULL
ORDER BY id LIMIT %(limit)s
FOR SHARE;

-- name: link_rows_by_token
SELECT access_token, stored_path, format, original_filename,
       (SELECT r.data->>'file' FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'ready') AS rendition,
       EXISTS (SELECT FROM derivatives AS r WHERE r.video_id = videos.id
        AND r.kind = 'rendition' AND r.status = 'skipped'
        AND r.error_code = 'on_view') AS awaits_viewer
FROM videos
WHERE access_token = ANY(%(tokens)s) AND status = 'ready' AND token_expires_at IS NULL;
