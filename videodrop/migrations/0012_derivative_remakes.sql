-- A remake keeps the derivative online (docs/derivatives.md, "Remakes"): a ready
-- derivative requested again (videodrop requeue --derivatives all) stays `ready`, with its
-- facts and files, and is served until the new version replaces it; ``remaking`` says a
-- job is to make it again. A remake that fails or is skipped records that outcome (and
-- the job removes the previous files). Work to do is now `pending` or `remaking`.
ALTER TABLE derivatives ADD COLUMN remaking boolean NOT NULL DEFAULT false;
ALTER TABLE derivatives ADD CONSTRAINT derivatives_remaking_is_ready
    CHECK (NOT remaking OR status = 'ready');

DROP INDEX derivatives_unqueued_idx;
CREATE INDEX derivatives_unqueued_idx ON derivatives (requested_at, video_id)
    WHERE (status = 'pending' OR remaking) AND queued_at IS NULL;

-- A record shows whether a derivative is being remade: a change of it is a change of the
-- record (the API's token caches hear of it).
DROP TRIGGER derivatives_notify_change ON derivatives;
CREATE TRIGGER derivatives_notify_change
    AFTER INSERT OR DELETE OR UPDATE OF status, error, error_code, data, remaking
    ON derivatives
    FOR EACH ROW EXECUTE FUNCTION videodrop_notify_derivative();
