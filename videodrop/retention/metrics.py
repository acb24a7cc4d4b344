"""The retention role's metrics (registry ``videodrop.metrics.RETENTION``, served on
``VIDEODROP_METRICS_BIND`` by ``videodrop retention --every``): usage per origin after the
last pass, the store's free bytes (a file store only: omitted on s3), and what the passes
removed, by rule."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from videodrop.catalog import Usage
from videodrop.metrics import NAMESPACE, RETENTION
from videodrop.retention.rules import RULES


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, doc, labels, namespace=NAMESPACE, subsystem="retention",
                 registry=RETENTION)


def _counter(name: str, doc: str) -> Counter:
    return Counter(name, doc, ["rule"], namespace=NAMESPACE, subsystem="retention",
                   registry=RETENTION)


ORIGIN_BYTES = _gauge("origin_bytes", "Bytes of the videos of an origin on the store (after"
                      " the last pass)", ("origin",))
ORIGIN_FILES = _gauge("origin_files", "Videos of an origin on the store (after the last"
                      " pass)", ("origin",))
ORIGIN_OLDEST = _gauge("origin_oldest_timestamp_seconds", "created_at of the oldest video of"
                       " an origin on the store (Unix time, after the last pass)",
                       ("origin",))


class _FreeBytes(Collector):
    """``videodrop_retention_store_free_bytes``: the free bytes of the media store's file
    system after the last pass; no series at all while unknown (an s3 store, or before
    the first pass), rather than a 0 that would read as a full disk."""

    name = f"{NAMESPACE}_retention_store_free_bytes"
    free: int | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.free is not None:
            yield GaugeMetricFamily(self.name, "Bytes free on the media store's file system"
                                    " (after the last pass; absent on s3)", value=self.free)


STORE_FREE = _FreeBytes()
RETENTION.register(STORE_FREE)
DELETED_BYTES = _counter("deleted_bytes", "Bytes of videos removed, by rule")
DELETED_FILES = _counter("deleted_files", "Videos removed, by rule")
LAST_PASS = _gauge("last_pass_timestamp_seconds", "When the last pass ended (Unix time)")
for _rule in RULES:  # every rule's series exists from the start, at 0
    DELETED_BYTES.labels(_rule)
    DELETED_FILES.labels(_rule)


def removed(rule: str, size: int) -> None:
    DELETED_BYTES.labels(rule).inc(size)
    DELETED_FILES.labels(rule).inc()


def after_pass(usage: list[Usage], free: int | None, ended: float) -> None:
    """Set the gauges from the usage read after the pass and the store's free bytes (None:
    not known, the series is left out)."""
    ORIGIN_BYTES.clear()
    ORIGIN_FILES.clear()
    ORIGIN_OLDEST.clear()
    for use in usage:
        ORIGIN_BYTES.labels(use.origin).set(use.bytes)
        ORIGIN_FILES.labels(use.origin).set(use.files)
        if use.oldest is not None:
            ORIGIN_OLDEST.labels(use.origin).set(use.oldest.timestamp())
    STORE_FREE.free = free
    LAST_PASS.set(ended)
