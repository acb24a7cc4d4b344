"""Numbered plain-SQL migrations, each applied in its own transaction, recorded in a table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from videodrop.errors import CatalogUnavailable, ConfigurationError

_FILE = re.compile(r"^(\d{4})_([\w-]+)\.sql$")
_LOCK_KEY = 0x76_64_72_6F_70  # "vdrop": one migrator at a time


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    folder = resources.files("videodrop").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda mig: mig.version)


class MigrationFailed(ConfigurationError):
    """A migration was refused by the database (a privilege it lacks, an extension that is
    not installed): nothing of that migration stays; the message names it and says why."""


def migrate(database_url: str) -> list[Migration]:
    """Apply what is missing; return what was applied (empty the second time). Raises
    :class:`CatalogUnavailable` when the database cannot be reached and
    :class:`MigrationFailed` when it refuses a migration (the ones before stay applied)."""
    applied: list[Migration] = []
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for mig in available():
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                    done = conn.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = %s", (mig.version,)
                    ).fetchone()
                    if done:
                        continue
                    try:
                        conn.execute(mig.sql.encode())
                    except psycopg.Error as exc:
                        if conn.broken:
                            raise  # the connection went: CatalogUnavailable below
                        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
                        raise MigrationFailed(
                            f"migration {mig.version:04d}_{mig.name} failed: "
                            f"{exc.diag.message_primary or exc}{hint}") from exc
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (mig.version, mig.name),
                    )
                    applied.append(mig)
    except psycopg.OperationalError as exc:
        raise CatalogUnavailable(str(exc).strip()) from exc
    return applied
