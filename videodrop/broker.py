"""RabbitMQ topology and a confirmed publisher (pika, one BlockingConnection per thread)."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pika
import pika.channel
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils import connection_workflow

from videodrop.brokerurls import redact
from videodrop.errors import BrokerUnavailable
from videodrop.messages import Message, encode, routing_key
from videodrop.settings import Settings

# What means "the broker is not there right now" rather than "this message is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionClosed,
    pika.exceptions.ChannelClosed,
    # the TCP connection opened but the AMQP handshake never finished (stack_timeout)
    connection_workflow.AMQPConnectorException,
    ConnectionError,
    OSError,
)


HEARTBEAT = 60  # seconds, unless VIDEODROP_AMQP_URL says (``?heartbeat=N``)
# counts this process's connections: with its pid, which URL the next one starts at
# (parameters); the pid also sets forked processes (gunicorn's workers) apart
_TURN = itertools.count()


def parameters(settings: Settings, *, name: str) -> list[pika.URLParameters]:
    """pika's parameters, one per URL of VIDEODROP_AMQP_URL (several: the nodes of one
    cluster), in turn: each new connection of this process starts at the URL after the one
    the previous connection started at (the first: by the process id), so connections
    spread over the nodes, and pika tries the others in order when that one does not
    answer (one attempt each, ``socket_timeout`` seconds at most per node that does not
    answer). Each URL's
    ``heartbeat`` query option is kept (seconds; RabbitMQ closes a connection silent for
    two of them), else ``HEARTBEAT``."""
    urls = settings.amqp_urls
    start = (os.getpid() + next(_TURN)) % len(urls)
    found = []
    for url in urls[start:] + urls[:start]:
        params = pika.URLParameters(url)
        params.client_properties = {"connection_name": name}
        if "heartbeat" not in parse_qs(urlsplit(url).query):
            params.heartbeat = HEARTBEAT
        params.blocked_connection_timeout = 30
        params.connection_attempts = 1
        params.socket_timeout = 5
        found.append(params)
    return found


def connect(settings: Settings, *, name: str) -> pika.BlockingConnection:
    """A connection to the first node of VIDEODROP_AMQP_URL that answers (:func:`parameters`);
    :class:`BrokerUnavailable` naming the URLs (without passwords) when none does."""
    try:
        return pika.BlockingConnection(parameters(settings, name=name))
    except CONNECTION_ERRORS as exc:
        where = ", ".join(redact(url) for url in settings.amqp_urls)
        raise BrokerUnavailable(f"RabbitMQ at {where}: {exc!r}") from exc


def declare(channel: BlockingChannel, settings: Settings) -> None:
    """Exchange, and for each of the probe and derive jobs (routing keys ``probe`` and
    ``derive``) a durable quorum queue with a delivery limit and its dead-letter queue."""
    channel.exchange_declare(settings.exchange, exchange_type="direct", durable=True)
    channel.exchange_declare(settings.dead_exchange, exchange_type="direct", durable=True)
    for key, queue, dead in settings.job_queues:
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead, settings.dead_exchange, routing_key=key)
        channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # RabbitMQ counts *returns*: a limit of n allows n + 1 deliveries
                "x-delivery-limit": settings.delivery_limit - 1,
                "x-dead-letter-exchange": settings.dead_exchange,
                "x-dead-letter-routing-key": key,
            },
        )
        channel.queue_bind(queue, settings.exchange, routing_key=key)


class _Link:
    """One connection and channel, opened on first use, dropped on any error."""

    def __init__(self, settings: Settings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self._conn: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def process_events(self) -> None:
        """Serve heartbeats (and confirms) while idle."""
        if self._conn is not None and self._conn.is_open:
            try:
                self._conn.process_data_events(0)
            except CONNECTION_ERRORS:
                self.close()

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                if conn.is_open:
                    conn.close()
            except Exception:  # noqa: S110 - closing a broken connection may fail; nothing to do
                pass


class Publisher(_Link):
    """Persistent messages with publisher confirms: ``publish`` returns once the broker has
    the message safely, or raises :class:`BrokerUnavailable`. Reconnects on the next call."""

    def _open_channel(self) -> BlockingChannel:
        """The channel, in confirm mode and with the topology declared; a new connection
        when there is none or it closed. ``broker.CONNECTION_ERRORS`` when it cannot."""
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._conn = connect(self.settings, name=self.name)
            channel = self._conn.channel()
            channel.confirm_delivery()
            declare(channel, self.settings)
            self._channel = channel
        return self._channel

    def publish(self, msg: Message) -> None:
        self.publish_body(encode(msg), routing_key(msg))

    def publish_body(self, body: bytes, key: str = "probe") -> None:
        """Publish ``body`` with routing key ``key`` (``probe`` or ``derive``)."""
        try:
            channel = self._open_channel()
            channel.basic_publish(
                self.settings.exchange,
                key,
                body,
                pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                     content_type="application/json"),
                mandatory=True,
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            self.close()
            raise BrokerUnavailable(f"broker refused the message: {exc!r}") from exc
        except CONNECTION_ERRORS as exc:
            self.close()
            raise BrokerUnavailable(repr(exc)) from exc


def _nothing() -> None:
    """A timer callback that only ends the current ``process_data_events``."""


def wrapped_channel(channel: BlockingChannel) -> pika.channel.Channel:
    """The asynchronous ``pika.channel.Channel`` a ``BlockingChannel`` drives: its
    ``confirm_delivery`` takes a callback for many confirms at once, and its
    ``basic_publish`` only queues the frames (the blocking one also flushes the socket and
    polls after every message). pika has no public accessor, so this is the one place that
    reads ``BlockingChannel._impl``; tests/integration/test_broker_batches.py fails when
    pika changes it. Raises ``TypeError`` when it is not there."""
    wrapped = getattr(channel, "_impl", None)
    if not isinstance(wrapped, pika.channel.Channel):
        raise TypeError(f"pika {pika.__version__}: BlockingChannel wraps no pika.channel.Channel"
                        " (_impl); BatchPublisher needs it for batched confirms")
    return wrapped


class BatchPublisher(_Link):
    """Many messages per broker round trip: publish a batch, then wait for the broker's
    confirms of all of it. ``publish_batch`` returns the messages the broker confirmed;
    the rest (nacked, returned, or unanswered when the connection broke) are the
    caller's to retry. Confirming one message at a time costs a quorum-queue commit per
    message; a batch shares them (docs/benchmarks.md: the 100,000-file inbox).

    pika's BlockingChannel only offers one-at-a-time confirms, so confirm mode is switched
    on through the channel it wraps (:func:`wrapped_channel`) with a callback that pika runs
    inside ``process_data_events``."""

    def __init__(self, settings: Settings, *, name: str, confirm_timeout: float = 30.0,
                 poll: float = 0.01) -> None:
        super().__init__(settings, name=name)
        self.confirm_timeout = confirm_timeout
        #: The longest one wait for confirms blocks (s): a confirm ends it at once
        #: (:meth:`_on_confirm`), so this only bounds how often the deadline is checked.
        self.poll = poll
        self._acked: set[int] = set()
        self._failed: set[int] = set()
        self._answered_to = 0  # every tag up to here has an answer

    def _open_channel(self) -> BlockingChannel:
        """The channel, its wrapped channel in confirm mode with this publisher's confirm
        and return callbacks; a new connection, and fresh delivery tags, when there is none
        or it closed. ``broker.CONNECTION_ERRORS`` when it cannot."""
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._conn = connect(self.settings, name=self.name)
            channel = self._conn.channel()
            declare(channel, self.settings)
            wrapped = wrapped_channel(channel)
            wrapped.confirm_delivery(ack_nack_callback=self._on_confirm)
            wrapped.add_on_return_callback(self._on_return)
            self._conn.process_data_events(0)
            self._channel = channel
            self._tag = 0
            self._acked, self._failed, self._answered_to = set(), set(), 0
            self._returned: set[bytes] = set()
        return self._channel

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        tags = (range(self._answered_to + 1, method.delivery_tag + 1) if method.multiple
                else (method.delivery_tag,))
        for tag in tags:
            (self._acked if ok else self._failed).add(tag)
        if method.multiple:
            self._answered_to = max(self._answered_to, method.delivery_tag)
        # pika runs this callback of the wrapped channel inside process_data_events, whose
        # time limit it does not end (only the BlockingConnection's own events do): a
        # 0-delay timer is one of those, so the wait in publish_batch returns now rather
        # than at the end of its poll (10 ms more for every batch the ingest published).
        if self._conn is not None:
            self._conn.call_later(0, _nothing)

    def _on_return(self, _channel: Any, _method: Any, _props: Any, body: bytes) -> None:
        self._returned.add(body)

    def publish_batch(self, msgs: list[Message]) -> list[Message]:
        """Publish ``msgs`` (persistent, mandatory) and wait up to ``confirm_timeout``
        seconds for the broker's answers: the messages it confirmed and did not return,
        in their order. :class:`BrokerUnavailable` when the connection fails or the
        answers do not come (nothing of the batch then counts as confirmed)."""
        if not msgs:
            return []
        try:
            channel = wrapped_channel(self._open_channel())
            assert self._conn is not None
            sent: dict[int, tuple[Message, bytes]] = {}
            props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                         content_type="application/json")
            for i, msg in enumerate(msgs):
                body = encode(msg)
                # the wrapped channel only queues the frames; BlockingChannel.basic_publish
                # would also flush the socket and poll after every message
                channel.basic_publish(self.settings.exchange, routing_key(msg), body, props,
                                      mandatory=True)
                self._tag += 1
                sent[self._tag] = (msg, body)
                if i % 256 == 255:
                    self._conn.process_data_events(0)  # take confirms as they come
            deadline = time.monotonic() + self.confirm_timeout
            while not all(t in self._acked or t in self._failed for t in sent):
                if time.monotonic() > deadline:
                    raise BrokerUnavailable("no publisher confirms within "
                                            f"{self.confirm_timeout:g} s")
                self._conn.process_data_events(self.poll)
        except CONNECTION_ERRORS as exc:
            self.close()
            raise BrokerUnavailable(repr(exc)) from exc
        confirmed = [m for t, (m, body) in sent.items()
                     if t in self._acked and body not in self._returned]
        for t in sent:
            self._acked.discard(t)
            self._failed.discard(t)
        self._returned.clear()
        return confirmed
