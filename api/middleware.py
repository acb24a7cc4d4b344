"""Headers every response carries, and one log line per request."""

from __future__ import annotations

import random
import time
from typing import Any

import falcon

from videodrop import logs


class SecurityHeaders:
    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("X-Content-Type-Options", "nosniff")
        if resp.get_header("Cache-Control") is None:
            resp.set_header("Cache-Control", "no-store")


def new_request_id() -> str:
    """16 hex digits. Not a secret, so not from os.urandom: a system call per request
    would cost a GIL hand-off each."""
    return f"{random.getrandbits(64):016x}"


SLOW_MS = 1000.0  # VIDEODROP_REQUEST_LOG=errors still logs requests slower than this

# structlog's context variables of what a request binds: set directly, a ContextVar.set
# each, instead of bind_contextvars/unbind_contextvars (Ellipsis is "not bound").
REQUEST_ID = logs.context_variable("request_id")
BOUND_BY_RESOURCES = (logs.context_variable("video_id"), logs.context_variable("token"))


class RequestLog:
    """One summary line per request: method, route, status, bytes, ms. The token in the
    path is never logged whole: the route template stands in for the path. The request's
    id is bound for every line logged while it runs (``request_id``), and what the
    resources bound (``video_id``, ``token``) is unbound when it ends.

    ``log`` is a :class:`videodrop.logs.LaterLogger` in the API (the line is rendered by
    the log writer thread), or any logger with ``info``.

    ``mode`` (VIDEODROP_REQUEST_LOG): ``all`` logs every request; ``errors`` only answers
    of 400 and up and requests slower than a second; ``off`` none."""

    def __init__(self, log: Any, mode: str = "all") -> None:
        self.log = log
        self.every = mode == "all"
        self.errors = mode == "errors"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.t0 = time.perf_counter()
        req.context.request_id = request_id = req.get_header("X-Request-ID") or new_request_id()
        REQUEST_ID.set(request_id)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        resp.set_header("X-Request-ID", req.context.request_id)
        t0 = getattr(req.context, "t0", None)
        ms = round((time.perf_counter() - t0) * 1000, 2) if t0 else None
        if self.every or (self.errors and (resp.status_code >= 400 or (ms or 0) >= SLOW_MS)):
            route = req.uri_template or req.path
            self.log.info("request", method=req.method, route=route,
                          status=resp.status_code, bytes=resp.content_length, ms=ms)
        REQUEST_ID.set(...)
        for variable in BOUND_BY_RESOURCES:
            variable.set(...)
