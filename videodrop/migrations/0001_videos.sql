-- The catalog: one row per video, whichever way it arrived.
CREATE TABLE videos (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id               text NOT NULL,
    name                    text NOT NULL,
    description             text NOT NULL DEFAULT '',
    status                  text NOT NULL DEFAULT 'processing'
                            CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    -- the capability: NULL once revoked; compared through the unique index only
    access_token            text,
    token_expires_at        timestamptz,
    original_filename       text NOT NULL,
    origin                  text NOT NULL,          -- 'upload', 'inbox' or 'inbox/<subfolder>'
    origin_path             text,                   -- path inside the inbox, for inbox files
    stored_path             text NOT NULL,          -- relative to MEDIA_ROOT
    size                    bigint,
    sha256                  text,
    format                  text,
    duration                double precision,
    resolution              text,
    fps                     double precision,
    codec                   text,
    audio_codec             text,
    metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
    ffprobe                 jsonb,
    processing_started_at   timestamptz,
    processing_completed_at timestamptz,
    processing_error        text,
    attempts                integer NOT NULL DEFAULT 0,
    -- claim key of a watch-folder file: a re-published or redelivered message lands here.
    -- ctime is in it because nobody can set it: a new file that reuses a moved file's inode
    -- with the same size and a preserved mtime (cp -p) is still a new file.
    claim_dev               bigint,
    claim_ino               bigint,
    claim_size              bigint,
    claim_mtime_ns          bigint,
    claim_ctime_ns          bigint,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT videos_source_id_key UNIQUE (source_id),
    CONSTRAINT videos_access_token_key UNIQUE (access_token),
    CONSTRAINT videos_claim_key UNIQUE (claim_dev, claim_ino, claim_size, claim_mtime_ns,
                                        claim_ctime_ns),
    CONSTRAINT videos_stored_path_key UNIQUE (stored_path)
);

CREATE INDEX videos_status_id_idx ON videos (status, id DESC);
CREATE INDEX videos_origin_id_idx ON videos (origin, id DESC);
CREATE INDEX videos_created_at_idx ON videos (created_at DESC, id DESC);
