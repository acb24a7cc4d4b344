-- The web pages' login sessions, kept server-side so that logging out ends them at once for
-- every API worker and machine (api/session.py), and the wrong admin credentials of each
-- client address, for the login throttle (api/throttle.py).

-- One row per logged-in browser. The cookie holds the session's secret; the row holds its
-- SHA-256 only, so the table alone opens no session. Logging out deletes the row.
CREATE TABLE web_sessions (
    secret_sha256 bytea PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    client text NOT NULL
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

-- The throttle's state per client address (GCRA): each wrong credential moves paid_at
-- VIDEODROP_LOGIN_RATE's interval later; a client whose paid_at is further ahead than its
-- burst allows is refused until then. A row whose paid_at has passed is forgotten.
CREATE TABLE login_failures (
    client text PRIMARY KEY,
    paid_at timestamptz NOT NULL
);
CREATE INDEX login_failures_paid_idx ON login_failures (paid_at);
