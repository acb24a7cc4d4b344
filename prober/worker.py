"""One consumer: a pika BlockingConnection of its own, prefetch 1, ack after the commit.

The consumer's thread owns the connection (pika: one thread per connection) and serves it
while the message's work runs on a work thread of the worker's own, as pika's
``basic_consumer_threaded.py`` example does: heartbeats go on however long ffprobe and the
hash take, so the broker never drops the connection and redelivers a message in hand."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any

import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from prober import store
from prober.ffprobe import FFprobeMissing
from prober.probe import ProbeResult
from videodrop import broker, media, metrics
from videodrop.catalog import Catalog, ProbeOutcome, Video
from videodrop.errorcodes import ErrorCode
from videodrop.errors import (
    BrokerUnavailable,
    CatalogUnavailable,
    StorageFull,
    TransientFileError,
)
from videodrop.inboxpolicy import InboxPolicy
from videodrop.messages import BadMessage, InboxFile, ProbeVideo, decode
from videodrop.settings import Settings
from videodrop.tokens import token_prefix

Prober = Callable[[Path], ProbeResult]
# Worth waiting for: the database comes back; a file turns readable; ffprobe is reinstalled.
TRANSIENT = (CatalogUnavailable, TransientFileError, FFprobeMissing, OSError)
# A database outage and a full media store are waited out indefinitely (nothing could be
# recorded or stored meanwhile, and the file is safe in the inbox).
# Other transient problems get this many tries in place, then go back to the queue, where
# the delivery limit sends a hopeless message to the dead-letter queue.
LOCAL_TRIES = 8
SERVE_SECONDS = 1.0  # at most between two looks at the work (it wakes the loop when done)
RETRY_CONNECT: tuple[type[BaseException], ...] = (BrokerUnavailable, *broker.CONNECTION_ERRORS)


class Settle(Enum):
    """What the broker is told of a delivery."""

    ACK = "ack"
    REQUEUE = "nack, requeue"  # tried again (the delivery limit ends a hopeless one)
    DEAD = "nack, dead-letter"


class Worker:
    """One consumer of the probe queue (``name`` names its connection and threads):
    :meth:`run` on a thread of its own; ``connected`` is set while it consumes."""

    def __init__(self, settings: Settings, catalog: Catalog, prober: Prober, log: Any, *,
                 name: str = "prober") -> None:
        self.settings = settings
        self.catalog = catalog
        self.prober = prober
        self.log = log
        self.name = name
        self.inbox = settings.inbox.resolve()
        self.policy = InboxPolicy.from_settings(settings)
        self.media_root = settings.media_root.resolve()
        self.connected = threading.Event()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-sha")
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-work")
        self._conn: pika.BlockingConnection | None = None

    # --- consuming --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, reconnecting after a broker outage (pauses from
        0.5 s doubling to 30 s); the message in hand is finished before it returns."""
        backoff = 0.0
        while not stop.is_set():
            try:
                self._consume(stop)
                backoff = 0.0
            except RETRY_CONNECT as exc:
                self.connected.clear()
                backoff = min(30.0, max(0.5, backoff * 2))
                self.log.warning("broker unavailable; reconnecting", error=repr(exc),
                                 retry_in=backoff)
                stop.wait(backoff)
        self._work.shutdown(wait=True)  # the message in hand, if the connection was lost
        self._hasher.shutdown(wait=False)

    def _consume(self, stop: threading.Event) -> None:
        conn = broker.connect(self.settings, name=f"videodrop-{self.name}")
        self._conn = conn
        try:
            channel = conn.channel()
            broker.declare(channel, self.settings)
            channel.basic_qos(prefetch_count=1)
            self.connected.set()
            self.log.info("consuming", queue=self.settings.probe_queue)
            for method, props, body in channel.consume(self.settings.probe_queue,
                                                       inactivity_timeout=0.5):
                if stop.is_set():
                    break
                if method is None:
                    continue
                self.handle(channel, method, props, body, stop)
            if channel.is_open:
                channel.cancel()
        finally:
            self.connected.clear()
            self._conn = None
            if conn.is_open:
                with contextlib.suppress(*broker.CONNECTION_ERRORS):
                    conn.close()

    def handle(self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties,
               body: bytes, stop: threading.Event) -> None:
        """Settle one delivery: its work runs on this worker's work thread while this
        thread, the connection's, serves the connection (heartbeats: a probe or a hash may
        take longer than RabbitMQ waits for one), then acks or nacks it here. A lost
        connection raises one of ``broker.CONNECTION_ERRORS`` (the caller reconnects; the
        broker delivers the message again, and the work in hand finishes first)."""
        tag = method.delivery_tag
        deliveries = int((props.headers or {}).get("x-delivery-count", 0)) + 1
        structlog.contextvars.bind_contextvars(delivery=deliveries)
        if deliveries > 1 or method.redelivered:
            metrics.REDELIVERIES.inc()
        try:
            context = contextvars.copy_context()  # the work's log lines carry the delivery
            work = self._work.submit(context.run, self.settle, body, deliveries, stop)
            verdict = self._serve_until(work)
        finally:
            structlog.contextvars.unbind_contextvars("delivery", "video_id", "source_id",
                                                     "path", "token")
        if verdict is Settle.ACK:
            channel.basic_ack(tag)
        else:
            channel.basic_nack(tag, requeue=verdict is Settle.REQUEUE)

    def _serve_until(self, work: Future[Settle]) -> Settle:
        """Serve the connection until ``work`` is done (woken at once when it is), then
        its result."""
        conn = self._conn
        if conn is None:
            return work.result()

        def wake(_: object) -> None:
            with contextlib.suppress(*broker.CONNECTION_ERRORS, pika.exceptions.AMQPError):
                conn.add_callback_threadsafe(lambda: None)

        work.add_done_callback(wake)
        while not work.done():
            conn.process_data_events(time_limit=SERVE_SECONDS)
        return work.result()

    def settle(self, body: bytes, deliveries: int, stop: threading.Event) -> Settle:
        """On the work thread: process the message, retrying transient problems in place;
        what to tell the broker."""
        try:
            msg = decode(body)
        except BadMessage as exc:
            self.log.error("bad message; dead-lettered", error=str(exc), body=body[:200])
            metrics.DEAD_LETTERS.inc()
            return Settle.DEAD
        backoff, tries = 0.5, 0
        while True:
            try:
                self.process(msg)
                return Settle.ACK
            except TRANSIENT as exc:
                tries += 1
                outage = isinstance(exc, CatalogUnavailable | StorageFull)
                give_up = tries >= LOCAL_TRIES and not outage
                if stop.is_set() or give_up:
                    self.log.warning("transient problem; back to the queue",
                                     error=str(exc), tries=tries)
                    return Settle.REQUEUE
                self.log.warning("transient problem; retrying", error=str(exc),
                                 retry_in=backoff, tries=tries)
                stop.wait(backoff)
                backoff = min(30.0, backoff * 2)
            except Exception as exc:
                self._log_crash_and_mark_failed(msg, exc, deliveries)
                return Settle.REQUEUE

    def _log_crash_and_mark_failed(self, msg: InboxFile | ProbeVideo, exc: Exception,
                                   deliveries: int) -> None:
        """Log a crash of the handler; on the last delivery the broker allows
        (``VIDEODROP_DELIVERY_LIMIT``) also count the dead letter and mark the message's
        row ``failed`` (``internal``), best effort."""
        last = deliveries >= self.settings.delivery_limit
        self.log.exception("handler crashed", deliveries=deliveries,
                           dead_letter_next=last, error=repr(exc))
        if not last:
            return
        metrics.DEAD_LETTERS.inc()
        video = None
        try:
            if isinstance(msg, ProbeVideo):
                video = self.catalog.by_id(msg.video_id)
            else:
                video = self.catalog.by_claim(msg)
            if video is not None:
                self.catalog.mark_failed(video.id, f"internal error: {exc!r}"[:500],
                                         ErrorCode.INTERNAL)
        except Exception:  # noqa: S110 - best effort: the dead-letter queue keeps the message
            pass

    # --- the work ---------------------------------------------------------------------

    def process(self, msg: InboxFile | ProbeVideo) -> None:
        """The work of one message: claim an inbox file (or find the row of a video id),
        then, under the row's processing lock, probe it unless it is done already (a
        ``force`` ProbeVideo probes again). Raises what :data:`TRANSIENT` names for the
        caller to retry."""
        if isinstance(msg, InboxFile):
            structlog.contextvars.bind_contextvars(path=media.display(msg.path))
            try:
                video = claim(self.catalog, self.inbox, self.media_root, msg, self.policy)
            except store.Refused as exc:  # left in the inbox, like the ingest's refusals
                metrics.CLAIMS_REFUSED.labels(exc.refusal.code).inc()
                self.log.warning("refused", reason=exc.refusal.reason, code=exc.refusal.code)
                return
            if video is None:
                self.log.info("stale message: file changed or gone before claim")
                return
            force = False
        else:
            found = self.catalog.by_id(msg.video_id)
            if found is None:
                self.log.info("no such video", video_id=msg.video_id)
                return
            video, force = found, msg.force
        structlog.contextvars.bind_contextvars(video_id=video.id, source_id=video.source_id,
                                               token=token_prefix(video.access_token))
        if video.status == "uploading":
            self.log.info("still uploading; the upload will publish again")
            return
        with self.catalog.processing_lock(video.id) as locked:
            if not locked:
                self.log.info("duplicate: another worker is probing this video")
                return
            current = self.catalog.by_id(video.id)
            if current is None:
                return
            if current.status in {"ready", "failed"} and not force:
                stored = store.ensure_stored(self.inbox, self.media_root / current.stored_path,
                                             current.claim())
                if not stored and current.status == "ready":
                    self._mark_missing(current)
                    return
                self.log.info("already done", status=current.status)
                return
            self.probe_and_finish(current)

    def _mark_missing(self, video: Video) -> Video:
        """The stored file is gone: the row becomes ``failed`` (``missing_file``), a ready
        one included, and the log line says what the row now holds."""
        done = self.catalog.mark_missing(video.id, "stored file is missing")
        status = done.status if done is not None else video.status
        self.log.error("probe", status=status, error="stored file is missing",
                       error_code=ErrorCode.MISSING_FILE.value if done is not None else None,
                       was=video.status)
        metrics.PROBES.labels(outcome=status).inc()
        return done or video

    def probe_and_finish(self, video: Video) -> Video:
        """Probe and hash the stored file of ``video`` (the caller holds its processing
        lock) and finish its row ``ready`` or ``failed`` (``Catalog.finish_processing``);
        the row as it then is, or ``video`` when the row was deleted meanwhile. A missing
        stored file fails the row (``missing_file``)."""
        t0 = time.perf_counter()
        if not store.ensure_stored(self.inbox, self.media_root / video.stored_path,
                                   video.claim()):
            return self._mark_missing(video)
        started = self.catalog.start_processing(video.id)
        if started is None:
            self.log.info("deleted before its probe; nothing to do")
            return video
        video = started
        path = self.media_root / video.stored_path
        t1 = time.perf_counter()
        digest = self._hasher.submit(store.sha256_of, path)
        with metrics.PROBES_IN_PROGRESS.track_inprogress():
            result = self.prober(path)
            sha256 = digest.result()
        t2 = time.perf_counter()
        metrics.PROBE_SECONDS.observe(t2 - t1)
        size = path.stat().st_size
        metadata = {**result.metadata, "sha256": sha256, "size": size}
        outcome = ProbeOutcome(status="ready" if result.ok else "failed", error=result.error,
                               error_code=result.code, size=size, sha256=sha256,
                               metadata=metadata, raw=result.raw)
        done = self.catalog.finish_processing(video.id, outcome)
        if done is None:
            self.log.info("deleted while being probed; nothing recorded")
            return video
        t3 = time.perf_counter()
        self.log.info("probe", status=done.status, error=done.processing_error,
                      error_code=done.error_code,
                      format=done.format, duration=done.duration, size=size,
                      claim_ms=round((t1 - t0) * 1000, 1), probe_ms=round((t2 - t1) * 1000, 1),
                      commit_ms=round((t3 - t2) * 1000, 1), total_ms=round((t3 - t0) * 1000, 1))
        metrics.PROBES.labels(outcome=done.status).inc()
        return done


