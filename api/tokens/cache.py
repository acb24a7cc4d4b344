"""Ready videos by token, kept in each API worker: a token lookup without a database
round trip, and never a stale answer worth the name.

What keeps an entry honest:

* **PostgreSQL says when a ready row changes or goes.** The change listener
  (``videodrop/changes.py``, one per worker) hands this cache its events
  (:meth:`TokenCache.subscribe`): a changed video drops its entry, a link changed around
  the catalog drops the entry of that token, everything changed drops all. Until the
  listener has its ``LISTEN`` in place, and from the moment it loses its connection until
  it has it back, the cache is off and every lookup reads the database.
* **The API's own writes are seen at once.** Rotate, revoke and delete (``Catalog``'s
  ``after_write`` hook, :meth:`TokenCache.changed`) change a stamp in memory shared by
  every worker of the gunicorn master before they answer, and every worker's next lookup
  drops all it holds: "the old token stops at once" does not wait for a notice. Writes
  from other processes (a re-probe, the command line) are seen when their notice arrives.
* **No store after a change.** A row read before a change but stored after its notice
  would be stale: every event and stamp change moves a generation, and a store whose read
  began under an older generation is refused.
* **Expiry** is checked against the clock on every hit.

Only ready rows with a token are kept (the other states change on their own soon), at most
``max_entries``, oldest out first. The rendered JSON of each endpoint is kept with the row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.tokens.sharedstamp import SharedStamp
from videodrop.catalog import Video
from videodrop.changes import AllChanged, ChangeListener, Deaf, LinkChanged, Listening, VideoChanged


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
    """The entries of one worker (module docstring). ``clock``: now, as the catalog's;
    ``stamp``: the page the gunicorn master shares with every worker (a private one for a
    single process: tests)."""

    def __init__(self, *, clock: Callable[[], datetime], log: Any,
                 max_entries: int = 20_000, stamp: SharedStamp | None = None) -> None:
        self.clock = clock
        self.log = log
        self.max_entries = max_entries
        self._stamp = stamp or SharedStamp()
        self._seen = self._stamp.read()
        self._entries: dict[str, Entry] = {}
        self._ids: dict[int, str] = {}
        self._generation = 0
        self._live = False
        self._lock = threading.Lock()
        self._listening = threading.Event()

    def subscribe(self, listener: ChangeListener) -> None:
        """Follow ``listener``'s events; subscribe before the stream links' remover, so that
        a worker forgets a token before its link goes (it never answers from memory for a
        token whose link it removed)."""
        listener.subscribe(VideoChanged, self.forget_video)
        listener.subscribe(LinkChanged, self.forget_token)
        listener.subscribe(AllChanged, self.forget_all)
        listener.subscribe(Listening, self.turn_on)
        listener.subscribe(Deaf, self.turn_off)

    # --- the request path ---------------------------------------------------------------

    def get(self, token: str) -> Entry | None:
        if not self._live:
            return None
        if self._stamp.read() != self._seen:
            self._clear()
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
        self._clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def live(self) -> bool:
        return self._live

    def wait_live(self, timeout: float) -> bool:
        """True once the listener is in place (within ``timeout`` seconds)."""
        return self._listening.wait(timeout)

    # --- the change listener's events ---------------------------------------------------

    def forget_video(self, event: VideoChanged) -> None:
        with self._lock:
            self._generation += 1
            token = self._ids.pop(event.video_id, None)
            if token is not None:
                self._entries.pop(token, None)

    def forget_token(self, event: LinkChanged) -> None:
        with self._lock:
            self._generation += 1
            entry = self._entries.pop(event.token, None)
            if entry is not None:
                self._ids.pop(entry.video.id, None)

    def forget_all(self, event: AllChanged) -> None:
        self._clear()

    def turn_on(self, event: Listening) -> None:
        if event.resumed:
            self.log.info("token cache back on")
        self._set_live(True)

    def turn_off(self, event: Deaf) -> None:
        if self._live:
            self.log.warning("token cache off: lookups read the database until the"
                             " listener reconnects")
        self._set_live(False)

    def _clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._seen = self._stamp.read()
            self._entries.clear()
            self._ids.clear()

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
