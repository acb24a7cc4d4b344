"""Prometheus metrics of every role, and the small HTTP server ingest and prober expose.

Each role has a registry of its own (``INGEST``, ``PROBER``, ``API``), so a role's
endpoint shows its own metrics (plus the process metrics of the default registry) and not
the other roles' counters stuck at zero. The API runs under several gunicorn workers and
uses prometheus_client's multiprocess mode instead: see ``api/ops/metrics.py`` and
``api/gunicorn_conf.py``.

Ingest and prober serve ``/metrics`` on ``VIDEODROP_METRICS_BIND``: ``HOST:PORT``, or
``HOST:FIRST-LAST`` to take the first free port of a range (several prober units, or
``videodrop run``, share one setting that way). Unset: no metrics server.

Counts of the API's request path are kept in memory first (``TOKEN_LOOKUPS`` here, the
request metrics in ``api/ops/metrics.py``), in timed buffers (``videodrop.batching``), and
written to their metrics by :func:`flush`: every ``FLUSH_SECONDS`` from the process's
ticker thread (:func:`start_flushing`), at exit, before the API renders ``/metrics``, and
whenever the ``API`` registry is read in this process.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from videodrop import batching
from videodrop.errors import ConfigurationError

T = TypeVar("T")

NAMESPACE = "videodrop"

# In multiprocess mode every increment asks for the process id, to notice a fork: a system
# call per increment, five per API request. The id is remembered instead, and refreshed in
# the child of a fork (the one case it changes).
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _pid[0])

INGEST = CollectorRegistry()
PROBER = CollectorRegistry()
DERIVE = CollectorRegistry()
API = CollectorRegistry()
RETENTION = CollectorRegistry()  # videodrop/retention/metrics.py

# --- counts kept in memory, written in batches --------------------------------------------

FLUSH_SECONDS = batching.INTERVAL
_buffers: list[batching.TimedBuffer[Any]] = []  # what flush() writes out


def buffer(write: Callable[[list[T]], None]) -> batching.TimedBuffer[T]:
    """A timed buffer of counts for metrics: ``write(items)`` adds them to their metrics,
    every ``FLUSH_SECONDS`` (once :func:`start_flushing` ran), at exit, and on
    :func:`flush`."""
    made: batching.TimedBuffer[T] = batching.TimedBuffer(write)
    _buffers.append(made)
    return made


def flush() -> None:
    """Write every count kept in memory to its metric, now."""
    for one in list(_buffers):
        one.flush()


def start_flushing() -> None:
    """Flush every ``FLUSH_SECONDS`` from this process's ticker thread
    (``videodrop.batching.TICKER``; a forked child starts its own)."""
    batching.TICKER.start()


class FlushOnRead:
    """A collector of no metric, registered first in ``API``: reading the registry
    (``generate_latest``, ``get_sample_value``) flushes first, so that what is read in this
    process is never behind."""

    def collect(self) -> Iterable[Metric]:
        flush()
        return ()


API.register(FlushOnRead())


class LaterCount:
    """One labelled series of a :class:`LaterCounter`: ``inc`` adds in memory (a deque
    append: safe from any thread, no lock), :func:`flush` adds the sum to the counter."""

    def __init__(self, series: Counter, pending: batching.TimedBuffer[tuple[Counter, float]]
                 ) -> None:
        self._series = series
        self._add = pending.add

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self._add((self._series, amount))


class LaterCounter:
    """A labelled counter for a request path: ``labels(...).inc()`` costs a deque append
    instead of a write to prometheus_client's memory-mapped value (a lock and a struct
    pack); the counter is exposed as before, at most ``FLUSH_SECONDS`` behind in another
    worker's ``/metrics``."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._series: dict[tuple[Any, ...], LaterCount] = {}
        self._lock = threading.Lock()
        self._pending = buffer(_add_up)

    def labels(self, *values: str, **by_name: str) -> LaterCount:
        """As ``Counter.labels``; keep what it returns (this takes a lock)."""
        key = (values, tuple(sorted(by_name.items())))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = LaterCount(
                    self.counter.labels(*values, **by_name), self._pending)
            return series


def _add_up(amounts: list[tuple[Counter, float]]) -> None:
    """Each series' amounts added up, then one ``inc`` per series."""
    totals: dict[Counter, float] = {}
    for series, amount in amounts:
        totals[series] = totals.get(series, 0) + amount
    for series, total in totals.items():
        if total:
            series.inc(total)

