-- Statements of the web pages (api/pages*.py): the library's list, search and counts.

-- name: pages_list_older
-- The library, newest first by (created_at, id); {where} is built by Catalog.library_page
-- from the pages_if_* fragments below (so each mix is a plain statement for the planner).
SELECT * FROM videos {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: pages_list_newer
-- The page before a cursor: oldest first here, reversed by the caller.
SELECT * FROM videos {where} ORDER BY created_at ASC, id ASC LIMIT %(limit)s

-- name: pages_if_status
status = %(status)s

-- name: pages_if_search
-- %(pattern)s is '%<text>%' with \, % and _ escaped by the caller.
(name ILIKE %(pattern)s OR source_id ILIKE %(pattern)s OR original_filename ILIKE %(pattern)s
 OR origin ILIKE %(pattern)s)

-- name: pages_if_before
(created_at, id) < (%(cursor_at)s, %(cursor_id)s)

-- name: pages_if_after
(created_at, id) > (%(cursor_at)s, %(cursor_id)s)

-- name: pages_counts
SELECT status, count(*) AS n FROM videos {where} GROUP BY status
