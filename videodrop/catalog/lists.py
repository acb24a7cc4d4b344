"""The one builder of video lists: a :class:`VideoFilter`, a :class:`Sort` and a keyset
page in, one statement out. The admin API's ``GET /api/videos`` and the library page both
use it.

A list is in the order of its sort's key and then ``id`` (the tiebreak), both the same way:
``-added`` (the default: newest first), ``added``, ``name``, ``-name``, ``duration``,
``-duration``, ``size``, ``-size`` (``-``: descending). An unknown duration or size (not
probed yet, failed) counts as -1: first ascending, last descending. A page starts at a
keyset cursor, the ``(key, id)`` of a row (:meth:`Sort.key_of`): ``after`` it (the next
page), or ``before`` it (the page before: read the other way and turned around by the
caller).

The WHERE clause is put together from fixed fragments (``sql/lists.sql``), one per filter
given, so the planner sees plain equalities and ranges that match an index instead of
``(x IS NULL OR col = x)``, which a generic plan cannot serve from an index; statements are
run unprepared (a custom plan for the actual values). With ``origin`` the rows come from
``video_folders`` (migration 0008): a folder and everything under it, with status and the
``added`` order in one index, so that such a page is an index range scan at any depth and
for any number of subfolders. Each other sort has an index of ``(key, id)`` on ``videos``
(migration 0010); ``q`` has a trigram index (migration 0011)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from videodrop.catalog.rows import Video, video_columns
from videodrop.sql import query

SORT_KEYS = ("added", "name", "duration", "size")
#: every value a ``sort`` parameter may take, the default first
SORTS = ("-added", "added", "name", "-name", "duration", "-duration", "size", "-size")
UNKNOWN = -1  # the key of an unknown duration or size (list_key_duration, list_key_size)

Key = datetime | str | float | int
# (sort key, id) of a row; a key of None (a name sort only) is the name of row ``id``: the
# page is empty if that row is gone
Cursor = tuple[Key | None, int]


@dataclass(frozen=True)
class Sort:
    """``key`` (one of :data:`SORT_KEYS`), ascending or descending."""

    key: str = "added"
    descending: bool = True

    @classmethod
    def parse(cls, text: str) -> Sort:
        """``name``, ``-size``... (:data:`SORTS`); ValueError names the allowed ones."""
        if text not in SORTS:
            raise ValueError(f"sort is one of {', '.join(SORTS)}")
        return cls(text.lstrip("-"), text.startswith("-"))

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.key}"

    def key_of(self, video: Video) -> Cursor:
        """The cursor of ``video`` in this order: (its key, its id)."""
        value: Key
        if self.key == "added":
            value = video.created_at
        elif self.key == "name":
            value = video.name
        elif self.key == "duration":
            value = float(UNKNOWN) if video.duration is None else video.duration
        else:
            value = UNKNOWN if video.size is None else video.size
        return value, video.id


NEWEST = Sort()


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


def _names(filters: VideoFilter) -> dict[str, sql.Identifier]:
    """The tables the fragments name: ``k`` holds status and the ``added`` order (videos,
    or video_folders with ``origin``), ``v`` is videos."""
    return {"k": sql.Identifier("k" if filters.origin is not None else "v"),
            "v": sql.Identifier("v")}


def _where(filters: VideoFilter, params: dict[str, Any],
           extra: list[sql.Composable] | None = None) -> tuple[sql.Composable, sql.Composable]:
    """(FROM, WHERE) of ``filters``; ``extra``: conditions of the caller (:func:`_names`)."""
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
    source = sql.SQL(query("list_from_folders" if filters.origin is not None
                           else "list_from_videos"))
    names = _names(filters)
    conditions: list[sql.Composable] = [sql.SQL(query(f"list_if_{name}")).format(**names)
                                        for name in given]
    conditions += extra or []
    if not conditions:
        return source, sql.SQL("")
    return source, sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions)


def page_statement(filters: VideoFilter, *, limit: int, sort: Sort = NEWEST,
                   after: Cursor | None = None, before: Cursor | None = None
                   ) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of one page of at most ``limit`` rows (the columns of a Video) in
    ``sort``'s order, and its parameters: the rows after ``after``, or (when ``after`` is
    None) the rows before ``before``, read the other way: the caller turns them around.
    Both None: the first page."""
    params: dict[str, Any] = {"limit": limit}
    backwards = after is None and before is not None
    descending = sort.descending != backwards
    cursor = after if after is not None else before
    names = _names(filters)
    key = sql.SQL(query(f"list_key_{sort.key}")).format(**names)
    extra: list[sql.Composable] = []
    if cursor is not None:
        value: sql.Composable = sql.SQL("%(cursor_key)s")
        if cursor[0] is None:  # a name cursor without the name
            value = sql.SQL(query("list_name_of_cursor_row"))
        else:
            params["cursor_key"] = cursor[0]
        params["cursor_id"] = cursor[1]
        extra.append(sql.SQL(query("list_if_cursor")).format(
            key=key, op=sql.SQL("<" if descending else ">"), value=value, **names))
    source, where = _where(filters, params, extra)
    statement = sql.SQL(query("list_page")).format(
        columns=video_columns("v"), source=source, where=where, key=key,
        order=sql.SQL("DESC" if descending else "ASC"), **names)
    return statement, params


def counts_statement(filters: VideoFilter) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of the videos per status (rows of ``status``, ``n``) matching
    ``filters``, and its parameters."""
    params: dict[str, Any] = {}
    source, where = _where(filters, params)
    return sql.SQL(query("list_counts")).format(source=source, where=where,
                                                **_names(filters)), params
