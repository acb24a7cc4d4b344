"""Ready videos by token, kept in each API worker: a token lookup without a database
round trip, and never a stale answer worth the name.

What keeps an entry honest:

* **PostgreSQL says when a ready row changes or goes.** A trigger (migration 0003) sends
  ``NOTIFY videodrop_videos, '<id>'`` for every update or delete of a ready row, and
  ``'*'`` on a TRUNCATE; a listener thread in each worker drops that entry. Until the
  listener has its ``LISTEN`` in place, and from the moment it loses its connection until
  it has it back, the cache is off and every lookup reads the database.
* **The API's own writes are seen at once.** Rotate, revoke and delete (``Catalog``'s
  ``after_write`` hook) change a stamp in memory shared by every worker of the gunicorn
  master before they answer, and every worker's next lookup drops all it holds: "the old
  token stops at once" does not wait for a notification. Writes from other processes (a
  re-probe, the command line) are seen when their notification arrives, milliseconds later.
* **No store after a change.** A row read before a change but stored after its
  notification would be stale: every notification and stamp change moves a generation,
  and a store whose read began under an older generation is refused.
* **Expiry** is checked against the clock on every hit.

The same listener keeps the stream links (``videodrop/links.py``) in step with changes made
around the catalog: a ``videodrop_links`` notice (migration 0004) removes that token's link.
Notices sent while the listener was disconnected are lost, so once it listens again after
an outage it removes every link whose row changed meanwhile (``resync``:
``Catalog.prune_links``), before it handles the next notice.

Only ready rows with a token are kept (the other states change on their own soon), at most
``max_entries``, oldest out first. The rendered JSON of each endpoint is kept with the row.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from api.tokens.sharedstamp import SharedStamp
from videodrop import links
from videodrop.catalog import Video
from videodrop.errors import CatalogUnavailable

CHANNEL = "videodrop_videos"  # the trigger's channel (migration 0003)
EVERYTHING = "*"
APPLICATION_NAME = "videodrop-token-cache"  # the listener in pg_stat_activity
KEEPALIVE_SECONDS = 10.0  # a SELECT 1 on a quiet listener connection, to notice it dying


@dataclass
class Entry:
    video: Video
    rendered: dict[str, bytes] = field(default_factory=dict)  # endpoint -> JSON body

    def body(self, name: str, render: Callable[[Video], bytes]) -> bytes:
        data = self.rendered.get(name)
        if data is None:
            data = self.rendered[name] = render(self.video)
        return data


Mark = tuple[int, bytes]


class TokenCache:
    def __init__(self, database_url: str, *, clock: Callable[[], datetime], log: Any,
                 max_entries: int = 20_000, stamp: SharedStamp | None = None,
                 stream_links: links.StreamLinks | None = None,
                 resync: Callable[[], int] | None = None) -> None:
        self.database_url = database_url
        self.clock = clock
        self.log = log
        self.max_entries = max_entries
        self._stamp = stamp or SharedStamp()  # one process's own: tests, a single worker
        self._seen = self._stamp.read()
        self._entries: dict[str, Entry] = {}
        self._ids: dict[int, str] = {}
        self._generation = 0
        self._live = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.stream_links = stream_links
        self.resync = resync  # removes stale stream links: after an outage

    # --- the request path ---------------------------------------------------------------

    def get(self, token: str) -> Entry | None:
        if not self._live:
            return None
        if self._stamp.read() != self._seen:
            self._drop_all()
        entry = self._entries.get(token)
        if entry is None:
            return None
        expires = entry.video.token_expires_at
        if expires is not None and expires <= self.clock():
            return None
        return entry

    def mark(self) -> Mark:
        """Taken before reading a row from the database; :meth:`put` needs it."""
        return self._generation, self._stamp.read()

    def put(self, token: str, video: Video, mark: Mark) -> Entry:
        entry = Entry(video)
        if video.status != "ready" or video.access_token != token:
            return entry
        with self._lock:
            if not self._live or mark != (self._generation, self._stamp.read()):
                return entry  # something changed while the row was read
            if len(self._entries) >= self.max_entries:
                oldest = next(iter(self._entries))
                self._ids.pop(self._entries.pop(oldest).video.id, None)
            self._entries[token] = entry
            self._ids[video.id] = token
        return entry

    def changed(self) -> None:
        """This process committed a change to a video: every worker forgets everything."""
        self._stamp.change()
        self._drop_all()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def live(self) -> bool:
        return self._live

    # --- invalidation -------------------------------------------------------------------

    def _drop_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._seen = self._stamp.read()
            self._entries.clear()
            self._ids.clear()

    def _drop(self, payload: str) -> None:
        if payload == EVERYTHING:
            self._drop_all()
            return
        with self._lock:
            self._generation += 1
            with contextlib.suppress(ValueError):
                token = self._ids.pop(int(payload), None)
                if token is not None:
                    self._entries.pop(token, None)

    def _forget(self, token: str) -> None:
        """:meth:`_drop` by token (``links.EVERYTHING``: all) instead of by id."""
        if token == links.EVERYTHING:
            self._drop_all()
            return
        with self._lock:
            self._generation += 1
            entry = self._entries.pop(token, None)
            if entry is not None:
                self._ids.pop(entry.video.id, None)

    def _unlink(self, token: str) -> None:
        """A row lost its link behind the catalog's back (``psql``): forget its entry (its
        own notice may come later), then remove the link, so that this worker never answers
        from memory for a token whose link it removed."""
        self._forget(token)
        if self.stream_links is None:
            return
        try:
            if token == links.EVERYTHING:
                self.stream_links.remove_all()
            else:
                self.stream_links.remove(token)
        except OSError as exc:
            self.log.warning("stream link not removed: run 'videodrop links'",
                             error=str(exc))

    def _resync(self) -> None:
        """Links of rows changed while no notice could be heard: removed (the listener
        listens again already, so a change from now on comes as a notice)."""
        if self.stream_links is None or self.resync is None:
            return
        try:
            removed = self.resync()
        except (OSError, psycopg.Error, CatalogUnavailable) as exc:
            self.log.warning("stream links not checked after the listener's outage: run"
                             " 'videodrop links'", error=str(exc).strip())
            return
        self.log.info("stream links checked after the listener's outage", removed=removed)

    def _set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            if live:
                self._listening.set()
            else:
                self._listening.clear()
            self._generation += 1
            self._entries.clear()
            self._ids.clear()

    # --- the listener thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, daemon=True,
                                        name="videodrop-token-cache")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._set_live(False)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_live(self, timeout: float) -> bool:
        """True once the listener is in place (within ``timeout`` seconds)."""
        return self._listening.wait(timeout)

    def _listen(self) -> None:
        delay, outage = 0.2, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5,
                                     application_name=APPLICATION_NAME,
                                     keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                     keepalives_count=3) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self.stream_links is not None:
                        conn.execute(f"LISTEN {links.CHANNEL}")
                    self._set_live(True)
                    if outage:
                        self.log.info("token cache back on", channel=CHANNEL)
                        self._resync()
                    delay, outage = 0.2, False
                    self._pump(conn)
            except psycopg.Error as exc:
                if not outage:
                    self.log.warning("token cache off: lookups read the database until the"
                                     " listener reconnects", error=str(exc).strip())
                outage = True
            self._set_live(False)
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)

    def _pump(self, conn: psycopg.Connection[Any]) -> None:
        heard = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=1.0):
                if note.channel == CHANNEL:
                    self._drop(note.payload)
                else:
                    self._unlink(note.payload)
                heard = time.monotonic()
            if time.monotonic() - heard > KEEPALIVE_SECONDS:
                conn.execute("SELECT 1")  # raises if the connection has died quietly
                heard = time.monotonic()
