"""The retention role's metrics (registry ``videodrop.metrics.RETENTION``, served on
``VIDEODROP_METRICS_BIND`` by ``videodrop retention --every``): usage per origin after the
last pass, the store's free bytes, and what the passes removed, by rule."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
STORE_FREE = _gauge("store_free_bytes", "Bytes free on the media store's file system (after"
                    " the last pass)")
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
    """Set the gauges from the usage read after the pass."""
    ORIGIN_BYTES.clear()
    ORIGIN_FILES.clear()
    ORIGIN_OLDEST.clear()
    for use in usage:
        ORIGIN_BYTES.labels(use.origin).set(use.bytes)
        ORIGIN_FILES.labels(use.origin).set(use.files)
        if use.oldest is not None:
            ORIGIN_OLDEST.labels(use.origin).set(use.oldest.timestamp())
    if free is not None:
        STORE_FREE.set(free)
    LAST_PASS.set(ended)
