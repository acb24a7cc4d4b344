-- Statements of the web sessions and the login throttle (videodrop/websessions.py).

-- name: session_begin
-- Committed without waiting for the WAL flush (synchronous_commit off for this transaction
-- only): a server crash can at worst lose a login made a moment before, and the right login
-- does not wait for a disk write. Logging out waits for it, as everything else.
INSERT INTO web_sessions (secret_sha256, expires_at, client)
SELECT %(sha256)s, now() + make_interval(secs => %(seconds)s), %(client)s
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait

-- name: session_alive
SELECT expires_at > now() AS alive FROM web_sessions WHERE secret_sha256 = %(sha256)s

-- name: session_end
DELETE FROM web_sessions WHERE secret_sha256 = %(sha256)s

-- name: sessions_end_all
WITH gone AS (DELETE FROM web_sessions RETURNING 1) SELECT count(*) AS ended FROM gone

-- name: sessions_forget_expired
DELETE FROM web_sessions WHERE expires_at < now()

-- name: login_failed
-- One more wrong credential of a client: paid_at moves %(interval)s seconds on from itself
-- or from now, whichever is later. Returns how far ahead of now it is (seconds).
INSERT INTO login_failures AS f (client, paid_at)
VALUES (%(client)s, now() + make_interval(secs => %(interval)s))
ON CONFLICT (client) DO UPDATE
SET paid_at = greatest(f.paid_at, now()) + make_interval(secs => %(interval)s)
RETURNING extract(epoch FROM f.paid_at - now())::float8 AS ahead

-- name: login_failures_forget_paid
DELETE FROM login_failures WHERE paid_at < now()
