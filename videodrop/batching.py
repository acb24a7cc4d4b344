"""One timed buffer for everything a busy process collects and writes in batches: the
API's log lines (``videodrop.logs``), counts kept in memory (``videodrop.metrics``) and
the request metrics (``api/ops/metrics.py``).

A :class:`TimedBuffer` takes items from any thread for the price of a deque append (no
lock) and hands everything collected to its ``write`` callable, in the order it came, on
:meth:`TimedBuffer.flush`. One :class:`Ticker` thread per process flushes every buffer
registered with it every ``interval`` seconds, and once more at exit: a process killed
outright loses at most ``interval`` seconds of what it collected.

The ticker also calls plain callables (:meth:`Ticker.every_tick`): work that is due on a
clock even when nothing is collected, such as the request log's summary of a second.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

INTERVAL = 0.2  # seconds between two flushes of the ticker


class Ticker:
    """One daemon thread that, each ``interval`` seconds and once more at exit, calls the
    callables given to :meth:`every_tick` and then flushes the buffers given to
    :meth:`flush_every_tick` (what a call adds to a buffer goes out in the same tick).
    :meth:`start` is idempotent within a process. Threads do not survive a fork: the child
    of a process whose ticker runs (a gunicorn worker of a preloading master) starts its
    own, with fresh locks."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._calls: list[Callable[[], None]] = []
        self._buffers: list[TimedBuffer[Any]] = []
        self._lock = threading.Lock()
        self._started_in = 0  # the process id whose thread runs, 0: none
        atexit.register(self.tick)
        os.register_at_fork(after_in_child=self._after_fork)

    def every_tick(self, call: Callable[[], None]) -> None:
        """Have the thread call ``call`` each tick (and at exit)."""
        with self._lock:
            self._calls.append(call)

    def flush_every_tick(self, buffer: TimedBuffer[Any]) -> None:
        """Have the thread flush ``buffer`` each tick (and at exit)."""
        with self._lock:
            self._buffers.append(buffer)

    def start(self) -> None:
        """Start this process's thread, unless it runs already."""
        with self._lock:
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
        threading.Thread(target=self._run, daemon=True, name="videodrop-ticker").start()

    def tick(self) -> None:
        """Call every registered callable, then flush every buffer, now; one failing does
        not stop the others."""
        with self._lock:
            calls = [*self._calls, *(buffer.flush for buffer in self._buffers)]
        for call in calls:
            with contextlib.suppress(Exception):  # the ticker must go on ticking
                call()

    def _after_fork(self) -> None:
        """In a forked child: locks held by the parent's threads at the fork are fresh
        here, and the thread runs again if it ran in the parent."""
        self._lock = threading.Lock()
        for buffer in self._buffers:
            buffer.reset_lock()
        if self._started_in:
            self._started_in = 0
            self.start()

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process (atexit ticks once more)
            time.sleep(self.interval)
            self.tick()


TICKER = Ticker()  # the process's one ticker


class TimedBuffer(Generic[T]):
    """Items collected from any thread, written together by ``write(items)``.

    ``add`` appends (thread-safe without a lock). ``flush`` takes everything collected and
    passes it to ``write`` as one list; flushes run one at a time, so batches are written
    in order. ``write`` must not raise: an exception is propagated to the caller of
    ``flush`` (the ticker ignores it and goes on) and that batch is lost.

    ``ticker`` (default: the process's :data:`TICKER`) flushes it every tick; ``None``
    leaves flushing to the owner (tests)."""

    def __init__(self, write: Callable[[list[T]], None], *,
                 ticker: Ticker | None = TICKER) -> None:
        self._write = write
        self._items: deque[T] = deque()
        self._lock = threading.Lock()  # one flush at a time: batches stay in order
        self.add = self._items.append  # the hot path: a bound deque.append, nothing more
        if ticker is not None:
            ticker.flush_every_tick(self)

    def reset_lock(self) -> None:
        """A fresh lock (after a fork: the parent's could have been held by a thread)."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many items wait for the next flush."""
        return len(self._items)

    def flush(self) -> None:
        """Write everything collected so far (nothing is written when nothing was)."""
        with self._lock:
            items = self._items
            batch = [items.popleft() for _ in range(len(items))]
            if batch:
                self._write(batch)


__all__ = ["INTERVAL", "TICKER", "Ticker", "TimedBuffer"]
