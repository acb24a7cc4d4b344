-- Derivatives (the derive role, derive/): what is made from a ready video (a poster, a
-- storyboard...), one row per video and kind, with its own state. A video's status never
-- changes because of a derivative.
--
-- The row is also the request: the prober inserts the rows of a video in the transaction
-- that makes it ready (videodrop/sql/derivatives.sql, finish_processing), so a ready video
-- has its requests whatever dies after the commit. ``queued_at`` is NULL until the broker
-- has confirmed a job for the row (a transactional outbox): the derive role publishes the
-- rows that have none (derive/relay.py), at start, every few seconds and on demand
-- (videodrop requeue --derivatives).
CREATE TABLE derivatives (
    video_id     bigint NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    kind         text NOT NULL,                  -- videodrop/derivatives.py KINDS
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'ready', 'failed', 'skipped')),
    error_code   text,                           -- failed or skipped: a short code...
    error        text,                           -- ...and the sentence for people
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,  -- files (relative to MEDIA_ROOT), facts
    attempts     integer NOT NULL DEFAULT 0,     -- jobs started for this request
    requested_at timestamptz NOT NULL DEFAULT now(),
    queued_at    timestamptz,                    -- the broker took a job for this request
    completed_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, kind),
    CONSTRAINT derivatives_done_has_reason
        CHECK (status NOT IN ('failed', 'skipped') OR error IS NOT NULL)
);

-- The outbox: requests no job was published for yet.
CREATE INDEX derivatives_unqueued_idx ON derivatives (requested_at, video_id)
    WHERE status = 'pending' AND queued_at IS NULL;
CREATE INDEX derivatives_status_idx ON derivatives (status, kind);

-- A record shows its derivatives' states: a change of one is a change of the record, so
-- the API's token caches hear of it as of any change of a ready row (migration 0003).
CREATE FUNCTION videodrop_notify_derivative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('videodrop_videos', OLD.video_id::text);
    ELSE
        PERFORM pg_notify('videodrop_videos', NEW.video_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER derivatives_notify_change
    AFTER INSERT OR DELETE OR UPDATE OF status, error, error_code, data ON derivatives
    FOR EACH ROW EXECUTE FUNCTION videodrop_notify_derivative();
