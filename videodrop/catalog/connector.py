"""The catalog's one place that touches the driver (psycopg 3 and its pool).

A connection that cannot be had or breaks leaves as :class:`CatalogUnavailable`; a unique
constraint violated leaves as :class:`Duplicate` naming the constraint. Every other module
of the catalog runs statements through :class:`Connector` and never sees a driver error."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from videodrop.errors import CatalogUnavailable, Conflict
from videodrop.sql import query

Row = dict[str, Any]
Statement = str | sql.Composed | sql.SQL

#: A connection given back longer ago than this is checked (one round trip) before reuse.
IDLE_CHECK_SECONDS = 2.0


class Duplicate(Conflict):
    """A unique constraint refused the write; ``constraint`` is its name."""

    def __init__(self, constraint: str, message: str) -> None:
        super().__init__(message)
        self.constraint = constraint


_last_used: dict[int, float] = {}


def _stamp(conn: psycopg.Connection[Any]) -> None:
    """Pool ``reset`` hook: remember when the connection was last given back."""
    _last_used[id(conn)] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """Pool ``check`` hook: a round trip only for a connection idle longer than
    :data:`IDLE_CHECK_SECONDS` (a server restart breaks idle ones); one in steady use is
    handed out as it is, so a single-statement read stays one round trip."""
    if time.monotonic() - _last_used.get(id(conn), 0.0) > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


@contextlib.contextmanager
def driver_errors() -> Iterator[None]:
    """Turn the driver's errors into the catalog's (see the module docstring)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name or ""
        raise Duplicate(constraint, str(exc).strip()) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise CatalogUnavailable(str(exc).strip() or type(exc).__name__) from exc
    except TimeoutError as exc:  # the pool could not hand out a connection in time
        raise CatalogUnavailable(f"no database connection: {exc}") from exc


class Connector:
    """A connection pool and the ways the catalog runs statements on it. Statements are
    names of ``videodrop/sql/*.sql`` blocks or composed SQL (run unprepared: a custom plan
    for the actual values)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @classmethod
    def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4) -> Connector:
        pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                              kwargs={"row_factory": dict_row, "autocommit": False},
                              # a connection broken by a server restart is replaced
                              # before it is handed out, not discovered by a query
                              check=_check_if_idle, reset=_stamp, timeout=10)
        pool.open(wait=False)
        return cls(pool)

    def close(self) -> None:
        self.pool.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction, committed when the block ends without an exception."""
        with driver_errors(), self.pool.connection() as conn, conn.transaction():
            yield Transaction(conn)

    def one(self, statement: Statement, params: Mapping[str, Any]) -> Row | None:
        """The first row of ``statement`` in a transaction of its own (None: no row, or a
        statement that returns none)."""
        with self.transaction() as tx:
            return tx.one(statement, params)

    def all(self, statement: Statement, params: Mapping[str, Any]) -> list[Row]:
        with self.transaction() as tx:
            return tx.all(statement, params)

    def read_one(self, statement: str, params: Mapping[str, Any]) -> Row | None:
        """The first row of a single SELECT (SQL text, not a name), run without
        BEGIN/COMMIT (autocommit): one round trip."""
        with driver_errors(), self.pool.connection() as conn:
            conn.autocommit = True
            try:
                row: Any = conn.execute(statement, params).fetchone()
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.autocommit = False
        return row

    @contextlib.contextmanager
    def advisory_lock(self, space: int, key: int) -> Iterator[bool]:
        """A session advisory lock on (``space``, ``key``), tried once, held for the block:
        True if we got it. It goes with the connection if the process dies."""
        with driver_errors(), self.pool.connection() as conn:
            conn.autocommit = True
            got: Any = conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok",
                                    (space, key)).fetchone()
            locked = bool(got and got["ok"])
            try:
                yield locked
            finally:
                if locked:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (space, key))
                conn.autocommit = False


class Transaction:
    """Statements inside one :meth:`Connector.transaction`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _run(self, statement: Statement, params: Mapping[str, Any] | None) -> Any:
        if isinstance(statement, str):
            return self.conn.execute(query(statement), params)
        return self.conn.execute(statement, params, prepare=False)

    def one(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Row | None:
        cursor = self._run(statement, params)
        return cursor.fetchone() if cursor.description is not None else None

    def all(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._run(statement, params).fetchall()
