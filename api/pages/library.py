"""The library page's data: a filtered, searched, sorted, keyset-paged list of videos, the
counts per status, and the files still arriving in the inbox (not yet claimed by a prober).

Its URL (``/`` and ``/library.json`` alike) takes ``status``, ``q``, ``sort`` (one of
videodrop.catalog.SORTS; newest first when not given) and a cursor: ``after`` (the next
page: the rows after that one in the list's order) or ``before`` (the page before)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import falcon

from api.http.params import decode_cursor, encode_cursor
from videodrop import formats, media
from videodrop.catalog import STATUSES, Catalog, Cursor, Sort, Video, VideoFilter
from videodrop.catalog.lists import NEWEST
from videodrop.inboxpolicy import INBOX_ID, INGEST_LOCK, InboxPolicy

PAGE_SIZE = 25
MAX_ARRIVING = 100  # inbox entries shown; the walk stops there
# the sortable columns: (sort key, header), and the direction of a first click on each
SORTABLE = {"name": "Name", "duration": "Duration", "size": "Size", "added": "Added"}
FIRST_DESCENDING = {"name": False, "duration": True, "size": True, "added": True}
# the list's order in words (the table's caption), by sort
SORT_WORDS = {"-added": "newest first", "added": "oldest first", "name": "by name, A to Z",
              "-name": "by name, Z to A", "duration": "shortest first",
              "-duration": "longest first", "size": "smallest first", "-size": "largest first"}


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
    sort: Sort = NEWEST

    @classmethod
    def from_request(cls, req: falcon.Request) -> LibraryQuery:
        """The query of the page's URL. Raises ValueError naming the allowed sorts for an
        unknown ``sort`` (a wrong status, or a broken cursor, shows the first page of
        everything instead)."""
        status = req.get_param("status")
        search = (req.get_param("q") or "").strip()[:200] or None
        raw_sort = req.get_param("sort")
        sort = NEWEST if raw_sort is None else Sort.parse(raw_sort)
        return cls(status=status if status in STATUSES else None, search=search,
                   before=req.get_param("before"), after=req.get_param("after"), sort=sort)

    def url(self, path: str = "/", **changes: str | None) -> str:
        params = {"status": self.status, "q": self.search, "sort": self.sort_param,
                  "after": self.after, "before": self.before, **changes}
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{path}?{query}" if query else path

    def status_url(self, status: str | None) -> str:
        return self.url(status=status, before=None, after=None)

    def sort_url(self, key: str) -> str:
        """The first page sorted by ``key``: the other way round if it is sorted by it
        already, else in the column's first direction (names A to Z, the rest largest,
        longest or newest first)."""
        if self.sort.key == key:
            sort = Sort(key, not self.sort.descending)
        else:
            sort = Sort(key, FIRST_DESCENDING[key])
        return self.url(sort=None if sort == NEWEST else str(sort), before=None, after=None)

    def aria_sort(self, key: str) -> str | None:
        """``aria-sort`` of the column of ``key``: None unless the list is sorted by it."""
        if self.sort.key != key:
            return None
        return "descending" if self.sort.descending else "ascending"

    @property
    def sort_param(self) -> str | None:
        """The ``sort`` of the URL: None for the default order."""
        return None if self.sort == NEWEST else str(self.sort)

    @property
    def sort_words(self) -> str:
        return SORT_WORDS[str(self.sort)]


@dataclass
class LibraryView:
    query: LibraryQuery
    videos: list[Video]
    counts: dict[str, int]
    arriving: list[Arriving] = field(default_factory=list)
    previous_url: str | None = None
    next_url: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _cursor(raw: str | None, sort: Sort) -> Cursor | None:
    if not raw:
        return None
    try:
        return decode_cursor(raw, sort)
    except falcon.HTTPError:
        return None  # a hand-edited URL: show the first page


def load(catalog: Catalog, query: LibraryQuery, inbox: Path | None,
         ignore: tuple[str, ...] = (), extensions: frozenset[str] = formats.EXTENSIONS,
         *, max_size: int | None = None, settle: float = 2.0) -> LibraryView:
    sort = query.sort
    after, before = _cursor(query.after, sort), _cursor(query.before, sort)
    if after is not None:
        before = None
    filters = VideoFilter(status=query.status, search=query.search)
    rows = catalog.list_page(filters, limit=PAGE_SIZE + 1, sort=sort, after=after,
                             before=before)
    more = len(rows) > PAGE_SIZE
    videos = rows[-PAGE_SIZE:] if before is not None else rows[:PAGE_SIZE]
    view = LibraryView(query, videos, catalog.count_by_status(filters.without_status()))
    if videos:
        first, last = videos[0], videos[-1]
        if after is not None or (before is not None and more):
            view.previous_url = query.url(before=encode_cursor(sort.key_of(first), sort),
                                          after=None)
        if before is not None or more:
            view.next_url = query.url(after=encode_cursor(sort.key_of(last), sort),
                                      before=None)
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
            if name == INGEST_LOCK or name.startswith(INBOX_ID):
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
