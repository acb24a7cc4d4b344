-- Objects a media store may still hold that no row will name (docs/storage.md,
-- "Leftovers"): the first key of an upload whose late source_id moved it (noted before
-- the row moves on, forgotten once the old object is deleted), and a delete the store
-- failed. The API's housekeeping deletes each object once the note is older than an hour
-- and no row's stored_path names the key, then forgets it; a key a row names is only
-- forgotten (that row's removal deletes it).
CREATE TABLE store_leftovers (
    key text PRIMARY KEY,
    video_id bigint,
    since timestamptz NOT NULL
);
