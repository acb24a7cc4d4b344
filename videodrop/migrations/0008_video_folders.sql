-- The list's origin filter names a folder and everything under it (origin=inbox/cam1 is
-- inbox/cam1 and inbox/cam1/2026-11-30, not inbox/cam10). This table has one row per
-- folder a video is in: its own origin and each folder above it ('inbox/cam1/2026-11-30'
-- is in 'inbox', 'inbox/cam1' and 'inbox/cam1/2026-11-30'), with the video's status and
-- list order, so that a page of a folder (and status), newest first from any keyset
-- cursor, is one index range scan however many subfolders the folder has
-- (videodrop/catalog/lists.py). Kept by the triggers below; a deleted video takes its
-- rows along. ``id`` is the video's id.
CREATE TABLE video_folders (
    folder     text NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL,
    id         bigint NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    PRIMARY KEY (folder, created_at, id)
);
CREATE INDEX video_folders_status_idx ON video_folders (folder, status, created_at, id);
CREATE INDEX video_folders_id_idx ON video_folders (id);

-- 'inbox/cam1/2026-11-30' -> 'inbox', 'inbox/cam1', 'inbox/cam1/2026-11-30'
CREATE FUNCTION video_folders_of(origin text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_string(parts[1:n], '/')
    FROM (SELECT string_to_array(origin, '/') AS parts) AS p,
         generate_series(1, cardinality(p.parts)) AS n
$$;

CREATE FUNCTION video_folders_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.origin = NEW.origin AND OLD.created_at = NEW.created_at THEN
            UPDATE video_folders SET status = NEW.status WHERE id = NEW.id;
            RETURN NULL;
        END IF;
        DELETE FROM video_folders WHERE id = OLD.id;
    END IF;
    INSERT INTO video_folders (folder, status, created_at, id)
    SELECT f, NEW.status, NEW.created_at, NEW.id FROM video_folders_of(NEW.origin) AS f;
    RETURN NULL;
END
$$;

CREATE TRIGGER video_folders_on_insert AFTER INSERT ON videos
    FOR EACH ROW EXECUTE FUNCTION video_folders_keep();
CREATE TRIGGER video_folders_on_update AFTER UPDATE OF origin, created_at, status ON videos
    FOR EACH ROW WHEN (OLD.origin IS DISTINCT FROM NEW.origin
                       OR OLD.created_at IS DISTINCT FROM NEW.created_at
                       OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION video_folders_keep();

INSERT INTO video_folders (folder, status, created_at, id)
SELECT f, v.status, v.created_at, v.id FROM videos AS v, video_folders_of(v.origin) AS f;

-- Origin filters read video_folders now: these served origin equality only.
DROP INDEX IF EXISTS videos_origin_created_idx;
DROP INDEX IF EXISTS videos_status_origin_created_idx;
