"""The library page's data: a filtered, searched, keyset-paged list of videos, the counts
per status, and the files still arriving in the inbox (not yet claimed by a prober)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import falcon

from api.http.params import decode_cursor, encode_cursor
from videodrop import formats, media
from videodrop.catalog import STATUSES, Catalog, Video, VideoFilter
from videodrop.inboxpolicy import INGEST_LOCK, InboxPolicy

PAGE_SIZE = 25
MAX_ARRIVING = 100  # inbox entries shown; the walk stops there


@dataclass(frozen=True)
class Arriving:
    path: str  # relative to the inbox, decoded (media.display)
    size: int
    age: float  # seconds since the last write
    temporary: bool  # a name ingest ignores until it is renamed (rsync, browsers, .part)
    refused: str | None = None  # why the inbox policy refuses it (it stays there), or None


@dataclass(frozen=True)
class LibraryQuery:
    status: str | None = None
    search: str | None = None
    before: str | None = None
    after: str | None = None

    @classmethod
    def from_request(cls, req: falcon.Request) -> LibraryQuery:
        status = req.get_param("status")
        search = (req.get_param("q") or "").strip()[:200] or None
        return cls(status=status if status in STATUSES else None, search=search,
                   before=req.get_param("before"), after=req.get_param("after"))

    def url(self, path: str = "/", **changes: str | None) -> str:
        params = {"status": self.status, "q": self.search, "before": self.before,
                  "after": self.after, **changes}
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{path}?{query}" if query else path

    def status_url(self, status: str | None) -> str:
        return self.url(status=status, before=None, after=None)


@dataclass
class LibraryView:
    query: LibraryQuery
    videos: list[Video]
    counts: dict[str, int]
    arriving: list[Arriving] = field(default_factory=list)
    newer_url: str | None = None
    older_url: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _cursor(raw: str | None) -> tuple[datetime, int] | None:
    if not raw:
        return None
    try:
        return decode_cursor(raw)
    except falcon.HTTPError:
        return None  # a hand-edited URL: show the first page


def load(catalog: Catalog, query: LibraryQuery, inbox: Path | None,
         ignore: tuple[str, ...] = (), extensions: frozenset[str] = formats.EXTENSIONS,
         *, max_size: int | None = None, settle: float = 2.0) -> LibraryView:
    before, after = _cursor(query.before), _cursor(query.after)
    if after is not None:
        before = None
    filters = VideoFilter(status=query.status, search=query.search)
    rows = catalog.list_page(filters, limit=PAGE_SIZE + 1, before=before, after=after)
    more = len(rows) > PAGE_SIZE
    videos = rows[-PAGE_SIZE:] if after is not None else rows[:PAGE_SIZE]
    view = LibraryView(query, videos, catalog.count_by_status(filters.without_status()))
    if videos:
        first, last = videos[0], videos[-1]
        if before is not None or (after is not None and more):
            view.newer_url = query.url(after=encode_cursor(first.created_at, first.id),
                                       before=None)
        if after is not None or more:
            view.older_url = query.url(before=encode_cursor(last.created_at, last.id),
                                       after=None)
    if before is None and after is None and inbox is not None:
        view.arriving = arriving(inbox, ignore, extensions, max_size=max_size, settle=settle)
    return view


def arriving(inbox: Path, ignore: tuple[str, ...] = (),
             extensions: frozenset[str] = formats.EXTENSIONS, limit: int = MAX_ARRIVING,
             now: float | None = None, *, max_size: int | None = None,
             settle: float = 2.0) -> list[Arriving]:
    """Files in the inbox, newest write first: each one is still arriving or waiting for a
    prober (a claimed file is moved out of the inbox), or refused by the inbox policy
    (videodrop/inboxpolicy.py: by its name at once; empty, too large or sparse once it has
    been still for ``settle`` seconds). Bounded, and silent when the inbox is not readable
    from here (the API may run on another host)."""
    now = time.time() if now is None else now
    policy = InboxPolicy(ignore, extensions, max_size)
    found: list[Arriving] = []
    seen = 0
    for folder, dirs, files in os.walk(inbox, onerror=lambda exc: None):
        dirs.sort()
        for name in sorted(files):
            if name == INGEST_LOCK:
                continue  # the ingest's, never a file to show
            seen += 1
            if seen > limit:
                break
            path = Path(folder) / name
            try:
                st = path.lstat()
            except OSError:
                continue  # claimed while we looked
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            age = max(0.0, now - st.st_mtime)
            refusal = policy.by_name(name) or (policy.by_path(path) if age >= settle else None)
            found.append(Arriving(media.display(str(path.relative_to(inbox))), st.st_size,
                                  age, policy.ignored(name),
                                  refusal.reason if refusal is not None else None))
        if seen > limit:
            break
    return sorted(found, key=lambda a: a.age)
