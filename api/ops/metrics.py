"""``GET /metrics`` and the middleware that counts requests.

Under gunicorn every worker is a process of its own, so the counters live in
prometheus_client's multiprocess mode: each worker writes its values to memory-mapped
files in ``$PROMETHEUS_MULTIPROC_DIR`` (a fresh folder per API start, made by
``api/gunicorn_conf.py``), and whichever worker answers ``/metrics`` adds them all up.
Without that variable (one process: tests, ``create_app`` in a script) the API registry
is served as it is, with this process's own process metrics.

Labels are route *templates* (``/stream/{token}/``), never paths: a token must not reach
the metrics, and paths would make a series per video.

The request middleware only notes each request in a timed buffer (``videodrop.batching``);
the counts are added up and written to the metrics when it is flushed (every 0.2 s, at
exit, and before this worker renders ``/metrics``), so another worker's requests may show
up to 0.2 s late.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from videodrop import metrics

UNMATCHED = "unmatched"  # the route label of requests no route matched (404s)
_CONVERTER = re.compile(r"\{(\w+):[^{}]*(?:\([^()]*\))?\}")
_plain: dict[str, str] = {}


def plain_template(req: falcon.Request) -> str | None:
    """The matched route's template without Falcon's converters
    (``/api/videos/{video_id:int(min=1)}`` → ``/api/videos/{video_id}``); None when no
    route matched. The label of metrics and the route of request lines."""
    template = req.uri_template
    if template is None:
        return None
    plain = _plain.get(template)
    if plain is None:
        plain = _plain[template] = _CONVERTER.sub(r"{\1}", template)
    return plain


class OnlyFamilies(Collector):
    """The families of ``source`` whose names are in ``names``: the multiprocess files also
    hold the ingest and prober metrics that ``videodrop.metrics`` defines at import."""

    def __init__(self, source: Collector, names: frozenset[str]) -> None:
        self.source, self.names = source, names

    def collect(self) -> Iterable[Metric]:
        return self._filtered()

    def _filtered(self) -> Iterator[Metric]:
        for family in self.source.collect():
            if family.name in self.names:
                yield family


def exposition_registry(multiprocess_dir: str | None) -> CollectorRegistry:
    if not multiprocess_dir:
        return metrics.exposition_registry("api")
    registry = CollectorRegistry(auto_describe=False)
    collector = MultiProcessCollector(None, path=multiprocess_dir)
    registry.register(OnlyFamilies(collector, metrics.family_names(metrics.API)))
    return registry


def multiprocess_dir_from_environment() -> str | None:
    """``$PROMETHEUS_MULTIPROC_DIR``: prometheus_client itself reads this variable to pick
    its mode when imported, so the resource must look at the same one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """``GET /metrics`` in the Prometheus text format."""

    def __init__(self, multiprocess_dir: str | None = None,
                 *collectors: Collector) -> None:
        self.registry = exposition_registry(multiprocess_dir)
        for collector in collectors:  # read when scraped (api/ops/origin_metrics.py)
            self.registry.register(collector)

    @classmethod
    def from_environment(cls, *collectors: Collector) -> Metrics:
        return cls(multiprocess_dir_from_environment(), *collectors)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        metrics.flush()  # this worker's counts are never behind in its own answer
        resp.data = generate_latest(self.registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.cache_control = ["no-store"]


class RequestMetrics:
    """Counts every request by method, route template and status; response bytes by route;
    seconds until the response starts by method and route. Put it first in the middleware
    list so its time covers the others.

    A request only adds ``(method, route, status, bytes, seconds)`` to a timed buffer
    (:data:`PENDING`, ``videodrop.batching``); :func:`write_pending`, called when it is
    flushed (every 0.2 s once this starts the ticker, and by ``videodrop.metrics.flush``),
    adds them up and writes each counter series once per flush."""

    def __init__(self) -> None:
        metrics.start_flushing()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_t0 = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        method = req.method if req.method in _METHODS else "OTHER"
        size = sent_bytes(req, resp)
        t0 = getattr(req.context, "metrics_t0", None)
        seconds = None if t0 is None else time.perf_counter() - t0
        PENDING.add((method, plain_template(req) or UNMATCHED, resp.status_code, size, seconds))


def note(method: str, route: str, status: int, size: int, seconds: float | None) -> None:
    """A request answered without Falcon (api/tokens/fastpath.py; the worker's own answers,
    api/ops/refusals.py), as RequestMetrics notes one (``method`` one of the known methods
    or ``OTHER``, ``size`` 0 for HEAD, ``seconds`` None: not timed)."""
    PENDING.add((method, route, status, size, seconds))


Noted = tuple[str, str, int, int, float | None]  # method, route, status, bytes, seconds

# The labelled series, looked up once per label set (``labels()`` costs a lock and more).
_requests: dict[tuple[str, str, int], Any] = {}
_response_bytes: dict[str, Any] = {}
_seconds: dict[tuple[str, str], Any] = {}


def write_pending(noted: list[Noted]) -> None:
    """Add up the requests noted since the last flush and write them to the metrics: what
    ``inc``/``observe`` per request would have written, in one write per counter series."""
    counts: dict[tuple[str, str, int], int] = {}
    sizes: dict[str, int] = {}
    durations: dict[tuple[str, str], list[float]] = {}
    for method, route, status, size, seconds in noted:
        key = (method, route, status)
        counts[key] = counts.get(key, 0) + 1
        sizes[route] = sizes.get(route, 0) + size  # the series exists, even at 0
        observed = durations.setdefault((method, route), [])
        if seconds is not None:
            observed.append(seconds)
    for key, n in counts.items():
        series = _requests.get(key)
        if series is None:
            series = _requests[key] = metrics.HTTP_REQUESTS.labels(key[0], key[1], str(key[2]))
        series.inc(n)
    for route, size in sizes.items():
        series = _response_bytes.get(route)
        if series is None:
            series = _response_bytes[route] = metrics.HTTP_RESPONSE_BYTES.labels(route)
        if size:
            series.inc(size)
    for method_route, observed in durations.items():
        series = _seconds.get(method_route)
        if series is None:
            series = _seconds[method_route] = metrics.HTTP_REQUEST_SECONDS.labels(*method_route)
        if observed:
            metrics.observe_all(series, observed)


# What requests were answered and not yet written to the metrics: a timed buffer, added to
# by any thread without a lock, written by write_pending.
PENDING = metrics.buffer(write_pending)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def sent_bytes(req: falcon.Request, resp: falcon.Response) -> int:
    """The bytes of body a request is answered with, as announced (:func:`body_size`):
    none for HEAD. Counted before the body is sent, so a client that hangs up early
    was sent fewer."""
    return 0 if req.method == "HEAD" else body_size(resp)


def body_size(resp: falcon.Response) -> int:
    """The body's length: ``Content-Length`` when set (file and Range responses), else the
    rendered text/data/media (cached by Falcon, so rendering it here costs nothing twice);
    0 for a stream of unknown length."""
    length = resp.content_length
    if length is not None:
        try:
            return max(0, int(length))
        except ValueError:
            return 0
    if resp.stream is not None:
        return 0
    body = resp.render_body()
    return len(body) if body else 0


__all__ = [
    "PENDING",
    "Metrics",
    "OnlyFamilies",
    "RequestMetrics",
    "body_size",
    "exposition_registry",
    "note",
    "sent_bytes",
    "write_pending",
]
