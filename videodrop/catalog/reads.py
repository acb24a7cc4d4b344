"""Reading the catalog: one row by id or by token, lists and counts (one builder:
:mod:`videodrop.catalog.lists`), ids. SQL: ``sql/reads.sql``, ``sql/lists.sql``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from psycopg import sql

from videodrop.catalog.base import CatalogBase
from videodrop.catalog.lists import (
    NEWEST,
    Cursor,
    Sort,
    VideoFilter,
    counts_statement,
    page_statement,
)
from videodrop.catalog.rows import STATUSES, Video, video_columns
from videodrop.sql import query

MAX_TOKEN_CHARS = 128  # longer is no token of ours: not looked up


class Reads(CatalogBase):
    def by_id(self, video_id: int) -> Video | None:
        """The video with this id, its derivatives' states included; None: no such row."""
        row = self.db.one(_by_id_statement(), {"id": video_id})
        return Video.from_row(row) if row else None

    def lookup_token(self, token: str) -> Video | None:
        """The video whose token this is, unexpired; None otherwise. The token endpoints'
        hot path: one round trip (autocommit) and only the columns of a Video."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        row = self.db.read_one(_lookup_statement(), {"token": token, "now": self.clock()})
        return Video.from_row(row) if row else None

    def list_page(self, filters: VideoFilter, *, limit: int, sort: Sort = NEWEST,
                  after: Cursor | None = None, before: Cursor | None = None) -> list[Video]:
        """At most ``limit`` videos matching ``filters`` in ``sort``'s order: those after
        the cursor ``after``, or (the page before) those before ``before``; the first page
        when both are None (:mod:`videodrop.catalog.lists`)."""
        statement, params = page_statement(filters, limit=limit, sort=sort, after=after,
                                           before=before)
        videos = [Video.from_row(r) for r in self.db.all(statement, params)]
        return videos[::-1] if after is None and before is not None else videos

    def count_by_status(self, filters: VideoFilter | None = None) -> dict[str, int]:
        """Videos per status (every status, 0 when none) of those matching ``filters``."""
        statement, params = counts_statement(filters or VideoFilter())
        out = dict.fromkeys(STATUSES, 0)
        out.update({r["status"]: r["n"] for r in self.db.all(statement, params)})
        return out

    def ids_with_status(self, status: str) -> list[int]:
        return [r["id"] for r in self.db.all("ids_by_status", {"status": status})]

    def stored_keys(self) -> dict[str, str | None]:
        """The store keys of every original the catalog says is stored (``processing`` and
        ``ready`` rows) → its SHA-256 (64 hex digits; None until the prober recorded it)."""
        return {r["stored_path"]: r["sha256"] for r in self.db.all("stored_keys", {})}

    def named_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` (stored paths) that a row names, whatever its status."""
        return {r["stored_path"] for r in self.db.all("stored_paths_known",
                                                        {"keys": list(keys)})}

    def known_ids(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that name a video."""
        return {r["id"] for r in self.db.all("ids_known", {"ids": list(ids)})}


@functools.cache
def _by_id_statement() -> sql.Composed:
    return sql.SQL(query("video_by_id")).format(columns=video_columns())


@functools.cache
def _lookup_statement() -> str:
    """``lookup_token`` with the Video columns filled in, composed once."""
    return sql.SQL(query("lookup_token")).format(columns=video_columns()).as_string()
