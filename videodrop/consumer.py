"""One queue consumer: a pika BlockingConnection of its own, prefetch 1, ack after the
commit; what the prober's and the derive role's workers share (they subclass it).

The consumer's thread owns the connection (pika: one thread per connection) and serves it
while the message's work runs on a work thread of the worker's own, as pika's
``basic_consumer_threaded.py`` example does: heartbeats go on however long the work
takes, so the broker never drops the connection and redelivers a message in hand.

A subclass gives ``decode_job`` (bytes → message; :class:`BadMessage` dead-letters it),
``process`` (the work), ``TRANSIENT`` (problems worth retrying in place), ``is_outage``
(transient problems waited out indefinitely) and ``record_failure`` (an unexpected error
on the last delivery allowed: the broker dead-letters the message after it)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from typing import Any

import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from videodrop import broker, metrics
from videodrop.errors import BrokerUnavailable
from videodrop.messages import BadMessage
from videodrop.settings import Settings

# Transient problems other than outages get this many tries in place, then go back to
# the queue, where the delivery limit sends a hopeless message to the dead-letter queue.
LOCAL_TRIES = 8
SERVE_SECONDS = 1.0  # at most between two looks at the work (it wakes the loop when done)
RETRY_CONNECT: tuple[type[BaseException], ...] = (BrokerUnavailable, *broker.CONNECTION_ERRORS)


class Settle(Enum):
    """What the broker is told of a delivery."""

    ACK = "ack"
    REQUEUE = "nack, requeue"  # tried again (the delivery limit ends a hopeless one)
    DEAD = "nack, dead-letter"


class Consumer:
    """Consumes ``queue`` until ``run``'s stop event is set (module docstring)."""

    TRANSIENT: tuple[type[BaseException], ...] = ()
    REDELIVERIES: Any = metrics.REDELIVERIES  # counters of the role's registry
    DEAD_LETTERS: Any = metrics.DEAD_LETTERS
    #: context variables bound while a message is handled, unbound after it
    CONTEXT_KEYS: tuple[str, ...] = ("delivery",)

    def __init__(self, settings: Settings, log: Any, *, name: str, queue: str) -> None:
        self.settings = settings
        self.log = log
        self.name = name
        self.queue = queue
        self.connected = threading.Event()
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-work")
        self._conn: pika.BlockingConnection | None = None
        self._ack_now: Any = None  # the delivery in hand's early ack (:meth:`ack_early`)
        self._acked_early = threading.Event()

    # --- what a subclass gives --------------------------------------------------------

    def decode_job(self, body: bytes) -> Any:
        raise NotImplementedError

    def process(self, msg: Any) -> None:
        raise NotImplementedError

    def is_outage(self, exc: BaseException) -> bool:
        return False

    def record_failure(self, msg: Any, exc: Exception) -> None:
        """Say in the catalog why ``msg`` failed: it crashed on its last delivery allowed
        and goes to the dead-letter queue (best effort: errors are ignored)."""

    def crashed(self, msg: Any, exc: Exception, deliveries: int) -> None:
        last = deliveries >= self.settings.delivery_limit
        self.log.exception("handler crashed", deliveries=deliveries,
                           dead_letter_next=last, error=repr(exc))
        if not last:
            return
        self.DEAD_LETTERS.inc()
        with contextlib.suppress(Exception):  # the dead-letter queue keeps the message
            self.record_failure(msg, exc)

    def shutdown(self) -> None:
        """After the last message (the work thread is done)."""

    # --- consuming --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
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
        self.shutdown()

    def _consume(self, stop: threading.Event) -> None:
        conn = broker.connect(self.settings, name=f"videodrop-{self.name}")
        self._conn = conn
        try:
            channel = conn.channel()
            broker.declare(channel, self.settings)
            channel.basic_qos(prefetch_count=1)
            self.connected.set()
            self.log.info("consuming", queue=self.queue)
            for method, props, body in channel.consume(self.queue, inactivity_timeout=0.5):
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
        thread, the connection's, serves the connection (heartbeats: the work may take
        longer than RabbitMQ waits for one), then acks or nacks it here. A lost connection
        raises one of ``broker.CONNECTION_ERRORS`` (the caller reconnects; the broker
        delivers the message again, and the work in hand finishes first)."""
        tag = method.delivery_tag
        deliveries = int((props.headers or {}).get("x-delivery-count", 0)) + 1
        structlog.contextvars.bind_contextvars(delivery=deliveries)
        if deliveries > 1 or method.redelivered:
            self.REDELIVERIES.inc()
        self._acked_early.clear()
        self._ack_now = functools.partial(channel.basic_ack, tag)
        try:
            context = contextvars.copy_context()  # the work's log lines carry the delivery
            work = self._work.submit(context.run, self.settle, body, deliveries, stop)
            verdict = self._serve_until(work)
        finally:
            self._ack_now = None
            structlog.contextvars.unbind_contextvars(*self.CONTEXT_KEYS)
        if self._acked_early.is_set():
            return  # settled already: what happens next is the catalog's to say
        if verdict is Settle.ACK:
            channel.basic_ack(tag)
        else:
            channel.basic_nack(tag, requeue=verdict is Settle.REQUEUE)

    def ack_early(self) -> None:
        """From the work thread: ack the delivery in hand now, before its work ends (a
        job longer than the broker's consumer timeout whose progress the catalog holds:
        derive/transcoder.py). Its outcome no longer goes to the broker."""
        conn, ack = self._conn, self._ack_now
        if conn is None or ack is None:
            return
        conn.add_callback_threadsafe(ack)
        self._acked_early.set()

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
            msg = self.decode_job(body)
        except BadMessage as exc:
            self.log.error("bad message; dead-lettered", error=str(exc), body=body[:200])
            self.DEAD_LETTERS.inc()
            return Settle.DEAD
        backoff, tries = 0.5, 0
        while True:
            try:
                self.process(msg)
                return Settle.ACK
            except self.TRANSIENT as exc:
                tries += 1
                give_up = tries >= LOCAL_TRIES and not self.is_outage(exc)
                if stop.is_set() or give_up:
                    self.log.warning("transient problem; back to the queue",
                                     error=str(exc), tries=tries)
                    return Settle.REQUEUE
                self.log.warning("transient problem; retrying", error=str(exc),
                                 retry_in=backoff, tries=tries)
                stop.wait(backoff)
                backoff = min(30.0, backoff * 2)
            except Exception as exc:
                self.crashed(msg, exc, deliveries)
                return Settle.REQUEUE
