-- Inbox names as the file system holds them: any bytes but NUL and '/', not necessarily
-- UTF-8 (a Latin-1 name written by an FTP or SMB server for a Windows client). text
-- cannot hold such a name, so origin_path keeps the raw bytes; original_filename and
-- origin keep the decoded, displayable form (videodrop/media.py decode_name).
ALTER TABLE videos ALTER COLUMN origin_path TYPE bytea USING convert_to(origin_path, 'UTF8');

-- A claim is a name of a file: two names of one inode (hard links: cp -al, rsync
-- --link-dest) share device, inode, size and times, and each is a video of its own. The
-- name enters the key by its digest (a path may be longer than an index entry holds); the
-- constraint keeps its name, so ON CONFLICT ON CONSTRAINT videos_claim_key still applies.
ALTER TABLE videos ADD COLUMN claim_path_sha256 bytea
    GENERATED ALWAYS AS (sha256(origin_path)) STORED;
ALTER TABLE videos DROP CONSTRAINT videos_claim_key;
ALTER TABLE videos ADD CONSTRAINT videos_claim_key
    UNIQUE (claim_dev, claim_ino, claim_size, claim_mtime_ns, claim_ctime_ns, claim_path_sha256);
