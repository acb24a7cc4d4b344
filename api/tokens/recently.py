"""A bounded, thread-safe memory of keys seen lately: so that something done for a key is
done once per period in a process, not on every request."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["Recently"]


class Recently:
    """:meth:`first` is True for a key not seen in the last ``seconds`` (then it is
    remembered from now), False otherwise. At most ``size`` keys are kept: the oldest are
    forgotten first (a forgotten key is merely done again). ``clock`` gives seconds."""

    def __init__(self, seconds: float, size: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        now = self.clock()
        with self._lock:
            at = self._seen.get(key)
            if at is not None and now - at < self.seconds:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True
