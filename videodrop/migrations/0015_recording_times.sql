-- A recording's wall-clock start and end, and the timeline it is on (videodrop/recording.py,
-- docs/timeline.md). Set by the prober when a video turns ready:
--
-- ``recorded_start``, ``recorded_end``: when the recording ran (end = start + duration).
-- ``recorded_source``: how the start is known: creation_time (the container's), file_name
--   (a stamp in the name), mtime (the file's modification time minus its duration) or
--   received (an upload's arrival minus its duration); the last two are estimates.
-- ``timeline_origin``: the origin whose timeline the recording is on (the folder named in
--   VIDEODROP_ORIGINS_FILE, else the inbox's first-level folder, else the origin).
ALTER TABLE videos
    ADD COLUMN recorded_start timestamptz,
    ADD COLUMN recorded_end timestamptz,
    ADD COLUMN recorded_source text
        CHECK (recorded_source IN ('creation_time', 'file_name', 'mtime', 'received')),
    ADD COLUMN timeline_origin text,
    ADD CONSTRAINT videos_recorded_order CHECK (recorded_end >= recorded_start);

-- A timeline is one range scan of this index (an origin's ready recordings by start), and
-- the origins' summaries an index-only scan of it.
CREATE INDEX videos_timeline_idx ON videos (timeline_origin, recorded_start, id)
    INCLUDE (recorded_end, size, duration)
    WHERE status = 'ready' AND recorded_start IS NOT NULL;

-- Rows probed before this migration: the container's creation_time read as UTC, else the
-- claimed file's mtime, else the row's creation, minus the duration; on the inbox's
-- first-level folder's timeline. Time zones and file name patterns are the prober's: a
-- video probed again (videodrop requeue ID…) gets them. The token caches' per-row notices
-- are held back for this one statement and replaced by one notice for every row.
ALTER TABLE videos DISABLE TRIGGER videos_notify_change;
WITH computed AS (
    SELECT v.id,
           CASE WHEN v.metadata->>'creation_time' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$'
                THEN (v.metadata->>'creation_time')::timestamptz END AS created,
           CASE WHEN v.claim_mtime_ns IS NOT NULL
                THEN to_timestamp(v.claim_mtime_ns / 1e9) END AS mtime,
           make_interval(secs => greatest(coalesce(v.duration, 0), 0)) AS length
    FROM videos AS v
    WHERE v.status = 'ready'
)
UPDATE videos AS v
SET recorded_start = coalesce(c.created, coalesce(c.mtime, v.created_at) - c.length),
    recorded_end = coalesce(c.created + c.length, c.mtime, v.created_at),
    recorded_source = CASE WHEN c.created IS NOT NULL THEN 'creation_time'
                           WHEN c.mtime IS NOT NULL THEN 'mtime' ELSE 'received' END,
    timeline_origin = CASE WHEN v.origin LIKE 'inbox/%'
                           THEN 'inbox/' || split_part(v.origin, '/', 2) ELSE v.origin END
FROM computed AS c
WHERE v.id = c.id;
ALTER TABLE videos ENABLE TRIGGER videos_notify_change;
SELECT pg_notify('videodrop_videos', '*');
