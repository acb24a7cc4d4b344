"""Retention's rows (videodrop/retention/): usage per origin, where an origin's quota is
met (a running total in SQL), an origin's removable rows oldest first, expiring rows,
finishing an expired row's removal, and holds. SQL: ``sql/retention.sql``.

A row "a rule may remove" is ready or failed and not held; the caller adds the origin's
``min_age`` (``before``: only rows created before it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from videodrop.catalog.rows import Video
from videodrop.catalog.streamlinks import StreamLinkSync
from videodrop.errors import Conflict

#: Rows fetched per round trip of an origin's rows.
BATCH = 2000
#: Before every created_at: "no boundary".
NEVER = datetime(1, 1, 2, tzinfo=UTC)
#: After every created_at: "no end".
ALWAYS = datetime(9999, 1, 1, tzinfo=UTC)
Key = tuple[datetime, int]  # a row's place in the oldest-first order: (created_at, id)
START: Key = (NEVER, 0)
END: Key = (ALWAYS, 0)


@dataclass(frozen=True)
class Usage:
    """One origin's rows that are on the store (every status but ``expired``): bytes (their
    originals' ``size`` and their derivatives' ``derivative_bytes``, migration 0022), files,
    and the oldest one's ``created_at``."""

    origin: str
    bytes: int
    files: int
    oldest: datetime | None


class Chosen(NamedTuple):
    """A row a rule may remove: id, origin, size in bytes (the original's, 0 when unknown,
    and its derivatives'), created_at (a tuple: many thousands are made per pass)."""

    id: int
    origin: str
    size: int
    created_at: datetime

    @property
    def key(self) -> Key:
        return self.created_at, self.id


class RetentionRows(StreamLinkSync):
    def usage(self) -> list[Usage]:
        """Every origin with rows on the store, by name."""
        return [Usage(r["origin"], r["bytes"], r["files"], r["oldest"])
                for r in self.db.all("retention_usage", {})]

    def quota_end(self, origins: Sequence[str], before: datetime, over: int) -> Key | None:
        """Where removing the rows of ``origins`` oldest first (those created before
        ``before`` that a rule may remove) frees ``over`` bytes: the last row taken; None
        when they cannot."""
        params = {"origin": origins[0], "origins": list(origins), "before": before,
                  "over": over}
        name = "retention_origin_boundary" if len(origins) == 1 else "retention_group_boundary"
        row = self.db.one(name, params)
        return (row["created_at"], row["id"]) if row is not None else None

    def removable_bytes(self, origin: str, before: datetime, upto: Key = END) -> int:
        """Bytes of ``origin``'s rows a rule may remove (created before ``before``), up to
        the row ``upto`` in oldest-first order."""
        row = self.db.one("retention_origin_bytes", {"origin": origin, "before": before,
                                                     "upto_at": upto[0], "upto_id": upto[1]})
        return row["bytes"] if row else 0

    def global_end(self, origins: Sequence[tuple[str, datetime, Key]], need: int
                   ) -> tuple[Key | None, int]:
        """Where removing, oldest first across ``origins`` (each ``(origin, before,
        after)``: its rows a rule may remove, created before ``before``, after the row
        ``after``), frees ``need`` bytes: (the last row taken, 0); when it cannot, (the
        last row there is, or None, and how many bytes short)."""
        if not origins:
            return None, need
        row = self.db.one("retention_global_boundary", {
            "origins": [o[0] for o in origins], "befores": [o[1] for o in origins],
            "after_ats": [o[2][0] for o in origins], "after_ids": [o[2][1] for o in origins],
            "need": need})
        if row is None:
            return None, need
        return (row["created_at"], row["id"]), max(0, need - row["run"])

    def removable(self, origin: str, before: datetime, *, after: Key = START,
                  upto: Key = END) -> Iterator[Chosen]:
        """``origin``'s rows a rule may remove (created before ``before``), oldest first,
        after the row ``after`` and up to the row ``upto``; read :data:`BATCH` at a time
        as the caller goes on (a range of one index). Read from the live table: a row
        held or gone meanwhile is not among them."""
        params: dict[str, Any] = {"origin": origin, "before": before, "limit": BATCH,
                                  "upto_at": upto[0], "upto_id": upto[1]}
        while True:
            rows = self.db.all("retention_origin_rows",
                               {**params, "after_at": after[0], "after_id": after[1]})
            for r in rows:
                yield Chosen(r["id"], r["origin"], r["size"], r["created_at"])
            if len(rows) < BATCH:
                return
            after = (rows[-1]["created_at"], rows[-1]["id"])

    def expire(self, chosen: Sequence[tuple[int, str, str]]) -> list[Video]:
        """Mark the rows ``(id, rule, sentence)`` expired (their stream links removed
        first, their derivative rows gone) and commit: the first step of a removal, before
        any file goes. Returns the rows expired; one no longer removable (held, deleted,
        not ready or failed any more) is left as it is and not returned."""
        with self.db.transaction() as tx:
            # only the rows still removable lose their links (a held one keeps its own)
            locked = {r["id"] for r in tx.all("retention_lock_removable",
                                              {"ids": [c[0] for c in chosen]})}
            still = [c for c in chosen if c[0] in locked]
            for video_id, _, _ in still:
                self._remove_link(tx, video_id)
            rows = tx.all("retention_expire", {
                "ids": [c[0] for c in still], "reasons": [c[1] for c in still],
                "details": [c[2] for c in still], "now": self.clock()})
            tx.one("retention_forget_derivatives", {"ids": [r["id"] for r in rows]})
        if self.after_write is not None:
            self.after_write()
        return [Video.from_row(r) for r in rows]

    def unremoved(self, limit: int = BATCH, *, after: int = 0) -> list[Video]:
        """Expired rows whose files are not known to be removed yet, of ids over
        ``after`` (oldest id first)."""
        return [Video.from_row(r) for r in self.db.all("retention_unremoved",
                                                       {"limit": limit, "after": after})]

    def files_removed(self, ids: Sequence[int], *, drop_rows: bool) -> None:
        """The second step, after the files of expired rows ``ids`` went: the tombstones
        say so, or (``drop_rows``) the rows go."""
        name = "retention_drop_rows" if drop_rows else "retention_files_removed"
        self.db.one(name, {"ids": list(ids), "now": self.clock()})

    def expired_among(self, ids: Sequence[int]) -> list[tuple[int, datetime, str]]:
        """Those of ``ids`` that have expired: ``(id, expired_at, rule)``, by id."""
        return [(r["id"], r["expired_at"], r["expired_reason"])
                for r in self.db.all("retention_expired_among", {"ids": list(ids)})]

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
