"""Retention's rows (videodrop/retention/): usage per origin, the ends of what each rule
removes (found in SQL with running totals, oldest first), the plan's videos in batches,
expiring rows, finishing an expired row's removal, and holds. SQL: ``sql/retention.sql``.

A row "a rule may remove" is ready or failed, not held, of an origin that is not kept, and
created before its origin's ``min_age`` (:class:`Bounds` ``befores``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from videodrop.catalog.rows import Video
from videodrop.catalog.streamlinks import StreamLinkSync
from videodrop.errors import Conflict

#: Rows fetched per round trip when the plan's videos are listed.
BATCH = 5000
#: Before every created_at: "no boundary".
NEVER = datetime(1, 1, 2, tzinfo=UTC)
Key = tuple[datetime, int]  # a row's place in the oldest-first order: (created_at, id)
START: Key = (NEVER, 0)


@dataclass(frozen=True)
class Usage:
    """One origin's rows that are on the store (every status but ``expired``): bytes (sum
    of ``size``), files, and the oldest one's ``created_at``."""

    origin: str
    bytes: int
    files: int
    oldest: datetime | None


@dataclass
class Bounds:
    """The removable origins of a plan and where each one's own removals end, as arrays
    in step: origin, ``before`` (rows created before it may go), ``cutoff`` (rows created
    before it go: max_age; :data:`NEVER` for none) and the quota's end (the last row it
    takes, :data:`START` for none)."""

    origins: list[str] = field(default_factory=list)
    befores: list[datetime] = field(default_factory=list)
    cutoffs: list[datetime] = field(default_factory=list)
    quota_ends: list[Key] = field(default_factory=list)

    def add(self, origin: str, before: datetime, cutoff: datetime, quota_end: Key) -> None:
        self.origins.append(origin)
        self.befores.append(before)
        self.cutoffs.append(cutoff)
        self.quota_ends.append(quota_end)

    def params(self) -> dict[str, Any]:
        return {"origins": self.origins, "befores": self.befores, "cutoffs": self.cutoffs,
                "qb_ats": [k[0] for k in self.quota_ends],
                "qb_ids": [k[1] for k in self.quota_ends]}


@dataclass(frozen=True)
class Chosen:
    """A video of a plan: id, origin, size in bytes (0 when unknown), created_at, rule."""

    id: int
    origin: str
    size: int
    created_at: datetime
    rule: str


class RetentionRows(StreamLinkSync):
    def usage(self) -> list[Usage]:
        """Every origin with rows on the store, by name."""
        return [Usage(r["origin"], r["bytes"], r["files"], r["oldest"])
                for r in self.db.all("retention_usage", {})]

    def quota_end(self, origin: str, before: datetime, over: int) -> tuple[Key | None, int]:
        """Where removing ``origin``'s rows oldest first (those created before ``before``
        that a rule may remove) frees ``over`` bytes: (the last row taken, 0); or, when
        they cannot, (None, how many bytes short)."""
        params = {"origin": origin, "before": before, "over": over}
        row = self.db.one("retention_origin_boundary", params)
        if row is not None:
            return (row["created_at"], row["id"]), 0
        got = self.db.one("retention_origin_removable", params)
        return None, over - (got["bytes"] if got else 0)

    def origin_totals(self, bounds: Bounds) -> list[tuple[str, str, int, int]]:
        """What the origins' own rules take: (origin, rule, videos, bytes)."""
        if not bounds.origins:
            return []
        return [(r["origin"], r["rule"], r["files"], r["bytes"])
                for r in self.db.all("retention_origin_totals", bounds.params())]

    def global_end(self, bounds: Bounds, need: int) -> tuple[Key | None, int]:
        """Where removing what the origins' own rules leave, oldest first across origins,
        frees ``need`` bytes: (the last row taken, 0); when it cannot, (the last row there
        is, or None, and how many bytes short)."""
        if not bounds.origins:
            return None, need
        row = self.db.one("retention_global_boundary", {**bounds.params(), "need": need})
        if row is None:
            return None, need
        return (row["created_at"], row["id"]), max(0, need - row["run"])

    def chosen(self, bounds: Bounds, *, global_quota_end: Key, global_end: Key
               ) -> Iterator[Chosen]:
        """The plan's videos, oldest first, with their rules (see ``retention_decided``),
        read :data:`BATCH` at a time as the caller goes on. Read from the live table: a
        row held (or gone) since the plan was made is not among them."""
        if not bounds.origins:
            return
        params = {**bounds.params(), "gq_at": global_quota_end[0],
                  "gq_id": global_quota_end[1], "g_at": global_end[0],
                  "g_id": global_end[1], "limit": BATCH}
        after = START
        while True:
            rows = self.db.all("retention_decided", {**params, "after_at": after[0],
                                                     "after_id": after[1]})
            for r in rows:
                yield Chosen(r["id"], r["origin"], r["size"], r["created_at"], r["rule"])
            if len(rows) < BATCH:
                return
            after = (rows[-1]["created_at"], rows[-1]["id"])

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

    def unremoved(self, limit: int = BATCH) -> list[Video]:
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
