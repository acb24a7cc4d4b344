"""Reading the timeline: the origins' summaries, one origin's recordings around a window
and their scenes activity, the last recording and recent gaps of every origin (for
``/metrics``). SQL:
``sql/timeline.sql``; docs/timeline.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from videodrop.catalog.base import CatalogBase

#: How many recordings before a window are read to find what covers its start.
BEFORE_WINDOW = 50
#: The most recordings one window reads (the API's and the pages' limit).
MAX_WINDOW = 5000
#: The most recordings of one origin starting at one instant a page takes (all of them).
SAME_START = 100_000
#: The summaries' estimates are large (an origin's whole history), so PostgreSQL would
#: compile them (JIT), which costs more than running them: off for their transaction.
_NO_JIT = sql.SQL("SET LOCAL jit = off")


@dataclass(frozen=True)
class OriginSummary:
    """One origin's ready recordings: how many, the first start and last end (UTC), the
    summed durations (s) and sizes (bytes); when a file last arrived under it (any
    status; None: none is left)."""

    origin: str
    recordings: int
    first_start: datetime
    last_end: datetime
    seconds: float
    bytes: int
    last_seen: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OriginSummary:
        return cls(row["origin"], int(row["recordings"]), row["first_start"], row["last_end"],
                   float(row["seconds"]), int(row["bytes"]), row["last_seen"])


@dataclass(frozen=True)
class TimedRecording:
    """One ready recording on a timeline."""

    id: int
    original_filename: str
    start: datetime
    end: datetime
    source: str  # videodrop.recording.SOURCES
    duration: float | None  # seconds
    size: int | None  # bytes

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TimedRecording:
        return cls(row["id"], row["original_filename"], row["recorded_start"],
                   row["recorded_end"], row["recorded_source"], row["duration"], row["size"])


@dataclass(frozen=True)
class Window:
    """What a timeline window needs: the recordings that started last before it (newest
    first, at most BEFORE_WINDOW), those that start in it (in order, at most the limit
    asked), and the next one: the first one left out when more start in the window than
    the limit (``cut``), else the first after the window (None: there is none yet)."""

    before: list[TimedRecording]
    within: list[TimedRecording]
    after: TimedRecording | None
    cut: bool


@dataclass(frozen=True)
class OriginActivity:
    """For ``/metrics``: an origin's last recording's end and its gaps that ended since
    the instant asked."""

    origin: str
    last_end: datetime
    gaps: int


class Timeline(CatalogBase):
    def timeline_origins(self, limit: int) -> list[OriginSummary]:
        """Every origin with ready recordings (at most ``limit``, by name)."""
        with self.db.transaction() as tx:
            tx.one(_NO_JIT)
            rows = tx.all("timeline_origins", {"limit": limit})
        return [OriginSummary.from_row(r) for r in rows]

    def timeline_window(self, origin: str, start: datetime, end: datetime, limit: int
                        ) -> Window:
        """The recordings of ``origin`` around ``start``..``end`` (see :class:`Window`):
        three range reads of the timeline index in one transaction."""
        params = {"origin": origin, "from": start, "to": end}
        with self.db.transaction() as tx:
            before = tx.all("timeline_before", {**params, "limit": BEFORE_WINDOW})
            within = tx.all("timeline_within", {**params, "limit": limit + 1})
            cut = len(within) > limit
            after = within[limit] if cut else tx.one("timeline_after", params)
            if cut and after is not None and within[limit - 1]["recorded_start"] == (
                    at := after["recorded_start"]):
                # The next page starts at a start (its ``from``): a page never ends inside
                # the recordings of one start, or the next would show them again, and
                # forever when a page's worth start together (a main and a sub stream).
                kept = [r for r in within[:limit] if r["recorded_start"] < at]
                if kept:
                    within, limit = kept, len(kept)
                else:  # all of this page start at once: take every one of that start
                    just_after = at + timedelta(microseconds=1)
                    within = tx.all("timeline_within", {**params, "from": at, "to": just_after,
                                                        "limit": SAME_START})
                    after = tx.one("timeline_after", {**params, "to": just_after})
                    cut = after is not None and after["recorded_start"] < end
                    limit = len(within)
        return Window([TimedRecording.from_row(r) for r in before],
                      [TimedRecording.from_row(r) for r in within[:limit]],
                      TimedRecording.from_row(after) if after else None, cut)

    def activity_of(self, video_ids: Sequence[int]) -> dict[int, str]:
        """The packed scenes activity (videodrop/activity.py) of those of ``video_ids``
        whose scenes are ready, by id (one read of the derivatives' primary key)."""
        if not video_ids:
            return {}
        return {r["video_id"]: r["activity"]
                for r in self.db.all("timeline_activity", {"ids": list(video_ids)})}

    def origin_activity(self, since: datetime, tolerances: Mapping[str, float],
                        default_tolerance: float, lookback: timedelta
                        ) -> list[OriginActivity]:
        """Every origin's last recording end and how many gaps ended at or after
        ``since`` (tolerance by origin from ``tolerances``, else ``default_tolerance``
        seconds; recordings up to ``lookback`` before ``since`` count as cover)."""
        params = {"since": since, "lookback": lookback, "tolerance": default_tolerance,
                  "origins": list(tolerances), "tolerances": list(tolerances.values())}
        with self.db.transaction() as tx:
            tx.one(_NO_JIT)
            rows = tx.all("timeline_recent_gaps", params)
        return [OriginActivity(r["origin"], r["last_end"], int(r["gaps"])) for r in rows]
