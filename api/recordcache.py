"""Cache hits of ``GET /api/video/{token}/`` answered in front of Falcon.

A ready video's record is rendered once per entry of the token cache (api/tokencache.py), so
a hit only has to send bytes it already has. Through Falcon that still takes a Request and a
Response object, routing and three rounds of middleware: twice the Python of the answer
itself, and under gunicorn's threads every microsecond of Python costs three or four (they
take turns on one interpreter lock). So, the way WhiteNoise serves static files in front of
Django, this WSGI middleware answers a GET or HEAD of a record whose token the cache holds,
and hands every other request to the Falcon app untouched: misses, expired tokens, other
endpoints, other methods, paths without the trailing slash.

The answer is the one Falcon gives, made from the same parts: the entry's rendered body
(``VideoRecord.render``), the headers every response carries
(``api.middleware.SECURITY_HEADERS``), the request id and the request line with its budget
(``RequestLog.begin``/``end``), the request metrics (``api.metrics.note``) and the count of
cache hits. tests/integration/test_record_cache.py holds the two answers equal over gunicorn.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import falcon

from api import metrics
from api.middleware import (
    DEFAULT_CACHE_CONTROL,
    SECURITY_HEADERS,
    TOKEN_PREFIX,
    VIDEO_ID,
    RequestLog,
)
from api.resources import CACHE_HITS, TOKEN, VideoRecord
from api.tokencache import TokenCache
from videodrop.tokens import token_prefix

ROUTE = "/api/video/{token}/"
PREFIX = "/api/video/"
START = len(PREFIX)
HEADERS = (("content-type", falcon.MEDIA_JSON), *SECURITY_HEADERS,
           ("cache-control", DEFAULT_CACHE_CONTROL))



class CachedRecords:
    def __init__(self, app: WSGIApplication, tokens: TokenCache, record: VideoRecord,
                 request_log: RequestLog) -> None:
        self.app = app
        self.tokens = tokens
        self.name, self.render = record.name, record.render
        self.request_log = request_log

    def __call__(self, env: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = env["REQUEST_METHOD"]
        path: str = env.get("PATH_INFO", "")
        if ((method in {"GET", "HEAD"}) and path.startswith(PREFIX)
                and path.endswith("/")):
            token = path[START:-1]
            if TOKEN.fullmatch(token):
                entry = self.tokens.get(token)
                if entry is not None:
                    t0 = time.perf_counter()
                    request_id = self.request_log.begin(env)
                    TOKEN_PREFIX.set(token_prefix(token))
                    VIDEO_ID.set(entry.video.id)
                    CACHE_HITS.inc()
                    body = entry.body(self.name, self.render)
                    start_response("200 OK", [*HEADERS, ("x-request-id", request_id),
                                              ("content-length", str(len(body)))])
                    size = len(body) if method == "GET" else 0
                    elapsed = time.perf_counter() - t0
                    metrics.note(method, ROUTE, 200, size, elapsed)
                    self.request_log.end(method, ROUTE, 200, size, elapsed)
                    return [body] if method == "GET" else []
        return self.app(env, start_response)