def observe_all(histogram: Any, amounts: list[float]) -> None:
    """``histogram.observe(a) for a in amounts`` (``histogram``: a labelled series of a
    ``Histogram``), in one write per bucket used and one to the sum.

    prometheus_client has no public call for many observations at once, and in
    multiprocess mode each ``observe`` costs two locked writes to a memory-mapped file.
    This is the one place that reads its internals (:func:`histogram_internals`); without
    them (another version of the library) it observes one by one, and
    tests/unit/test_metrics.py fails so that the fallback is noticed."""
    internals = histogram_internals(histogram)
    if internals is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    bounds, buckets, total_of = internals
    per_bucket = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        total += amount
        per_bucket[bisect_left(bounds, amount)] += 1
    total_of.inc(total)
    for i, n in enumerate(per_bucket):
        if n:
            buckets[i].inc(n)


def histogram_internals(histogram: Any) -> tuple[list[float], list[Any], Any] | None:
    """prometheus_client's ``_upper_bounds`` (sorted, ending in +Inf), ``_buckets`` (one
    value per bound, not cumulative: ``observe`` adds 1 to the first bucket whose bound is
    >= the amount) and ``_sum`` of a labelled histogram series; None when they are not
    there in that shape."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total_of = getattr(histogram, "_sum", None)
    if (not isinstance(bounds, list) or not isinstance(buckets, list)
            or len(bounds) != len(buckets) or not bounds or bounds[-1] != float("inf")
            or not hasattr(total_of, "inc")):
        return None
    return bounds, buckets, total_of


# --- ingest ------------------------------------------------------------------------------

FILES_SEEN = Counter(
    "files_seen", "Inbox files noticed (written, created, moved in or found by a rescan).",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
FILES_SETTLED = Counter(
    "files_settled", "Inbox files that stopped changing and were closed by their writer.",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
FILES_PUBLISHED = Counter(
    "files_published", "Probe messages confirmed by the broker for settled inbox files.",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
FILES_REFUSED = Counter(
    "files_refused", "Inbox files refused and left where they are, by reason (extension,"
    " empty, too_large, sparse, symlink, special_file, unreadable): the log line is"
    " 'refused' with the reason in words, once per file.",
    ["reason"], namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
REFUSAL_REASONS = ("extension", "empty", "too_large", "sparse", "symlink", "special_file",
                   "unreadable")
for _reason in REFUSAL_REASONS:  # every reason shows, at 0 until it happens
    FILES_REFUSED.labels(_reason)
PUBLISH_RETRIES = Counter(
    "publish_retries", "Files whose publish failed (broker unavailable, or no confirm):"
    " each is kept and published again after a pause.",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
RESCANS = Counter(
    "rescans", "Full walks of the inbox (startup, periodic, lost events).",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
PERMISSION_ERRORS = Counter(
    "permission_errors", "Inbox paths the service cannot use, by kind: list (a folder it"
    " cannot read), move (a folder it cannot move files out of), read (a file it cannot"
    " read); once per path until fixed, logged as 'inbox permission problem' with the fix.",
    ["kind"], namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
PERMISSION_KINDS = ("list", "move", "read")
for _kind in PERMISSION_KINDS:
    PERMISSION_ERRORS.labels(_kind)
BLOCKED_PATHS = Gauge(
    "blocked_paths", "Inbox folders and files waiting for a permission fix (their files are"
    " not published meanwhile).",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST, multiprocess_mode="livesum")
FOLDERS_REMOVED = Counter(
    "folders_removed", "Empty inbox folders removed (VIDEODROP_INBOX_PRUNE_AFTER).",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST)
INBOX_BACKLOG = Gauge(
    "inbox_backlog", "Inbox files seen but not yet published (settling or waiting for the"
    " broker).",
    namespace=NAMESPACE, subsystem="ingest", registry=INGEST, multiprocess_mode="livesum")

# --- prober ------------------------------------------------------------------------------

PROBES = Counter(
    "probes", "Videos probed and recorded, by outcome (ready or failed).",
    ["outcome"], namespace=NAMESPACE, subsystem="prober", registry=PROBER)
PROBE_SECONDS = Histogram(
    "probe_seconds", "Time ffprobe took on one file (hashing runs alongside).",
    namespace=NAMESPACE, subsystem="prober", registry=PROBER,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120))
PROBES_IN_PROGRESS = Gauge(
    "probes_in_progress", "Probes running right now in this process.",
    namespace=NAMESPACE, subsystem="prober", registry=PROBER, multiprocess_mode="livesum")
REDELIVERIES = Counter(
    "redeliveries", "Messages received again after an earlier delivery was not acked"
    " (a prober died or gave the message back).",
    namespace=NAMESPACE, subsystem="prober", registry=PROBER)
DEAD_LETTERS = Counter(
    "dead_letters", "Messages sent to the dead-letter queue: unreadable messages, and"
    " messages whose handler crashed on their last allowed delivery.",
    namespace=NAMESPACE, subsystem="prober", registry=PROBER)
CLAIMS_REFUSED = Counter(
    "files_refused", "Inbox files the prober refused when claiming them, by reason (the"
    " inbox policy applied again: a message queued under a wider policy, a file that"
    " became sparse or too large after the ingest saw it): left in the inbox, no row.",
    ["reason"], namespace=NAMESPACE, subsystem="prober", registry=PROBER)
for _reason in ("extension", "empty", "too_large", "sparse"):
    CLAIMS_REFUSED.labels(_reason)

FOREIGN_MESSAGES = Counter(
    "foreign_messages", "Watch-folder messages of another host's inbox (another inbox"
    " identity) that reached this prober: hosts with inboxes of their own share a"
    " VIDEODROP_AMQP_PREFIX (docs/several-hosts.md). Left to that host's rescan.",
    namespace=NAMESPACE, subsystem="prober", registry=PROBER)

# --- derive ------------------------------------------------------------------------------

DERIVE_JOBS = Counter(
    "derivatives", "Derivatives made, by kind, outcome (ready, failed or skipped) and"
    " error_code (videodrop/derivatives.py Reason; empty when ready).",
    ["kind", "outcome", "error_code"], namespace=NAMESPACE, subsystem="derive",
    registry=DERIVE)
DERIVE_SECONDS = Histogram(
    "seconds", "Time one derivative took (its ffmpeg runs and the record), by kind.",
    ["kind"], namespace=NAMESPACE, subsystem="derive", registry=DERIVE,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
DERIVE_RENDITION_BYTES = Gauge(
    "rendition_bytes", "Bytes of the ready browser renditions in the media store (read by"
    " the relay with the backlog).",
    namespace=NAMESPACE, subsystem="derive", registry=DERIVE, multiprocess_mode="max")
DERIVE_BACKLOG = Gauge(
    "backlog", "Derivatives still to make in the catalog (pending, or ready and being"
    " remade), by kind (read by the relay).",
    ["kind"], namespace=NAMESPACE, subsystem="derive", registry=DERIVE,
    multiprocess_mode="max")
DERIVE_REDELIVERIES = Counter(
    "redeliveries", "Derive jobs received again after an earlier delivery was not acked.",
    namespace=NAMESPACE, subsystem="derive", registry=DERIVE)
DERIVE_DEAD_LETTERS = Counter(
    "dead_letters", "Derive jobs sent to the dead-letter queue (unreadable, or crashing"
    " on their last allowed delivery).",
    namespace=NAMESPACE, subsystem="derive", registry=DERIVE)

# --- api ---------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "requests", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"], namespace=NAMESPACE, subsystem="http", registry=API)
HTTP_RESPONSE_BYTES = Counter(
    "response_bytes", "Bytes of response bodies (Content-Length: a Range answer counts its"
    " range, an aborted download its full length), by route template.",
    ["route"], namespace=NAMESPACE, subsystem="http", registry=API)
HTTP_REQUEST_SECONDS = Histogram(
    "request_seconds", "Time until the response starts (a file body is sent after),"
    " by method and route template.",
    ["method", "route"], namespace=NAMESPACE, subsystem="http", registry=API,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
HTTP_REFUSED = Counter(
    "refused", "Requests the API's worker answered itself, before any route, by reason:"
    " timed_out (408: the request did not arrive in time), head_too_large (431),"
    " client_busy (503: the client holds its share of the worker's threads). Logged as"
    " 'refused', at most once a minute per client and reason.",
    ["reason"], namespace=NAMESPACE, subsystem="http", registry=API)
for _reason in ("timed_out", "head_too_large", "client_busy"):  # shown at 0 until then
    HTTP_REFUSED.labels(_reason)
TOKEN_LOOKUPS = LaterCounter(Counter(
    "token_lookups", "Token lookups of the four token endpoints, by where the answer came"
    " from: the worker's token cache, or the database (a miss, or the cache off).",
    ["source"], namespace=NAMESPACE, subsystem="api", registry=API))

ROLE_REGISTRIES = {"ingest": INGEST, "prober": PROBER, "derive": DERIVE, "api": API,
                   "retention": RETENTION}


def family_names(registry: CollectorRegistry) -> frozenset[str]:
    """The metric family names a registry holds (``videodrop_http_requests``...)."""
    return frozenset(m.name for m in registry.collect())


class Combined(Collector):
    """Several collectors exposed as one (a role's registry plus the process metrics)."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        return self._chain()

    def _chain(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition_registry(role: str) -> CollectorRegistry:
    """A registry to serve for ``role``: its metrics and the default registry's process,
    platform and garbage-collector metrics."""
    if role not in ROLE_REGISTRIES:
        raise ValueError(f"unknown role {role!r}")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Combined(ROLE_REGISTRIES[role], REGISTRY))
    return registry


def parse_bind(bind: str) -> tuple[str, list[int]]:
    """``"127.0.0.1:9361"`` → ("127.0.0.1", [9361]); ``"[::1]:9362-9365"`` → ("::1",
    [9362, ..., 9365]); ``":9361"`` → ("0.0.0.0", [9361])."""
    m = re.fullmatch(r"\s*(?:\[([0-9A-Fa-f:.]+)\]|([^:\s\[\]]*)):(\d{1,5})(?:-(\d{1,5}))?\s*",
                     bind)
    if m is None:
        raise ConfigurationError(
            f"VIDEODROP_METRICS_BIND={bind!r}: use HOST:PORT or HOST:FIRST-LAST"
            " (e.g. 127.0.0.1:9361 or 127.0.0.1:9362-9379)")
    host = m.group(1) or m.group(2) or "0.0.0.0"
    first = int(m.group(3))
    last = int(m.group(4) or first)
    if not (0 < first <= last <= 65535) or last - first > 1000:
        raise ConfigurationError(f"VIDEODROP_METRICS_BIND={bind!r}: bad port or range")
    return host, list(range(first, last + 1))


@dataclass
class MetricsServer:
    host: str
    port: int
    httpd: WSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(bind: str, role: str) -> MetricsServer:
    """Serve ``role``'s metrics on the first free port of ``bind`` in a daemon thread.

    Raises :class:`ConfigurationError` (exit code 78: systemd does not restart) when
    ``bind`` is malformed or no port of it can be had."""
    host, ports = parse_bind(bind)
    registry = exposition_registry(role)
    last_error: OSError | None = None
    for port in ports:
        try:
            httpd, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            last_error = exc
            if exc.errno == errno.EADDRINUSE:
                continue
            break
        return MetricsServer(host, port, httpd, thread)
    raise ConfigurationError(
        f"VIDEODROP_METRICS_BIND={bind!r}: cannot listen: {last_error}") from last_error


__all__ = [
    "API", "CLAIMS_REFUSED", "DEAD_LETTERS", "FILES_PUBLISHED", "FILES_REFUSED", "FILES_SEEN",
    "FILES_SETTLED", "FOREIGN_MESSAGES", "HTTP_REFUSED", "HTTP_REQUESTS", "HTTP_REQUEST_SECONDS",
    "HTTP_RESPONSE_BYTES",
    "INBOX_BACKLOG", "INGEST",
    "PROBER", "PROBES", "PROBES_IN_PROGRESS", "PROBE_SECONDS", "PUBLISH_RETRIES",
    "REDELIVERIES", "REFUSAL_REASONS", "RESCANS", "RETENTION", "TOKEN_LOOKUPS", "FlushOnRead",
    "LaterCount",
    "LaterCounter", "MetricsServer", "buffer", "exposition_registry", "family_names", "flush",
    "histogram_internals", "observe_all",
    "parse_bind", "start_flushing", "start_metrics_server",
]
