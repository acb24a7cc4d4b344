-- Statements of the timeline (videodrop/catalog/timeline.py, docs/timeline.md). Every one
-- reads the partial index videos_timeline_idx (migration 0015): ready rows with a
-- recorded_start, by (timeline_origin, recorded_start, id).

-- name: timeline_origins
-- Each origin with ready recordings: its first start, last end, count, summed durations and
-- bytes; and when a file last arrived under it (any status: video_folders).
SELECT o.origin, o.recordings, o.first_start, o.last_end, o.seconds, o.bytes,
       (SELECT max(f.created_at) FROM video_folders AS f WHERE f.folder = o.origin)
           AS last_seen
FROM (
    SELECT timeline_origin AS origin, count(*) AS recordings,
           min(recorded_start) AS first_start, max(recorded_end) AS last_end,
           coalesce(sum(duration), 0) AS seconds, coalesce(sum(size), 0)::bigint AS bytes
    FROM videos
    WHERE status = 'ready' AND recorded_start IS NOT NULL
    GROUP BY timeline_origin
) AS o
ORDER BY o.origin
LIMIT %(limit)s;

-- name: timeline_before
-- The recordings that started last before the window (what covers its start).
SELECT id, original_filename, recorded_start, recorded_end, recorded_source, duration, size
FROM videos
WHERE timeline_origin = %(origin)s AND status = 'ready' AND recorded_start IS NOT NULL
  AND recorded_start < %(from)s
ORDER BY recorded_start DESC, id DESC
LIMIT %(limit)s;

-- name: timeline_within
-- The recordings that start in the window, in order (one more than the caller keeps: it
-- tells the window was cut).
SELECT id, original_filename, recorded_start, recorded_end, recorded_source, duration, size
FROM videos
WHERE timeline_origin = %(origin)s AND status = 'ready' AND recorded_start IS NOT NULL
  AND recorded_start >= %(from)s AND recorded_start < %(to)s
ORDER BY recorded_start, id
LIMIT %(limit)s;

-- name: timeline_after
-- The first recording after the window (the end of a gap that reaches past it).
SELECT id, original_filename, recorded_start, recorded_end, recorded_source, duration, size
FROM videos
WHERE timeline_origin = %(origin)s AND status = 'ready' AND recorded_start IS NOT NULL
  AND recorded_start >= %(to)s
ORDER BY recorded_start, id
LIMIT 1;

-- name: timeline_recent_gaps
-- Per origin: the end of its last recording, and how many gaps (as videodrop/timeline.py
-- counts them: whole milliseconds, at least the origin's tolerance) end at or after
-- %(since)s. Tolerances by origin in %(origins)s/%(tolerances)s, %(tolerance)s for the
-- others. The recordings that started up to %(lookback)s before %(since)s say how far the
-- recordings before it reached. The origins are found by skipping through the index (one
-- probe per origin), and each origin's last end among the recordings that started at most
-- %(lookback)s before its last start: it reads the recent rows only, however long the
-- history.
WITH RECURSIVE names AS (
    SELECT min(timeline_origin) AS origin
    FROM videos WHERE status = 'ready' AND recorded_start IS NOT NULL
    UNION ALL
    SELECT (SELECT min(v.timeline_origin) FROM videos AS v
            WHERE v.status = 'ready' AND v.recorded_start IS NOT NULL
              AND v.timeline_origin > n.origin)
    FROM names AS n WHERE n.origin IS NOT NULL
), origins AS (
    SELECT n.origin, last.started
    FROM names AS n
    CROSS JOIN LATERAL (
        SELECT v.recorded_start AS started FROM videos AS v
        WHERE v.timeline_origin = n.origin AND v.status = 'ready'
          AND v.recorded_start IS NOT NULL
        ORDER BY v.recorded_start DESC LIMIT 1
    ) AS last
    WHERE n.origin IS NOT NULL
), reached AS (
    -- how far each origin's recordings reach, up to and including each one (a running
    -- max: its frame only grows, so it is one pass)
    SELECT o.origin, r.id, r.recorded_start, r.recorded_end,
           max(r.recorded_end) OVER (PARTITION BY o.origin ORDER BY r.recorded_start, r.id
                                     ROWS UNBOUNDED PRECEDING) AS reach,
           coalesce(t.seconds, %(tolerance)s) AS tolerance
    FROM origins AS o
    LEFT JOIN unnest(%(origins)s::text[], %(tolerances)s::float8[]) AS t (origin, seconds)
        ON t.origin = o.origin
    CROSS JOIN LATERAL (
        SELECT v.id, v.recorded_start, v.recorded_end
        FROM videos AS v
        WHERE v.timeline_origin = o.origin AND v.status = 'ready'
          AND v.recorded_start IS NOT NULL
          AND v.recorded_start >= least(%(since)s, o.started) - %(lookback)s
        ORDER BY v.recorded_start, v.id
        LIMIT 100000  -- (a bound, and it keeps this a range read of the index per origin)
    ) AS r
), swept AS (
    -- ``covered``: how far the recordings before each one reach
    SELECT origin, recorded_start, recorded_end, tolerance,
           lag(reach) OVER (PARTITION BY origin ORDER BY recorded_start, id) AS covered
    FROM reached
)
SELECT s.origin, max(s.recorded_end) AS last_end,
       count(*) FILTER (WHERE s.recorded_start >= %(since)s
                          AND round(extract(epoch FROM s.recorded_start - s.covered) * 1000)
                              >= greatest(round(s.tolerance * 1000), 1)) AS gaps
FROM swept AS s  -- (every origin has a row: its last recording)
GROUP BY s.origin
ORDER BY s.origin;

-- name: timeline_activity
-- The scenes' activity (one byte a second, base64: videodrop/derivatives.py) of the videos
-- %(ids)s whose scenes are ready; a video without is left out.
SELECT video_id, data->>'activity' AS activity FROM derivatives
WHERE video_id = ANY(%(ids)s) AND kind = 'scenes' AND status = 'ready'
  AND jsonb_typeof(data->'activity') = 'string';
