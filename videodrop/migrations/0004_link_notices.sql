-- Stream links (videodrop/links.py): nginx serves /stream/{token}/ from a link named by the
-- token. The catalog removes a link before its own changes commit; this announces changes
-- made around it (psql, another tool): NOTIFY videodrop_links with the token that lost its
-- link, or '*' when the table is truncated. Only rows that were ready with a token can have
-- a link; an update that keeps token, status, expiry and file is not announced.
--
-- The catalog's own changes are not announced either: it says so for the transaction
-- (set_config('videodrop.links_handled', 'on', true), in the statement that locks the row).
-- A notice would only repeat its removal, and could arrive after the catalog has made the
-- row's next link (a video probed again keeps its token) and remove that.
CREATE FUNCTION videodrop_notify_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('videodrop.links_handled', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('videodrop_links', '*');
    ELSE
        PERFORM pg_notify('videodrop_links', OLD.access_token);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER videos_link_update AFTER UPDATE ON videos
    FOR EACH ROW
    WHEN (OLD.status = 'ready' AND OLD.access_token IS NOT NULL
          AND (NEW.status <> 'ready' OR NEW.access_token IS DISTINCT FROM OLD.access_token
               OR NEW.token_expires_at IS DISTINCT FROM OLD.token_expires_at
               OR NEW.stored_path <> OLD.stored_path))
    EXECUTE FUNCTION videodrop_notify_link();

CREATE TRIGGER videos_link_delete AFTER DELETE ON videos
    FOR EACH ROW WHEN (OLD.status = 'ready' AND OLD.access_token IS NOT NULL)
    EXECUTE FUNCTION videodrop_notify_link();

CREATE TRIGGER videos_link_truncate AFTER TRUNCATE ON videos
    FOR EACH STATEMENT EXECUTE FUNCTION videodrop_notify_link();
