"""The origins' page (``GET /origins``): every origin with its last recording, and for one
origin (``?origin=inbox/cam1``) a day strip (``&day=YYYY-MM-DD``, the origin's own time
zone; default its last recording's day; ``&hour=0..23`` shows that hour alone): its
recordings and the gaps between them on a bar, and where the picture moved (the scenes'
activity of the derive role, at or over the origin's ``activity_threshold``:
videodrop/activity.py), each recording and each stretch of activity a link to its video's
page at the time clicked (``/videos/{id}?t=<seconds>``, api/pages/static/timeline.js).
docs/timeline.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import falcon

from api.http.params import checked_origin
from videodrop.activity import stretches
from videodrop.catalog.timeline import MAX_WINDOW, TimedRecording
from videodrop.origins import OriginRules
from videodrop.timeline import Span, gaps_and_overlaps

if TYPE_CHECKING:
    from api.pages.site import Site

DAY = 86400  # seconds on a day's strip (a day with a clock change has 23 or 25 hours')
#: The most stretches of activity listed under the strip (all are drawn on it).
MAX_LISTED = 200


@dataclass(frozen=True)
class Bar:
    """One piece of the strip: ``x`` and ``width`` in seconds from the day's start."""

    x: float
    width: float
    video_id: int | None  # a recording's video; None for a gap
    offset: float  # seconds into the recording where the bar starts (cut by midnight)
    label: str


@dataclass(frozen=True)
class Strip:
    """What the strip draws: the recordings, the gaps, the stretches of activity (bars of
    their recordings' videos) and how many recordings have their activity known."""

    recordings: list[Bar]
    gaps: list[Bar]
    activity: list[Bar]
    activity_known: int


def _clip(start: datetime, end: datetime, day_start: datetime, seconds: float
          ) -> tuple[float, float]:
    x = max(0.0, (start - day_start).total_seconds())
    stop = min(seconds, (end - day_start).total_seconds())
    return x, max(0.0, stop - x)


def day_strip(recordings: list[TimedRecording], tolerance: float, day_start: datetime,
              seconds: float, zone: Any, *, activity: dict[int, str] | None = None,
              threshold: float = 1.0) -> Strip:
    """The :class:`Strip` of the ``seconds`` that start at ``day_start``; ``activity``: the
    packed scenes activity by video id (those whose scenes are ready), its stretches at
    or over ``threshold`` levels."""
    spans = [Span(r.id, r.start, r.end) for r in recordings]
    gaps, _ = gaps_and_overlaps(spans, tolerance)
    bars, moved = [], []
    known = 0
    for r in recordings:
        x, width = _clip(r.start, r.end, day_start, seconds)
        if width <= 0:
            continue
        offset = max(0.0, (day_start - r.start).total_seconds())
        local = r.start.astimezone(zone)
        bars.append(Bar(x, width, r.id, offset,
                        f"{r.original_filename}, from {local:%H:%M:%S}"))
        packed = (activity or {}).get(r.id)
        if packed is None:
            continue
        known += 1
        for s in stretches(packed, threshold, duration=r.duration):
            begin = r.start + timedelta(seconds=s.start)
            x, width = _clip(begin, r.start + timedelta(seconds=s.end), day_start, seconds)
            if width > 0:
                into = max(s.start, (day_start - r.start).total_seconds())
                moved.append(Bar(x, width, r.id, into,
                                 f"activity from {begin.astimezone(zone):%H:%M:%S} for"
                                 f" {s.seconds:g} s (peak {s.peak:g})"))
    holes = []
    for g in gaps:
        x, width = _clip(g.start, g.end, day_start, seconds)
        if width > 0:
            holes.append(Bar(x, width, None, 0.0, f"gap of {g.seconds:g} s from"
                             f" {g.start.astimezone(zone):%H:%M:%S}"))
    return Strip(bars, holes, sorted(moved, key=lambda b: b.x), known)


class OriginsPage:
    def __init__(self, site: Site, origins: OriginRules) -> None:
        self.site = site
        self.origins = origins

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.site.session(req)
        listed = self.site.catalog.timeline_origins(1000)
        origin = req.get_param("origin")
        context: dict[str, Any] = {"origins": listed, "origin": origin, "day": None,
                                   "bars": [], "gaps": [], "marks": [], "hour": None,
                                   "activity": [], "activity_known": 0,
                                   "max_listed": MAX_LISTED,
                                   "timezone": None, "prev_day": None, "next_day": None,
                                   "cut": False, "span_seconds": DAY}
        if origin:
            origin = checked_origin(origin)
            rule = self.origins.rule(origin)
            zone = rule.timezone
            known = next((o for o in listed if o.origin == origin), None)
            day = _day(req.get_param("day"), known.last_end.astimezone(zone).date()
                       if known else datetime.now(zone).date())
            hour = _hour(req.get_param("hour"))
            day_start = datetime.combine(day, time(hour or 0), zone)
            # the real seconds to the next midnight: a day with a clock change has 23 or
            # 25 hours (aware datetimes of one zone subtract by the wall clock: ask UTC)
            day_end = (datetime.combine(day + timedelta(days=1), time(0), zone)
                       if hour is None else day_start.astimezone(UTC) + timedelta(hours=1))
            seconds = (day_end.astimezone(UTC) - day_start.astimezone(UTC)).total_seconds()
            window = self.site.catalog.timeline_window(origin, day_start, day_end,
                                                       MAX_WINDOW)
            recordings = [*reversed(window.before), *window.within]
            recordings = [r for r in recordings if r.end > day_start]
            strip = day_strip(recordings, rule.gap_tolerance, day_start, seconds, zone,
                              activity=self.site.catalog.activity_of([r.id for r in recordings]),
                              threshold=rule.activity_threshold)
            marks = (_day_marks(day_start, seconds, zone) if hour is None else
                     [f"{hour:02d}:{m:02d}" for m in range(0, 60, 10)] + [f"{hour + 1:02d}:00"])
            context.update(day=day.isoformat(), bars=strip.recordings, gaps=strip.gaps,
                           activity=strip.activity, activity_known=strip.activity_known,
                           timezone=str(zone),
                           marks=marks, hour=hour, span_seconds=seconds,
                           prev_day=(day - timedelta(days=1)).isoformat(),
                           next_day=(day + timedelta(days=1)).isoformat(),
                           cut=window.cut)
        self.site.page(req, resp, "origins.html", **context)


def _day_marks(day_start: datetime, seconds: float, zone: Any) -> list[str]:
    """The wall times at the strip's nine evenly spaced marks (``00:00``, ``03:00``…
    ``24:00`` on a day of 24 hours; ``02:07``… on one of 25, where the strip is longer)."""
    start = day_start.astimezone(UTC)
    inner = [f"{(start + timedelta(seconds=seconds * k / 8)).astimezone(zone):%H:%M}"
             for k in range(8)]
    return [*inner, "24:00"]


def _day(raw: str | None, default: date) -> date:
    """The day asked for; 400 for no date, or one without a day before and after it (the
    page links both, and a zone's midnight must be a moment: 0001-01-01, 9999-12-31)."""
    if not raw:
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise falcon.HTTPBadRequest(title="Bad day",
                                    description="day is a date: YYYY-MM-DD") from exc
    if not date(1, 1, 2) < day < date(9999, 12, 30):
        raise falcon.HTTPBadRequest(title="Bad day",
                                    description="day is a date from 0001-01-03 to 9999-12-29")
    return day


def _hour(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 0 <= int(raw) <= 23:
        raise falcon.HTTPBadRequest(title="Bad hour", description="hour is 0 to 23")
    return int(raw)
