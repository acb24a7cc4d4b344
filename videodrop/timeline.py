"""Gaps and overlaps between one origin's recordings (docs/timeline.md).

Recordings are swept in start order, keeping how far the recordings so far reach
(``covered``: the latest end yet). A recording that starts at least ``tolerance`` seconds
after ``covered`` leaves a **gap** (``covered`` → its start); one that starts at least
``tolerance`` seconds before ``covered`` makes an **overlap** (its start → the earlier of
``covered`` and its end). Differences under the tolerance are joins: durations rounded to
a frame and cuts aligned to keyframes make them. Times are compared in whole
milliseconds, so a gap of exactly the tolerance is one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from videodrop.recording import iso


@dataclass(frozen=True)
class Span:
    """One recording on a timeline."""

    video_id: int
    start: datetime  # aware
    end: datetime  # aware, ≥ start


@dataclass(frozen=True)
class Hole:
    """A gap (nothing recorded) or an overlap (two recordings at once) between the
    recording ``before`` (the one that reached furthest) and ``after``."""

    start: datetime
    end: datetime
    before: int  # video id
    after: int  # video id

    @property
    def seconds(self) -> float:
        return round((self.end - self.start) / timedelta(milliseconds=1)) / 1000

    def as_json(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "seconds": self.seconds,
                "before_id": self.before, "after_id": self.after}


def _ms(delta: timedelta) -> int:
    return round(delta / timedelta(milliseconds=1))


def gaps_and_overlaps(spans: Iterable[Span], tolerance: float
                      ) -> tuple[list[Hole], list[Hole]]:
    """``(gaps, overlaps)`` of ``spans`` (sorted by start, then id) with ``tolerance``
    seconds (≥ 0), as the module says."""
    limit = round(tolerance * 1000)
    gaps: list[Hole] = []
    overlaps: list[Hole] = []
    covered: datetime | None = None
    reaching = 0  # the id of the recording that reaches ``covered``
    for span in spans:
        if covered is not None:
            step = _ms(span.start - covered)
            if step >= limit and step > 0:
                gaps.append(Hole(covered, span.start, reaching, span.video_id))
            elif -step >= limit and step < 0:
                overlaps.append(Hole(span.start, min(covered, span.end), reaching,
                                     span.video_id))
        if covered is None or span.end > covered:
            covered, reaching = span.end, span.video_id
    return gaps, overlaps
