"""Retention's rows (videodrop/retention/): usage per origin, the walks of what a rule may
remove (oldest first), expiring a row, finishing an expired row's removal, and holds.
SQL: ``sql/retention.sql``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from videodrop.catalog.rows import Video
from videodrop.catalog.streamlinks import StreamLinkSync
from videodrop.errors import Conflict

#: Rows fetched per round trip of a walk.
WALK_BATCH = 5000


@dataclass(frozen=True)
class Usage:
    """One origin's rows that are on the store (every status but ``expired``): bytes (sum
    of ``size``), files, and the oldest one's ``created_at``."""

    origin: str
    bytes: int
    files: int
    oldest: datetime | None


@dataclass(frozen=True)
class Candidate:
    """A row a rule may remove (ready or failed, not held): id, origin, size in bytes (0
    when unknown), created_at."""

    id: int
    origin: str
    size: int
    created_at: datetime


class RetentionRows(StreamLinkSync):
    def usage(self) -> list[Usage]:
        """Every origin with rows on the store, by name."""
        return [Usage(r["origin"], r["bytes"], r["files"], r["oldest"])
                for r in self.db.all("retention_usage", {})]

    def walk(self, before: datetime, origin: str | None = None) -> Iterator[Candidate]:
        """Rows a rule may remove, created before ``before``, oldest first (created_at,
        then id): of ``origin``, or of every origin when None. Fetched
        :data:`WALK_BATCH` at a time as the caller goes on (stop early: nothing more is
        read)."""
        name = "retention_walk_all" if origin is None else "retention_walk_origin"
        after_at: datetime | str = "-infinity"
        after_id = 0
        while True:
            rows = self.db.all(name, {"origin": origin, "before": before, "limit": WALK_BATCH,
                                      "after_at": after_at, "after_id": after_id})
            for r in rows:
                yield Candidate(r["id"], r["origin"], r["size"] or 0, r["created_at"])
            if len(rows) < WALK_BATCH:
                return
            after_at, after_id = rows[-1]["created_at"], rows[-1]["id"]

    def expire(self, chosen: Sequence[tuple[int, str, str]]) -> list[Video]:
        """Mark the rows ``(id, rule, sentence)`` expired (their stream links removed
        first, their derivative rows gone) and commit: the first step of a removal, before
        any file goes. Returns the rows expired; one no longer removable (held, deleted,
        not ready or failed any more) is left as it is and not returned."""
        ids = [c[0] for c in chosen]
        params = {"ids": ids, "reasons": [c[1] for c in chosen],
                  "details": [c[2] for c in chosen], "now": self.clock()}
        with self.db.transaction() as tx:
            for video_id in ids:
                self._remove_link(tx, video_id)
            rows = tx.all("retention_expire", params)
            tx.one("retention_forget_derivatives", {"ids": [r["id"] for r in rows]})
        if self.after_write is not None:
            self.after_write()
        return [Video.from_row(r) for r in rows]

    def unremoved(self, limit: int = WALK_BATCH) -> list[Video]:
        """Expired rows whose files are not known to be removed yet (oldest id first)."""
        return [Video.from_row(r) for r in self.db.all("retention_unremoved", {"limit": limit})]

    def files_removed(self, ids: Sequence[int], *, drop_rows: bool) -> None:
        """The second step, after the files of expired rows ``ids`` went: the tombstones
        say so, or (``drop_rows``) the rows go."""
        name = "retention_drop_rows" if drop_rows else "retention_files_removed"
        self.db.one(name, {"ids": list(ids), "now": self.clock()})

    def hold(self, video_id: int) -> Video | None:
        """Exempt the video from every retention rule (kept when already held). None: no
        such video; :class:`Conflict` when it has expired already."""
        row = self.db.one("hold_video", {"id": video_id, "now": self.clock()})
        if row is None:
            if self.db.one("get_by_id", {"id": video_id}) is not None:
                raise Conflict("the video has expired; its files are gone")
            return None
        return Video.from_row(row)

    def release(self, video_id: int) -> Video | None:
        """Lift the hold: the rules apply again. None: no such video."""
        row = self.db.one("release_video", {"id": video_id, "now": self.clock()})
        return Video.from_row(row) if row else None
