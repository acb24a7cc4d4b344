-- The API's token cache (api/tokencache.py) keeps ready rows in memory; this tells every
-- API worker when one of them changes or goes: NOTIFY videodrop_videos with the row's id
-- (or '*' when the table is truncated). Only rows that were ready can be cached, so only
-- their changes are announced; the notice is sent when the transaction commits.
CREATE FUNCTION videodrop_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('videodrop_videos', '*');
    ELSE
        PERFORM pg_notify('videodrop_videos', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER videos_notify_change AFTER UPDATE OR DELETE ON videos
    FOR EACH ROW WHEN (OLD.status = 'ready') EXECUTE FUNCTION videodrop_notify_change();

CREATE TRIGGER videos_notify_truncate AFTER TRUNCATE ON videos
    FOR EACH STATEMENT EXECUTE FUNCTION videodrop_notify_change();
