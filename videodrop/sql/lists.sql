-- Statements of the video lists (GET /api/videos and the library page), put together by
-- videodrop/catalog/lists.py: {source} is one of the list_from_* blocks, {where} the
-- list_if_* fragments of the filters given, joined by AND. {k} names the table that holds
-- status and list order (v: videos; k: video_folders, migration 0008), {v} videos.

-- name: list_from_videos
videos AS v

-- name: list_from_folders
video_folders AS k JOIN videos AS v ON v.id = k.id

-- name: list_page
-- Keyset pagination on ({key}, id), {order} (ASC or DESC) for both: {key} is a list_key_*.
SELECT {columns} FROM {source} {where}
ORDER BY {key} {order}, {k}.id {order} LIMIT %(limit)s

-- The sort keys (lists.Sort): each has an index of (key, id), the expression written the
-- same way (migrations 0002, 0008, 0010), or the planner does not match it.
-- name: list_key_added
{k}.created_at

-- name: list_key_name
{v}.name

-- name: list_key_duration
coalesce({v}.duration, -1)

-- name: list_key_size
coalesce({v}.size, -1)

-- name: list_counts
SELECT {k}.status, count(*) AS n FROM {source} {where} GROUP BY {k}.status

-- name: list_if_folder
{k}.folder = %(origin)s

-- name: list_if_status
{k}.status = %(status)s

-- name: list_if_source_id
{v}.source_id = %(source_id)s

-- name: list_if_search
-- %(pattern)s is '%<text>%' with \, % and _ escaped (lists.like_pattern). The first line
-- is what the trigram index of migration 0011 serves (the four texts in one, a match in
-- any of them is a match there); the rest keeps a match from spanning two of them.
({v}.name || ' ' || {v}.source_id || ' ' || {v}.original_filename || ' ' || {v}.origin)
    ILIKE %(pattern)s
AND ({v}.name ILIKE %(pattern)s OR {v}.source_id ILIKE %(pattern)s
     OR {v}.original_filename ILIKE %(pattern)s OR {v}.origin ILIKE %(pattern)s)

-- name: list_if_created_after
{k}.created_at >= %(created_after)s

-- name: list_if_created_before
{k}.created_at < %(created_before)s

-- name: list_if_cursor
-- {op}: < when the page reads descending, > ascending; {value}: %(cursor_key)s, or
-- list_name_of_cursor_row.
({key}, {k}.id) {op} ({value}, %(cursor_id)s)

-- name: list_name_of_cursor_row
-- A name cursor without the name (too long for a URL): the row's own, NULL if it is gone.
(SELECT c.name FROM videos AS c WHERE c.id = %(cursor_id)s)
