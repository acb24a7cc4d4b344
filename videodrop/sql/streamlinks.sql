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
-- commit until the link is made (and then that change removes it).
-- The file a link points at: the ready browser rendition (derive/rendition.py) when there
-- is one (its container: mp4 or webm), else the stored original.
SELECT v.access_token, coalesce(r.data->>'file', v.stored_path) AS stored_path,
       CASE WHEN r.data->>'file' LIKE '%%.webm' THEN 'webm'
            WHEN r.data->>'file' IS NOT NULL THEN 'mp4' ELSE v.format END AS format,
       v.original_filename
FROM videos AS v LEFT JOIN derivatives AS r
  ON r.video_id = v.id AND r.kind = 'rendition' AND r.status = 'ready'
WHERE v.id = %(id)s AND v.status = 'ready' AND v.access_token IS NOT NULL
  AND v.token_expires_at IS NULL
FOR SHARE OF v;

-- name: link_rows
SELECT v.id, v.access_token, coalesce(r.data->>'file', v.stored_path) AS stored_path,
       CASE WHEN r.data->>'file' LIKE '%%.webm' THEN 'webm'
            WHEN r.data->>'file' IS NOT NULL THEN 'mp4' ELSE v.format END AS format,
       v.original_filename
FROM videos AS v LEFT JOIN derivatives AS r
  ON r.video_id = v.id AND r.kind = 'rendition' AND r.status = 'ready'
WHERE v.id > %(after)s AND v.status = 'ready' AND v.access_token IS NOT NULL
  AND v.token_expires_at IS NULL
ORDER BY v.id LIMIT %(limit)s
FOR SHARE OF v;

-- name: link_rows_by_token
SELECT v.access_token, coalesce(r.data->>'file', v.stored_path) AS stored_path,
       CASE WHEN r.data->>'file' LIKE '%%.webm' THEN 'webm'
            WHEN r.data->>'file' IS NOT NULL THEN 'mp4' ELSE v.format END AS format,
       v.original_filename
FROM videos AS v LEFT JOIN derivatives AS r
  ON r.video_id = v.id AND r.kind = 'rendition' AND r.status = 'ready'
WHERE v.access_token = ANY(%(tokens)s) AND v.status = 'ready'
  AND v.token_expires_at IS NULL;
