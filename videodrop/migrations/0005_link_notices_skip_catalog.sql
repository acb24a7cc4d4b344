-- The catalog removes a row's stream link itself, before its change commits, and says so
-- for the transaction (set_config('videodrop.links_handled', 'on', true), in the statement
-- that locks the row). Its own changes are then not announced on videodrop_links: a notice
-- would only repeat the removal, and could arrive after the catalog has made the row's new
-- link (a video probed again keeps its token) and remove that. Changes made around the
-- catalog (psql, another tool) are announced as before.
CREATE OR REPLACE FUNCTION videodrop_notify_link() RETURNS trigger LANGUAGE plpgsql AS $$
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