# --- the claim of an inbox file ---------------------------------------------------------

def claim(catalog: Catalog, inbox: Path, media_root: Path, msg: InboxFile,
          policy: InboxPolicy | None = None) -> Video | None:
    """The row for this name of this file, with the file in the store (prober/store.py
    moves it); None for a stale message (the file changed or vanished before anyone
    claimed it: a fresh message will follow). :class:`TransientFileError` while another
    prober claims the same name; :class:`store.Refused` when ``policy`` (default: the
    default policy) refuses the file as it is now (a row an interrupted claim left goes
    ``failed``, ``refused``)."""
    src = inbox / msg.path
    with catalog.claim_lock(msg) as locked:
        if not locked:
            raise TransientFileError(f"another prober is claiming {media.display(msg.path)}")
        st = store.settled_stat(inbox, msg)
        if st is None:
            # Not (or no longer) in the inbox as this message describes it. If someone
            # claimed it before (a redelivery, a re-publish), the row tells where it went.
            return catalog.by_claim(msg)
        now = msg.at(st.st_ctime_ns)
        refusal = store.refusal_of(policy or InboxPolicy(), src, now)
        known = catalog.by_claim(now) or _earlier_claim(catalog, media_root, src, now)
        if refusal is not None:
            if known is not None and known.status == "processing":
                catalog.mark_failed(known.id, refusal.reason, ErrorCode.REFUSED)
            raise store.Refused(refusal)
        video = known or catalog.claim_inbox_file(now)[0]
        dst = media_root / video.stored_path
        if store.held_by_another(src, dst):
            moved = catalog.move_stored(video)
            if moved is None:
                raise TransientFileError(f"{media.display(msg.path)}: its row changed")
            video, dst = moved, media_root / moved.stored_path
        try:
            store.remove_parts(dst)  # of a copy of this claim that died: we hold its lock
            store.move_into_store(src, dst, now, other_names=st.st_nlink > 1)
        except TransientFileError as exc:  # the row says why the file still waits
            catalog.note_waiting(video.id, str(exc))
            raise
        return video


def _earlier_claim(catalog: Catalog, media_root: Path, src: Path, key: InboxFile
                   ) -> Video | None:
    """The row that already owns this file under an earlier ctime, with its key moved to
    ``key``: one not probed yet whose stored file is missing or holds this file's bytes
    (:func:`store.holds_same_bytes`). None: the file is new (its inode reused)."""
    for video in catalog.earlier_claims(key):
        if store.holds_same_bytes(src, media_root / video.stored_path):
            return catalog.rekey_claim(video, key.ctime_ns)
    return None
