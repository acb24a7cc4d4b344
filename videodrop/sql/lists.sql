-- Statements of the video lists (GET /api/videos and the library page), put together by
-- videodrop/catalog/lists.py: {source} is one of the list_from_* blocks, {where} the
-- list_if_* fragments of the filters given, joined by AND. {k} names the table that holds
-- status and list order (v: videos; k: video_folders, migration 0008), {v} videos.

-- name: list_from_videos
videos AS v

-- name: list_from_folders
video_folders AS k JOIN videos AS v ON v.id = k.id

-- name: list_newest
-- Keyset pagination on (created_at, id), newest first.
SELECT {columns} FROM {source} {where}
ORDER BY {k}.created_at DESC, {k}.id DESC LIMIT %(limit)s

-- name: list_oldest
-- The page before a cursor: oldest first here, turned around by the caller.
SELECT {columns} FROM {source} {where}
ORDER BY {k}.created_at ASC, {k}.id ASC LIMIT %(limit)s

-- name: list_counts
SELECT {k}.status, count(*) AS n FROM {source} {where} GROUP BY {k}.status

-- name: list_if_folder
{k}.folder = %(origin)s

-- name: list_if_status
{k}.status = %(status)s

-- name: list_if_source_id
{v}.source_id = %(source_id)s

-- name: list_if_search
-- %(pattern)s is '%<text>%' with \, % and _ escaped (lists.like_pattern).
({v}.name ILIKE %(pattern)s OR {v}.source_id ILIKE %(pattern)s
 OR {v}.original_filename ILIKE %(pattern)s OR {v}.origin ILIKE %(pattern)s)

-- name: list_if_created_after
{k}.created_at >= %(created_after)s

-- name: list_if_created_before
{k}.created_at < %(created_before)s

-- name: list_if_before
({k}.created_at, {k}.id) < (%(cursor_at)s, %(cursor_id)s)

-- name: list_if_after
({k}.created_at, {k}.id) > (%(cursor_at)s, %(cursor_id)s)
