-- Retention (videodrop/retention/, docs/operations.md "Retention and quotas").
--
-- A video that a rule removed keeps its row as a tombstone: status 'expired', its metadata
-- kept, when (expired_at) and why (expired_reason: the rule, expired_detail: the sentence).
-- The row is marked expired and committed before its files go; files_removed_at says the
-- files are gone, so a pass after a crash finishes the rows expired without it.
-- held_at: an operator's hold (POST /api/videos/{id}/hold) exempts the video from every rule.
ALTER TABLE videos DROP CONSTRAINT videos_status_check;
ALTER TABLE videos ADD CONSTRAINT videos_status_check
    CHECK (status IN ('uploading', 'processing', 'ready', 'failed', 'expired'));

ALTER TABLE videos
    ADD COLUMN held_at          timestamptz,
    ADD COLUMN expired_at       timestamptz,
    ADD COLUMN expired_reason   text,
    ADD COLUMN expired_detail   text,
    ADD COLUMN files_removed_at timestamptz;

ALTER TABLE videos ADD CONSTRAINT videos_expired_says_why
    CHECK (status <> 'expired' OR (expired_at IS NOT NULL AND expired_reason IS NOT NULL));

-- What a rule may remove, oldest first within an origin: ready or failed rows that no hold
-- exempts. Every walk of retention is a range of it (the global one merges the origins').
CREATE INDEX videos_retention_origin_idx ON videos (origin, created_at, id) INCLUDE (size)
    WHERE status IN ('ready', 'failed') AND held_at IS NULL;
-- Rows expired whose files a pass has still to remove (a crash between the two steps).
CREATE INDEX videos_expired_unremoved_idx ON videos (id)
    WHERE status = 'expired' AND files_removed_at IS NULL;
