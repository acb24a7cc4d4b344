"""The one builder of video lists: a :class:`VideoFilter` and a keyset page in, one
statement out. The admin API's ``GET /api/videos`` and the library page both use it.

Lists are newest first by ``(created_at, id)``. A page starts after a keyset cursor: the
``(created_at, id)`` of the last row of the page before (``before``), or of the first row
of the page after (``after``: the page before it, read oldest first and turned around).

The WHERE clause is put together from fixed fragments (``sql/lists.sql``), one per filter
given, so the planner sees plain equalities and ranges that match an index instead of
``(x IS NULL OR col = x)``, which a generic plan cannot serve from an index; statements are
run unprepared (a custom plan for the actual values). With ``origin`` the rows come from
``video_folders`` (migration 0008): a folder and everything under it, with status and list
order in one index, so that a page is an index range scan at any depth and for any
number of subfolders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from videodrop.catalog.rows import video_columns
from videodrop.sql import query

Cursor = tuple[datetime, int]  # (created_at, id) of a row


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE with ``\\``, ``%`` and ``_`` escaped: a plain substring."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class VideoFilter:
    """Which videos a list holds; None is "any". All given must match.

    ``origin``: a folder (``upload``, ``inbox``, ``inbox/cam1``) and everything under it;
    ``source_id``: exactly; ``search``: a substring, any case, of the name, the original
    file name, the source_id or the origin; ``created_after`` (inclusive) and
    ``created_before`` (exclusive): a window of ``created_at``."""

    status: str | None = None
    origin: str | None = None
    source_id: str | None = None
    search: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def without_status(self) -> VideoFilter:
        return VideoFilter(None, self.origin, self.source_id, self.search,
                           self.created_after, self.created_before)


def _where(filters: VideoFilter, params: dict[str, Any], extra: list[str]
           ) -> tuple[sql.Composable, sql.Composable, sql.Identifier]:
    """(FROM, WHERE, alias of the table holding status and list order)."""
    given: list[str] = []
    if filters.origin is not None:
        params["origin"] = filters.origin
        given.append("folder")
    for name in ("status", "source_id", "created_after", "created_before"):
        value = getattr(filters, name)
        if value is not None:
            params[name] = value
            given.append(name)
    if filters.search is not None:
        params["pattern"] = like_pattern(filters.search)
        given.append("search")
    given += extra
    by_folder = filters.origin is not None
    source = sql.SQL(query("list_from_folders" if by_folder else "list_from_videos"))
    keys = sql.Identifier("k" if by_folder else "v")
    names = {"k": keys, "v": sql.Identifier("v")}
    if not given:
        return source, sql.SQL(""), keys
    where = sql.SQL("WHERE ") + sql.SQL(" AND ").join(
        sql.SQL(query(f"list_if_{name}")).format(**names) for name in given)
    return source, where, keys


def page_statement(filters: VideoFilter, *, limit: int, before: Cursor | None = None,
                   after: Cursor | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of one page of at most ``limit`` rows (the columns of a Video) and its
    parameters. ``after`` (when ``before`` is None) reads oldest first: the caller turns
    the rows around. Both None: the first page."""
    params: dict[str, Any] = {"limit": limit}
    extra: list[str] = []
    cursor = before if before is not None else after
    if cursor is not None:
        params["cursor_at"], params["cursor_id"] = cursor
        extra.append("before" if before is not None else "after")
    source, where, keys = _where(filters, params, extra)
    order = "list_oldest" if before is None and after is not None else "list_newest"
    statement = sql.SQL(query(order)).format(columns=video_columns("v"), source=source,
                                             where=where, k=keys)
    return statement, params


def counts_statement(filters: VideoFilter) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of the videos per status (rows of ``status``, ``n``) matching
    ``filters``, and its parameters."""
    params: dict[str, Any] = {}
    source, where, keys = _where(filters, params, [])
    return sql.SQL(query("list_counts")).format(source=source, where=where, k=keys), params
