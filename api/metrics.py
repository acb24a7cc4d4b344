"""``GET /metrics`` and the middleware that counts requests.

Under gunicorn every worker is a process of its own, so the counters live in
prometheus_client's multiprocess mode: each worker writes its values to memory-mapped
files in ``$PROMETHEUS_MULTIPROC_DIR`` (a fresh folder per API start, made by
``api/gunicorn_conf.py``), and whichever worker answers ``/metrics`` adds them all up.
Without that variable (one process: tests, ``create_app`` in a script) the API registry
is served as it is, with this process's own process metrics.

Labels are route *templates* (``/stream/{token}/``), never paths: a token must not reach
the metrics, and paths would make a series per video.
"""

from __future__ import annotations

import os
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

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = exposition_registry(multiprocess_dir)

    @classmethod
    def from_environment(cls) -> Metrics:
        return cls(multiprocess_dir_from_environment())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = generate_latest(self.registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.cache_control = ["no-store"]


class RequestMetrics:
    """Counts every request by method, route template and status; response bytes by route;
    seconds until the response starts by method and route. Put it first in the middleware
    list so its time covers the others. The labelled series are looked up once per label
    set and kept (``labels()`` costs more than the increment itself)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_t0 = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        route = req.uri_template or UNMATCHED
        method = req.method if req.method in _METHODS else "OTHER"
        key = (method, route, resp.status_code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                metrics.HTTP_REQUESTS.labels(method, route, str(resp.status_code)),
                metrics.HTTP_RESPONSE_BYTES.labels(route),
                metrics.HTTP_REQUEST_SECONDS.labels(method, route))
        requests, response_bytes, seconds = series
        requests.inc()
        size = 0 if method == "HEAD" else body_size(resp)
        if size:
            response_bytes.inc(size)
        t0 = getattr(req.context, "metrics_t0", None)
        if t0 is not None:
            seconds.observe(time.perf_counter() - t0)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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


__all__ = ["Metrics", "OnlyFamilies", "RequestMetrics", "body_size", "exposition_registry"]
