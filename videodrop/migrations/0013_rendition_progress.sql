-- Browser renditions (derive/rendition.py, docs/playback.md): a long job's progress, and
-- which transcode job runs it.
--
-- ``progress`` (0..1, NULL when no job is making it): what part of the media a running
-- rendition has written, updated every few seconds; the record's ``playback.progress``.
-- ``running_since``: a transcode job (derive/transcoder.py) took the request and acked its
-- message; it holds the video's rendition lock (an advisory lock) while it runs. A request
-- with ``running_since`` whose lock is free lost its job (the worker died): the derive
-- role's sweep publishes it again.
ALTER TABLE derivatives ADD COLUMN progress real
    CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1));
ALTER TABLE derivatives ADD COLUMN running_since timestamptz;

-- A record shows the progress: a change of it is a change of the record (the API's token
-- caches hear of it).
DROP TRIGGER derivatives_notify_change ON derivatives;
CREATE TRIGGER derivatives_notify_change
    AFTER INSERT OR DELETE OR UPDATE OF status, error, error_code, data, remaking, progress
    ON derivatives
    FOR EACH ROW EXECUTE FUNCTION videodrop_notify_derivative();

-- ``wanted_at``: someone waits for this rendition (an on-view transcode, or a transcode
-- whose job died): the relay publishes it first, straight to the transcode queue.
ALTER TABLE derivatives ADD COLUMN wanted_at timestamptz;
