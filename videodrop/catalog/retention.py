"""Retention's rows (videodrop/retention/): usage per origin, the walks of what a rule may
remove (oldest first), expiring a row, finishing an expired row's removal, and holds.
SQL: ``sql/retention.sql``."""

from __future__ import annotations

from collections.abc import Iterator
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

    def expire(self, video_id: int, *, reason: str, detail: str) -> Video | None:
        """Mark the row expired (its stream link removed first, its derivative rows gone)
        and commit: the first step of a removal, before any file goes. None: the row is no
        longer removable (held, deleted, not ready or failed any more) and stays as it is."""
        params = {"id": video_id, "now": self.clock(), "reason": reason, "detail": detail}
        with self.db.transaction() as tx:
            self._remove_link(tx, video_id)
            row = tx.one("retention_expire", params)
            if row is not None:
                tx.one("retention_forget_derivatives", params)
        if self.after_write is not None:
            self.after_write()
        return Video.from_row(row) if row else None

    def unremoved(self, limit: int = WALK_BATCH) -> list[Video]:
        """Expired rows whose files are not known to be removed yet (oldest id first)."""
        return [Video.from_row(r) for r in self.db.all("retention_unremoved", {"limit": limit})]

    def files_removed(self, video_id: int, *, drop_row: bool) -> None:
        """The second step, after the files went: the tombstone says so, or (``drop_row``)
        the row goes."""
        name = "retention_drop_row" if drop_row else "retention_files_removed"
        self.db.one(name, {"id": video_id, "now": self.clock()})

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
