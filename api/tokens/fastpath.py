"""The fast path: cache hits of ``GET /api/video/{token}/`` and ``.../metadata/``
answered in front of Falcon.

A ready video's record and metadata are rendered once per entry of the token cache
(api/tokens/cache.py), so a hit only has to send bytes it already has; through Falcon it
would still take a Request and a Response object, routing and three rounds of middleware
(docs/benchmarks.md, "Token lookups", has what that costs). So, the way WhiteNoise serves
static files in front of Django, :class:`CacheHitFastPath`, a WSGI middleware, answers a
GET or HEAD of those two views of a token the cache holds, and hands every other request
to the Falcon app untouched: misses, expired tokens, the file endpoints, other methods,
paths without the trailing slash.

The answer is the one Falcon gives, made from the same parts: the entry's rendered body
(the resource's ``render``), the headers every response carries
(``api.ops.requestlog.SECURITY_HEADERS``), the request id and the request line with its
budget (``RequestLog.begin``/``end``), the request metrics (``api.ops.metrics.note``) and
the hit's count and log binding (``api.tokens.endpoints.from_cache``).
tests/integration/test_cache_hit_fast_path.py holds the two answers equal over gunicorn.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import falcon

from api.ops import metrics
from api.ops.requestlog import (
    DEFAULT_CACHE_CONTROL,
    SECURITY_HEADERS,
    TOKEN_PREFIX,
    RequestLog,
)
from api.tokens.cache import TokenCache
from api.tokens.endpoints import TOKEN, JSONEndpoint, from_cache
from videodrop.tokens import token_prefix

PREFIX = "/api/video/"
START = len(PREFIX)
HEADERS = (("content-type", falcon.MEDIA_JSON), *SECURITY_HEADERS,
           ("cache-control", DEFAULT_CACHE_CONTROL))


class CacheHitFastPath:
    """``views``: what follows ``/api/video/{token}/`` in the path (``""``, ``"metadata/"``)
    -> the Falcon resource whose JSON it is."""

    def __init__(self, app: WSGIApplication, tokens: TokenCache,
                 views: dict[str, JSONEndpoint], request_log: RequestLog) -> None:
        self.app = app
        self.tokens = tokens
        self.views = {tail: (f"{PREFIX}{{token}}/{tail}", view.name, view.render)
                      for tail, view in views.items()}
        self.request_log = request_log

    def __call__(self, env: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = env["REQUEST_METHOD"]
        path: str = env.get("PATH_INFO", "")
        if (method in {"GET", "HEAD"}) and path.startswith(PREFIX):
            token, slash, tail = path[START:].partition("/")
            view = self.views.get(tail) if slash else None  # "/api/video/{token}": Falcon's
            if view is not None and TOKEN.fullmatch(token):
                entry = self.tokens.get(token)
                if entry is not None:
                    t0 = time.perf_counter()
                    route, name, render = view
                    request_id = self.request_log.begin(env)
                    TOKEN_PREFIX.set(token_prefix(token))
                    body = from_cache(entry).body(name, render)
                    start_response("200 OK", [*HEADERS, ("x-request-id", request_id),
                                              ("content-length", str(len(body)))])
                    size = len(body) if method == "GET" else 0
                    elapsed = time.perf_counter() - t0
                    metrics.note(method, route, 200, size, elapsed)
                    self.request_log.end(method, route, 200, size, elapsed)
                    return [body] if method == "GET" else []
        return self.app(env, start_response)
