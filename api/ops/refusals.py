"""The answers the API's gunicorn worker gives itself, before Falcon sees the request
(api/worker.py): 408 (the request did not arrive in time), 431 (its head is too large) and
503 (the client holds its share of the worker's threads). Each is counted and logged.

* Counted in ``videodrop_http_refused_total{reason}`` (``timed_out``, ``head_too_large``,
  ``client_busy``), and as every answer is, in ``videodrop_http_requests_total`` with the
  request's method, its status and the route ``unmatched`` (no route saw it).
* Logged at info as ``refused`` with the reason, the status, the client's address (as
  api/auth/clients.py names it), the method and the path with token-shaped segments cut,
  never a whole token: at most one line per client and reason every ``WINDOW`` seconds,
  which says how many of the same were not logged since the last (``not_logged``). A
  client refused a thousand times a second writes one line a minute; the metrics count
  them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from api.ops import metrics as request_metrics
from videodrop import logs, metrics
from videodrop.tokens import redact_tokens

WINDOW = 60.0  # seconds between two lines for the same client and reason
MAX_TRACKED = 10_000  # (client, reason) pairs remembered before the stale ones go
MAX_PATH = 200  # characters of the path logged
REASONS = {"timed_out": 408, "head_too_large": 431, "client_busy": 503}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_line(head: bytes | bytearray) -> tuple[str, str]:
    """(method, path) of the request line at the start of ``head`` (what has arrived of
    it): the method one of the known ones or ``OTHER``; the path without its query, with
    token-shaped runs cut, at most ``MAX_PATH`` characters; "" when there is none."""
    end = head.find(b"\r\n", 0, 8192)
    first = bytes(head[: end if end >= 0 else 8192]).decode("latin-1")
    parts = first.split(" ")
    method = parts[0] if parts[0] in _METHODS else "OTHER"
    path = parts[1].partition("?")[0] if len(parts) > 1 else ""
    return method, redact_tokens(path)[:MAX_PATH]


class Refusals:
    """Counts and logs the worker's own answers (module docstring). Called from the
    worker's main loop only (one thread)."""

    def __init__(self, log: Any = None, clock: Callable[[], float] = time.monotonic,
                 window: float = WINDOW) -> None:
        self.log = log if log is not None else logs.get("api.worker")
        self.clock = clock
        self.window = window
        self.counts = {reason: metrics.HTTP_REFUSED.labels(reason) for reason in REASONS}
        # (client, reason) -> [when the last line was written, refusals not logged since]
        self.seen: dict[tuple[str, str], list[float]] = {}

    def refused(self, reason: str, client: str, head: bytes | bytearray, size: int) -> None:
        """One answer of ``reason`` (REASONS) to ``client``; ``head``: what had arrived of
        the request; ``size``: the bytes of the answer's body."""
        status = REASONS[reason]
        method, path = request_line(head)
        self.counts[reason].inc()
        request_metrics.note(method, request_metrics.UNMATCHED, status, size, None)
        now = self.clock()
        key = (client, reason)
        state = self.seen.get(key)
        if state is not None and now - state[0] < self.window:
            state[1] += 1
            return
        if len(self.seen) >= MAX_TRACKED:
            self.seen = {k: v for k, v in self.seen.items() if now - v[0] < self.window}
            if len(self.seen) >= MAX_TRACKED:
                return  # that many clients refused within a window: the metrics have them
        not_logged = int(state[1]) if state is not None else 0
        self.seen[key] = [now, 0]
        self.log.info("refused", reason=reason, status=status, client=client, method=method,
                      path=path, not_logged=not_logged)
