"""One listener for PostgreSQL's change notices, handing typed events to its subscribers
(the API's token cache, the stream links), in the way of pgqueuer's event router.

The notices (sent when the writing transaction commits):

* ``videodrop_videos`` (migration 0003): a ready row was updated or deleted; payload its
  id, or ``'*'`` when the table was truncated. → :class:`VideoChanged`, :class:`AllChanged`
* ``videodrop_links`` (migration 0004): a row lost its stream link by a change made around
  the catalog (``psql``); payload the old token, or ``'*'`` (truncated). The catalog's own
  changes are not announced: it removes their links itself. → :class:`LinkChanged`,
  :class:`AllChanged`

and the listener's own state, since a notice sent while it is disconnected is lost:

* :class:`Listening`: ``LISTEN`` is in place; every change that commits from now on comes
  as an event. ``resumed`` is True when notices may have been lost since the last
  :class:`Listening` (the connection was lost, or could not be made, in between).
* :class:`Deaf`: the connection is lost; no event comes until the next :class:`Listening`.

Events are handed out one at a time, in the listener's thread, in the order the notices
arrived; each to every subscriber of its type, in the order they subscribed. A subscriber
that raises is logged and the others still get the event. Until :meth:`ChangeListener.start`
and after :meth:`ChangeListener.close` nothing is heard (subscribers get :class:`Deaf`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

__all__ = [
    "LINKS_CHANNEL",
    "VIDEOS_CHANNEL",
    "AllChanged",
    "ChangeListener",
    "Deaf",
    "Event",
    "LinkChanged",
    "Listening",
    "VideoChanged",
    "event_of",
]

VIDEOS_CHANNEL = "videodrop_videos"  # migration 0003: '<id>' or '*'
LINKS_CHANNEL = "videodrop_links"  # migration 0004: '<old token>' or '*'
EVERYTHING = "*"  # the payload of a TRUNCATE on either channel
APPLICATION_NAME = "videodrop-changes"  # the listener's connection in pg_stat_activity
KEEPALIVE_SECONDS = 10.0  # a SELECT 1 on a quiet connection, to notice it dying
MAX_RETRY_SECONDS = 5.0  # the longest wait between two tries to connect


@dataclass(frozen=True)
class VideoChanged:
    """The ready row of ``video_id`` changed or went."""

    video_id: int


@dataclass(frozen=True)
class LinkChanged:
    """The row holding ``token`` lost its stream link around the catalog."""

    token: str


@dataclass(frozen=True)
class AllChanged:
    """Every row may have changed (the table was truncated)."""


@dataclass(frozen=True)
class Listening:
    """``LISTEN`` is in place; ``resumed``: notices may have been lost before it."""

    resumed: bool


@dataclass(frozen=True)
class Deaf:
    """The listener has no connection: changes go unheard until the next Listening."""


Event = VideoChanged | LinkChanged | AllChanged | Listening | Deaf
E = TypeVar("E", VideoChanged, LinkChanged, AllChanged, Listening, Deaf)


def event_of(channel: str, payload: str) -> Event | None:
    """The event of one notice; None for a payload that names nothing (not an id)."""
    if payload == EVERYTHING:
        return AllChanged()
    if channel == VIDEOS_CHANNEL:
        return VideoChanged(int(payload)) if payload.isdigit() else None
    if channel == LINKS_CHANNEL:
        return LinkChanged(payload) if payload else None
    return None


class ChangeListener:
    """A thread holding one PostgreSQL connection that listens on ``channels`` (both by
    default) and hands the events of the module docstring to subscribers. It reconnects
    after a loss, waiting 0.2 s and doubling up to :data:`MAX_RETRY_SECONDS`."""

    def __init__(self, database_url: str, *, log: Any,
                 channels: tuple[str, ...] = (VIDEOS_CHANNEL, LINKS_CHANNEL)) -> None:
        self.database_url = database_url
        self.log = log
        self.channels = channels
        self._subscribers: list[tuple[type, Callable[[Any], None]]] = []
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler(event)`` for every event of type ``kind``. Subscribe before
        :meth:`start`."""
        self._subscribers.append((kind, handler))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen_until_closed, daemon=True,
                                        name="videodrop-changes")
        self._thread.start()

    def close(self) -> None:
        """Stop listening; subscribers get a last :class:`Deaf`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listening.clear()
        self._emit(Deaf())

    def wait_listening(self, timeout: float) -> bool:
        """True once ``LISTEN`` is in place (within ``timeout`` seconds)."""
        return self._listening.wait(timeout)

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def _emit(self, event: Event) -> None:
        """Call every handler subscribed to ``event``'s kind; a failing one is logged."""
        for kind, handler in self._subscribers:
            if isinstance(event, kind):
                try:
                    handler(event)
                except Exception as exc:  # one subscriber's bug must not deafen the others
                    self.log.error("change subscriber failed", change=repr(event),
                                   error=f"{type(exc).__name__}: {exc}")

    def _listen_until_closed(self) -> None:
        """The listener's thread: connect, LISTEN on every channel, hand each notice to the
        subscribers (:class:`Listening` after each connect, :class:`Deaf` after each loss),
        and reconnect after a loss until :meth:`close`."""
        delay, resumed, reported = 0.2, False, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5,
                                     application_name=APPLICATION_NAME,
                                     keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                     keepalives_count=3) as conn:
                    for channel in self.channels:
                        conn.execute(f"LISTEN {channel}")
                    self._listening.set()
                    if reported:
                        self.log.info("change listener back", channels=list(self.channels))
                    self._emit(Listening(resumed=resumed))
                    delay, reported = 0.2, False
                    self._deliver_notices(conn)
            except psycopg.Error as exc:
                if not reported:
                    self.log.warning("change listener lost its connection; reconnecting",
                                     error=str(exc).strip())
                reported = True
            resumed = True  # whatever ended the connection, notices may be lost from here
            if self._listening.is_set():
                self._listening.clear()
                self._emit(Deaf())
            self._stop.wait(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _deliver_notices(self, conn: psycopg.Connection[Any]) -> None:
        """Hand each notice on ``conn`` to the subscribers as its event until :meth:`close`;
        a ``SELECT 1`` after KEEPALIVE_SECONDS of silence makes a dead connection raise
        (``psycopg.Error``)."""
        heard = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=1.0):
                event = event_of(note.channel, note.payload)
                if event is not None:
                    self._emit(event)
                heard = time.monotonic()
            if time.monotonic() - heard > KEEPALIVE_SECONDS:
                conn.execute("SELECT 1")  # raises if the connection has died quietly
                heard = time.monotonic()
