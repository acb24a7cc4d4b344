"""Headers every response carries, and one log line per request."""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import falcon

from api.ops.metrics import plain_template, sent_bytes
from videodrop import logs
from videodrop.tokens import TOKEN_SHAPED, redact_tokens

# Every response: these, and Cache-Control: no-store unless the endpoint set its own.
SECURITY_HEADERS = (("referrer-policy", "no-referrer"), ("x-content-type-options", "nosniff"))
DEFAULT_CACHE_CONTROL = "no-store"


class SecurityHeaders:
    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        for name, value in SECURITY_HEADERS:
            resp.set_header(name, value)
        if resp.get_header("Cache-Control") is None:
            resp.set_header("Cache-Control", DEFAULT_CACHE_CONTROL)


def new_request_id() -> str:
    """16 hex digits. Not a secret, so not from os.urandom: a system call per request
    would cost a GIL hand-off each."""
    return f"{random.getrandbits(64):016x}"


SLOW_SECONDS = 1.0  # VIDEODROP_REQUEST_LOG=errors still logs requests slower than this
MAX_REQUEST_ID = 64  # characters of a client's X-Request-ID kept


def route_of(req: falcon.Request) -> str:
    """What the request line and error lines name a request by: its route template
    (``/stream/{token}/``), or for a path no route matched, the path with token-shaped
    segments cut to a prefix (``/stream/Jx0iAb…/video.mp4``)."""
    return plain_template(req) or redact_tokens(req.path)

# What a request binds for its log lines (structlog's context variables).
REQUEST_ID = logs.context_variable("request_id")
VIDEO_ID = logs.context_variable("video_id")  # bound by the token resources
TOKEN_PREFIX = logs.context_variable("token")  # idem: the token's prefix, never all of it
BOUND_BY_RESOURCES = (VIDEO_ID, TOKEN_PREFIX)


class RequestLog:
    """One summary line per request: method, route, status, bytes, ms. The token in the
    path is never logged whole: the route template stands in for the path (a path no route
    matched is logged with its token-shaped segments cut: :func:`route_of`). The request's
    id is bound for every line logged while it runs (``request_id``), and what the
    resources bound (``video_id``, ``token``) is unbound when it ends.

    ``log``: any logger with ``info`` (in the API, ``videodrop.logs.get("api")``: lines
    written in batches).

    ``mode`` (VIDEODROP_REQUEST_LOG): ``all`` logs every request; ``errors`` only answers
    of 400 and up and requests slower than a second; ``off`` none.

    ``rate`` (VIDEODROP_REQUEST_LOG_RATE, 0: no limit): in ``all`` mode, at most that many
    lines a second for successful, fast requests; the others of that second are counted
    and summed up in one ``requests not logged`` line (:class:`LineBudget`). Errors and
    slow requests are always logged."""

    def __init__(self, log: Any, mode: str = "all", rate: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.every = mode == "all"
        self.errors = mode == "errors"
        self.budget = LineBudget(log, rate, clock) if self.every and rate > 0 else None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.t0 = time.perf_counter()
        req.context.request_id = self.begin(req.env)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        resp.set_header("X-Request-ID", req.context.request_id)
        t0 = getattr(req.context, "t0", None)
        size = sent_bytes(req, resp)
        self.end(req.method, route_of(req), resp.status_code, size,
                 time.perf_counter() - t0 if t0 else None)

    def begin(self, env: dict[str, Any]) -> str:
        """The request's id (the client's ``X-Request-ID``, else a new one), bound. A
        client's id that is long or token-shaped (a client that sends its token as the id)
        is replaced: it is logged."""
        # the environ directly, not Request.get_header: this runs on every request
        request_id: str | None = env.get("HTTP_X_REQUEST_ID")
        if not request_id or len(request_id) > MAX_REQUEST_ID or TOKEN_SHAPED.search(
                request_id):
            request_id = new_request_id()
        REQUEST_ID.set(request_id)
        return request_id

    def end(self, method: str, route: str, status: int, size: int | None,
            elapsed: float | None) -> None:
        """The request's line, if it is to be written; then everything the request bound
        is unbound."""
        if self.every or self.errors:
            important = status >= 400 or (elapsed or 0.0) >= SLOW_SECONDS
            if important or (self.every and (self.budget is None
                                             or self.budget.allow(method, route, status))):
                ms = round(elapsed * 1000, 2) if elapsed is not None else None
                self.log.info("request", method=method, route=route, status=status,
                              bytes=size, ms=ms)
        REQUEST_ID.unbind()
        for variable in BOUND_BY_RESOURCES:
            variable.unbind()


class LineBudget:
    """At most ``rate`` request lines a second (per worker): a busy API would otherwise
    write thousands a second, and journald's rate limit (10,000 lines per 30 s per unit by
    default) would then drop lines of the unit, warnings included. What goes over is
    counted (a deque append: safe from any thread without a lock) and written once a second
    as ``requests not logged`` with the count per method, route and status; the ticker
    thread (``videodrop.batching``) writes a due summary even when no request comes."""

    def __init__(self, log: Any, rate: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.log = log
        self.rate = rate
        self.clock = clock
        self.second = int(clock())
        self.used = 0
        self.skipped: deque[tuple[str, str, int]] = deque()
        self._lock = threading.Lock()  # one summary at a time
        logs.every_batch(self.roll)

    def allow(self, method: str, route: str, status: int) -> bool:
        if int(self.clock()) != self.second:
            # in an empty context: the summary is not about the request that happens to
            # start the new second (its request_id, token and video_id stay out of it)
            contextvars.Context().run(self.roll)
        if self.used < self.rate:
            self.used += 1  # a race between threads may let a line or two more through
            return True
        self.skipped.append((method, route, status))
        return False

    def roll(self) -> None:
        """Start a new second if the last one is over, summing up what it did not log."""
        now = int(self.clock())
        if now == self.second:
            return
        with self._lock:
            if now == self.second:
                return
            seconds, self.second, self.used = now - self.second, now, 0
            counts: dict[str, int] = {}
            for _ in range(len(self.skipped)):
                method, route, status = self.skipped.popleft()
                key = f"{method} {route} {status}"
                counts[key] = counts.get(key, 0) + 1
        if counts:
            self.log.info("requests not logged", requests=sum(counts.values()),
                          seconds=seconds, by_route=counts, limit_per_second=self.rate)
