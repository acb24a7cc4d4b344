-- A failed video says why twice: a short code from a fixed list (videodrop/errorcodes.py)
-- for programs, and the sentence in processing_error for people.
ALTER TABLE videos ADD COLUMN error_code text;

-- Rows failed before this migration: the code their sentence stands for.
UPDATE videos SET error_code = CASE
    WHEN processing_error = 'empty file' THEN 'empty'
    WHEN processing_error LIKE 'not a media file%' THEN 'not_media'
    WHEN processing_error LIKE 'no video stream%' THEN 'no_video_stream'
    WHEN processing_error LIKE 'no video frames%' THEN 'no_video_frames'
    WHEN processing_error LIKE 'still image%' THEN 'still_image'
    WHEN processing_error LIKE 'truncated%' THEN 'truncated'
    WHEN processing_error LIKE 'timed out%' THEN 'timeout'
    WHEN processing_error = 'upload interrupted' THEN 'upload_interrupted'
    WHEN processing_error = 'stored file is missing' THEN 'missing_file'
    WHEN processing_error LIKE 'internal error%' THEN 'internal'
    ELSE 'unreadable' END
WHERE status = 'failed';

ALTER TABLE videos ADD CONSTRAINT videos_failed_has_code
    CHECK (status <> 'failed' OR error_code IS NOT NULL);
