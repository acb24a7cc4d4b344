"""Cache hits of the record and metadata answered in front of Falcon (the fast path,
api/tokens/fastpath.py), over real HTTP against gunicorn with one worker: a token's first
lookup reads the database (through Falcon), the next ones are cache hits (answered before
Falcon). Both must answer the same, log the same and count the same.

File store only: a record and its metadata come from the catalog and the token cache,
never from the media store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import token_lookups, wait_for
from tests.integration.test_api_request_log import request_lines
from tests.integration.test_token_cache import add_ready

VIEWS = {"record": "", "metadata": "metadata/"}  # view -> what follows /api/video/{token}/
VARIES = {"date", "x-request-id"}  # the only headers the two answers may differ in


@pytest.fixture
def api(make_system):
    return make_system(VIDEODROP_API_WORKERS="1").start("api")


def lookup_counts(base: str) -> tuple[float, float]:
    counts = token_lookups(base)
    return counts["database"], counts["cache"]


def sample(base: str, name: str, **labels: str) -> float:
    """The value of one series of ``/metrics`` (0 if absent)."""
    text = requests.get(f"{base}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def answer(base: str, method: str, token: str, request_id: str, *, query: str = "",
           tail: str = "") -> tuple[requests.Response, str]:
    """One request; which way it was answered ("database": a miss, through Falcon;
    "cache": a hit), from the token lookup counts around it."""
    before = lookup_counts(base)
    resp = requests.request(method, f"{base}/api/video/{token}/{tail}{query}",
                            headers={"X-Request-ID": request_id}, timeout=5)
    after = wait_for(lambda: (now := lookup_counts(base)) != before and now, timeout=5,
                     what="the lookup to be counted")
    way = {(before[0] + 1, before[1]): "database", (before[0], before[1] + 1): "cache"}
    return resp, way[after]


def comparable(resp: requests.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() not in VARIES}
    return resp.status_code, headers, resp.content


def request_line(system: Any, request_id: str) -> dict[str, Any]:
    [line] = wait_for(lambda: [e for e in request_lines(system)
                               if e.get("request_id") == request_id],
                      timeout=10, what=f"the request line of {request_id}")
    return {k: v for k, v in line.items() if k not in {"timestamp", "ms", "request_id"}}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_cache_hit_answers_logs_and_counts_as_falcon_does(api, method, view):
    base, tail = api.base_url, VIEWS[view]
    route = f"/api/video/{{token}}/{tail}"
    video_id, token = add_ready(api.database_url, name="same either way")
    requests_before = sample(base, "videodrop_http_requests_total", method=method,
                             route=route, status="200")
    bytes_before = sample(base, "videodrop_http_response_bytes_total", route=route)

    miss, first = answer(base, method, token, f"miss-{method}", tail=tail)
    hit, second = answer(base, method, token, f"hit-{method}", query="?ignored=1", tail=tail)
    assert (first, second) == ("database", "cache")

    assert miss.status_code == 200
    assert comparable(hit) == comparable(miss)
    assert hit.headers["X-Request-ID"] == f"hit-{method}"
    assert miss.headers["X-Request-ID"] == f"miss-{method}"
    if method == "GET":
        if view == "record":
            record = hit.json()
            assert record["id"] == video_id and record["name"] == "same either way"
        else:
            assert "api_links" not in hit.json()
        assert int(hit.headers["Content-Length"]) == len(hit.content)
    else:
        assert hit.content == b"" and int(hit.headers["Content-Length"]) > 0
    for name, value in (("Referrer-Policy", "no-referrer"),
                        ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                        ("Content-Type", "application/json")):
        assert hit.headers[name] == value

    # the request lines: equal but for the id, the time and when
    logged = request_line(api, f"hit-{method}")
    assert logged == request_line(api, f"miss-{method}")
    assert logged["token"] == token[:6] + "…" and token not in json.dumps(logged)
    assert logged["video_id"] == video_id and logged["route"] == route
    assert logged["bytes"] == (len(hit.content) if method == "GET" else 0)

    # the request metrics count both
    assert sample(base, "videodrop_http_requests_total", method=method, route=route,
                  status="200") == requests_before + 2
    sent = 2 * len(miss.content) if method == "GET" else 0
    assert sample(base, "videodrop_http_response_bytes_total", route=route) == (
        bytes_before + sent)


def test_what_a_cached_token_leaves_to_falcon(api):
    base = api.base_url
    soon = datetime.now(UTC) + timedelta(seconds=3)
    _, token = add_ready(api.database_url, name="cached", expires_at=soon)
    answer(base, "GET", token, "warm")
    _, way = answer(base, "GET", token, "hit")
    assert way == "cache"

    # other endpoints and methods of the same token, and the path without its slash
    # (the row has no file: the download is Falcon's "File missing")
    expected = {"download/": (404, "File missing"), "metadata/extra/": (404, None),
                "metadata": (308, None)}
    for tail, (status, title) in expected.items():
        other = requests.get(f"{base}/api/video/{token}/{tail}", allow_redirects=False,
                             timeout=5)
        assert other.status_code == status, (tail, other.status_code)
        assert title is None or other.json()["title"] == title
    posted = requests.post(f"{base}/api/video/{token}/", timeout=5)
    assert posted.status_code == 405
    bare = requests.get(f"{base}/api/video/{token}", allow_redirects=False, timeout=5)
    assert bare.status_code == 308 and bare.headers["Location"].endswith(f"/{token}/")

    # an expired token is a 404 from Falcon, though its entry is still in the cache
    wait_for(lambda: requests.get(f"{base}/api/video/{token}/", timeout=5).status_code == 404,
             timeout=15, what="the token to expire")
    gone = requests.get(f"{base}/api/video/{token}/", timeout=5)
    assert gone.json()["title"] == "Not found"
