-- Retention counts what a video occupies on the store (docs/operations.md, "Retention and
-- quotas"): its original (``size``) and its derivatives' files (``derivative_bytes``: the
-- sum of ``data.bytes`` of its ready derivative rows, kept by the trigger below). The
-- poster, the packet index and the rendition record their bytes; the storyboard's and
-- the scenes' sheets record none and count 0.
ALTER TABLE videos ADD COLUMN derivative_bytes bigint NOT NULL DEFAULT 0
    CHECK (derivative_bytes >= 0);

CREATE FUNCTION videodrop_derivative_bytes_of(video bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(CASE WHEN jsonb_typeof(data->'bytes') = 'number'
                             THEN greatest((data->>'bytes')::numeric, 0) END), 0)::bigint
    FROM derivatives WHERE video_id = video AND status = 'ready'
$$;

-- A derivative row made, remade, failed or gone: its video's derivative_bytes follow. The
-- video row is written only when the sum changes (a row going pending, or a progress
-- report, leaves it alone), and never once expired (a pass deletes the derivative rows of
-- the videos it expires: the tombstone keeps what they occupied).
CREATE FUNCTION videodrop_derivative_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    video bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.video_id ELSE NEW.video_id END;
    total bigint := videodrop_derivative_bytes_of(video);
BEGIN
    UPDATE videos SET derivative_bytes = total
    WHERE id = video AND derivative_bytes IS DISTINCT FROM total AND status <> 'expired';
    RETURN NULL;
END
$$;

CREATE TRIGGER derivatives_bytes
    AFTER INSERT OR DELETE OR UPDATE OF status, data ON derivatives
    FOR EACH ROW EXECUTE FUNCTION videodrop_derivative_bytes();

-- The rows made before this migration (the token caches' per-row notices held back: the
-- records do not show the column).
ALTER TABLE videos DISABLE TRIGGER videos_notify_change;
UPDATE videos AS v SET derivative_bytes = videodrop_derivative_bytes_of(v.id)
WHERE EXISTS (SELECT 1 FROM derivatives AS d WHERE d.video_id = v.id AND d.status = 'ready');
ALTER TABLE videos ENABLE TRIGGER videos_notify_change;

-- Every walk of retention reads a video's bytes from its index (an index-only range).
DROP INDEX videos_retention_origin_idx;
CREATE INDEX videos_retention_origin_idx ON videos (origin, created_at, id)
    INCLUDE (size, derivative_bytes)
    WHERE status IN ('ready', 'failed') AND held_at IS NULL;
