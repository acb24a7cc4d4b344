"""What every part of the catalog shares: its connector, clock, token factory, stream
links and the hook called after a token-changing write."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

from psycopg import sql
from psycopg_pool import ConnectionPool

from videodrop.catalog.connector import Connector, Row
from videodrop.links import StreamLinks
from videodrop.tokens import Clock, TokenFactory, new_token, utcnow


class CatalogBase:
    def __init__(self, pool: ConnectionPool | Connector, *, clock: Clock = utcnow,
                 new_token: TokenFactory = new_token, links: StreamLinks | None = None
                 ) -> None:
        self.db = pool if isinstance(pool, Connector) else Connector(pool)
        self.clock = clock
        self.new_token = new_token
        # VIDEODROP_STREAM_LINKS: nginx serves /stream/ from these (videodrop/links.py)
        self.links = links
        # Called after rotate/revoke/delete commit (the API's token cache forgets then).
        self.after_write: Callable[[], None] | None = None

    @classmethod
    def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4,
                **kwargs: Any) -> Self:
        """A catalog on a new pool of ``min_size``..``max_size`` connections to ``url``
        (opened in the background: the first statement waits for it)."""
        return cls(Connector.connect(url, min_size=min_size, max_size=max_size), **kwargs)

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        """One round trip; :class:`CatalogUnavailable` when the database does not answer."""
        self.db.one(sql.SQL("SELECT 1"), {})

    def statement(self, name: str, params: Mapping[str, Any]) -> Row | None:
        """One named statement (``videodrop/sql/*.sql``) in a transaction of its own: its
        first row, or None. For the catalog's neighbours (videodrop/websessions.py)."""
        return self.db.one(name, params)
