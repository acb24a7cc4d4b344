"""The origins and their timelines (admin bearer token or the pages' login), docs/timeline.md.

* ``GET /api/origins`` → ``{"origins": [...]}``: each origin with ready recordings, its
  first start and last end, count, summed durations and bytes, when a file last arrived,
  its gap tolerance and its timeline's URL.
* ``GET /api/origins/{origin}/timeline?from=…&to=…`` → the recordings of ``origin`` (a
  timeline origin, e.g. ``inbox/cam1``: its slashes stay, or are sent as ``%2F``) that
  run in the window, and the gaps and overlaps between its recordings that touch the
  window. ``from`` and ``to`` are RFC 3339; default the 24 hours before now; at most
  :data:`MAX_SPAN` apart. At most ``limit`` (default and maximum :data:`MAX_RECORDINGS`)
  recordings starting in the window: when more do, ``truncated`` is true and
  ``next_from`` is where the next request starts. Each recording's ``activity``: where its
  picture moved (videodrop/activity.py: ``[{"start", "end", "offset", "seconds",
  "peak"}]``, times RFC 3339, offset and seconds in seconds into it, peak in levels), at or
  over the origin's ``activity_threshold``; null while its scenes are not made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import falcon

from api.auth.credential import AdminAuth, admin_only
from api.http.params import (
    bad,
    checked_origin,
    parse_int,
    parse_when,
    query_params,
    repeated_params,
)
from videodrop.activity import stretches
from videodrop.catalog import Catalog
from videodrop.catalog.timeline import MAX_WINDOW, TimedRecording
from videodrop.origins import OriginRules
from videodrop.recording import ESTIMATED_SOURCES, iso
from videodrop.timeline import Span, gaps_and_overlaps
from videodrop.tokens import utcnow

MAX_ORIGINS = 10_000
MAX_SPAN = timedelta(days=31)
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
DEFAULT_SPAN = timedelta(days=1)
MAX_RECORDINGS = MAX_WINDOW
TIMELINE_PARAMS = ("from", "to", "limit")
#: The route of a timeline (a sink: an origin holds slashes); its template for metrics.
TIMELINE_ROUTE = r"^/api/origins/(?P<origin>.+)/timeline$"
TIMELINE_TEMPLATE = "/api/origins/{origin}/timeline"


def timeline_url(origin: str) -> str:
    return f"/api/origins/{quote(origin, safe='/')}/timeline"


@admin_only
class OriginList:
    """``GET /api/origins``."""

    def __init__(self, catalog: Catalog, origins: OriginRules, admin: AdminAuth) -> None:
        self.catalog = catalog
        self.origins = origins
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.query_string:
            raise bad("parameter", "GET /api/origins takes no parameter")
        resp.media = {"origins": [{
            "origin": o.origin, "recordings": o.recordings,
            "first_start": iso(o.first_start), "last_end": iso(o.last_end),
            "duration": round(o.seconds, 3), "bytes": o.bytes,
            "last_seen": iso(o.last_seen) if o.last_seen else None,
            "gap_tolerance": self.origins.rule(o.origin).gap_tolerance,
            "timeline_url": timeline_url(o.origin),
        } for o in self.catalog.timeline_origins(MAX_ORIGINS)]}

    on_head = on_get


class OriginTimeline:
    """``GET /api/origins/{origin}/timeline``: a route (``upload``, ``inbox``: one path
    segment) and a sink of :data:`TIMELINE_ROUTE` (``inbox/cam1``: several)."""

    def __init__(self, catalog: Catalog, origins: OriginRules, admin: AdminAuth) -> None:
        self.catalog = catalog
        self.origins = origins
        self.admin = admin

    def __call__(self, req: falcon.Request, resp: falcon.Response, **groups: Any) -> None:
        req.uri_template = TIMELINE_TEMPLATE  # the metrics' and request log's route
        if req.method not in {"GET", "HEAD"}:
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        self.on_get(req, resp, str(groups["origin"]))

    def on_get(self, req: falcon.Request, resp: falcon.Response, origin: str) -> None:
        self.admin.require(req)
        start, end, limit = _window(req)
        origin = checked_origin(origin.strip("/"))
        window = self.catalog.timeline_window(origin, start, end, limit)
        tolerance = self.origins.rule(origin).gap_tolerance
        ordered = [*reversed(window.before), *window.within,
                   *([window.after] if window.after else [])]
        gaps, overlaps = gaps_and_overlaps(
            (Span(r.id, r.start, r.end) for r in ordered), tolerance)
        shown = [r for r in [*reversed(window.before), *window.within] if r.end > start]
        rule = self.origins.rule(origin)
        packed = self.catalog.activity_of([r.id for r in shown])
        # A cut page ends where the next one starts: a hole that ends there is this page's,
        # one that starts there the next page's (each hole on exactly one page).
        page_end = window.after.start if window.cut and window.after else end
        resp.media = {
            "origin": origin, "from": iso(start), "to": iso(end), "gap_tolerance": tolerance,
            "activity_threshold": rule.activity_threshold,
            "recordings": [_recording(r, packed.get(r.id), rule.activity_threshold)
                           for r in shown],
            "gaps": [h.as_json() for h in gaps if h.end > start and h.start < page_end],
            "overlaps": [h.as_json() for h in overlaps
                         if h.end > start and h.start < page_end],
            "truncated": window.cut,
            "next_from": iso(window.after.start) if window.cut and window.after else None,
        }

    on_head = on_get


def _recording(r: TimedRecording, packed: str | None, threshold: float) -> dict[str, Any]:
    activity = None if packed is None else [
        {"start": iso(r.start + timedelta(seconds=s.start)),
         "end": iso(r.start + timedelta(seconds=s.end)), **s.as_json()}
        for s in stretches(packed, threshold, duration=r.duration)]
    return {"id": r.id, "original_filename": r.original_filename, "start": iso(r.start),
            "end": iso(r.end), "duration": r.duration, "size": r.size, "source": r.source,
            "estimated": r.source in ESTIMATED_SOURCES, "video_url": f"/api/videos/{r.id}",
            "activity": activity}


def _window(req: falcon.Request) -> tuple[datetime, datetime, int]:
    query = query_params(req)
    twice = repeated_params(req)
    if twice:
        raise bad("parameter", f"each parameter at most once: {', '.join(twice)}")
    unknown = sorted(set(query) - set(TIMELINE_PARAMS))
    if unknown:
        raise bad("parameter", f"unknown parameter {', '.join(unknown)}; a timeline takes"
                               f" {', '.join(TIMELINE_PARAMS)}")
    end = parse_when(query["to"], "to") if "to" in query else utcnow()
    start = parse_when(query["from"], "from") if "from" in query else end - min(
        DEFAULT_SPAN, end - EARLIEST)  # to=0001-01-01T00:00:00Z has no day before it
    if start >= end:
        raise bad("window", "from must be before to")
    if end - start > MAX_SPAN:
        raise bad("window", f"from and to are at most {MAX_SPAN.days} days apart")
    limit = (parse_int(query["limit"], "limit", low=1, high=MAX_RECORDINGS)
             if "limit" in query else MAX_RECORDINGS)
    return start, end, limit
