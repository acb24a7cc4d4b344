"""Web sessions and wrong admin credentials, in PostgreSQL (migration 0007), so that every
API worker and machine agrees on them at once: a session ended by one is ended for all, and
the login throttle counts a client's failures wherever they were answered.

A session is known by the SHA-256 of its secret (the secret lives only in the browser's
cookie). Driver errors leave as :class:`videodrop.errors.CatalogUnavailable`.
"""

from __future__ import annotations

import hashlib

from videodrop.catalog import Catalog


def _sha256(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class LoginStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def begin_session(self, secret: str, seconds: float, client: str) -> None:
        """A session that lasts ``seconds`` from now, logged in from ``client``."""
        self.catalog.statement("session_begin", {"sha256": _sha256(secret),
                                                 "seconds": seconds, "client": client})

    def session_alive(self, secret: str) -> bool:
        """The session exists and has not expired."""
        row = self.catalog.statement("session_alive", {"sha256": _sha256(secret)})
        return bool(row and row["alive"])

    def end_session(self, secret: str) -> None:
        self.catalog.statement("session_end", {"sha256": _sha256(secret)})

    def end_all_sessions(self) -> int:
        """Every session ends ("log out everywhere"); how many there were."""
        row = self.catalog.statement("sessions_end_all", {})
        return int(row["ended"]) if row else 0

    def login_failed(self, client: str, interval: float) -> float:
        """Count one wrong credential of ``client``; each is paid off in ``interval``
        seconds. Returns the seconds until all of them are paid off (> 0)."""
        row = self.catalog.statement("login_failed", {"client": client,
                                                      "interval": interval})
        assert row is not None
        return float(row["ahead"])

    def forget_old(self) -> None:
        """Drop expired sessions and paid-off failures (rows nothing reads any more)."""
        self.catalog.statement("sessions_forget_expired", {})
        self.catalog.statement("login_failures_forget_paid", {})
