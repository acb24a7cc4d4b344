"""Slow and silent clients against the real API (gunicorn with api/worker.py, 2 workers x 8
threads as deployed), straight and through nginx with deploy/nginx.conf: while 64 sockets
send their request head a byte a second, 32 send a ``POST /login`` body a byte a second and
64 send nothing (testbed/hostile.py, loopback, reopened whenever the server closes them),
``/healthz`` and a token lookup are answered, each probe on a fresh connection, within a
second. And what the worker does to keep it so: a request that stalls is answered 408 and
closed, an oversized head 431, while an upload that keeps progressing is never cut off.

The slow upload and one client's slow downloads run once per media store (``store_env``:
on s3 the upload streams into the bucket, the downloads are proxied from an object); the
rest is about gunicorn's worker and its sockets, answered before the store is asked."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.worker import MAX_HEAD
from testbed.hostile import Probe, under_attack
from testbed.nginx import nginx_in_front
from tests.harness import System, rows, wait_for
from tests.integration.test_api_uploads import media_of, stored_bytes
from tests.integration.test_token_cache import add_ready

HEADER_TIMEOUT = 3  # seconds (VIDEODROP_HEADER_TIMEOUT): a few cycles of reopened sockets
SECONDS = 10.0  # of probing under attack, per way in
ATTACK = {"slow_headers": 64, "slow_bodies": 32, "silent": 64}
LIVE = 1.0  # seconds each probe may take: a functional bound, far above the ~2 ms usual


def deploy(make_system, **env: str) -> tuple[System, str]:  # type: ignore[no-untyped-def]
    """The API as deployed (2 workers x 8 threads) on ``env``'s store, and a ready row's
    token."""
    system: System = make_system(VIDEODROP_API_WORKERS="2", VIDEODROP_API_THREADS="8",
                                 VIDEODROP_HEADER_TIMEOUT=str(HEADER_TIMEOUT), **env
                                 ).start("api")
    _, token = add_ready(system.database_url)
    return system, token


@pytest.fixture
def deployed(make_system) -> Iterator[tuple[System, str]]:  # type: ignore[no-untyped-def]
    yield deploy(make_system)


def check(probes: list[Probe], token: str) -> None:
    assert {p.path for p in probes} == {"/healthz", f"/api/video/{token}/"}
    late = [p for p in probes if p.status != 200 or p.seconds >= LIVE]
    assert not late, f"{len(late)} of {len(probes)} probes failed or took {LIVE} s or more:" \
                     f" {late[:5]}"


def test_slow_and_silent_clients_do_not_starve_the_api(deployed, tmp_path: Path) -> None:
    system, token = deployed
    paths = ("/healthz", f"/api/video/{token}/")
    probes, attack = under_attack(system.base_url, paths, SECONDS, **ATTACK)
    check(probes, token)
    assert attack.closed_by_server >= 64  # the slow heads were closed (and came back)
    with nginx_in_front(system, tmp_path / "nginx") as url:
        probes, attack = under_attack(url, paths, SECONDS, **ATTACK)
    check(probes, token)


def raw(system: System) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", system.port), timeout=HEADER_TIMEOUT + 10)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_stalled_request_is_answered_408_and_closed(deployed) -> None:
    system, _ = deployed
    with raw(system) as sock:  # a head that stops half way
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 408 ")
    with raw(system) as sock:  # a small body that stops half way
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=")
        assert answer(sock).startswith(b"HTTP/1.1 408 ")
    with raw(system) as sock:  # kept alive: the next request stalls the same way
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        got = answer(sock)
        assert got.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in got
    with raw(system) as sock:  # silent: closed without a word
        assert answer(sock) == b""
    with raw(system) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
        assert answer(sock).startswith(b"HTTP/1.1 431 ")


def head_of(size: int) -> bytes:
    """A well-formed request head of exactly ``size`` bytes (its blank line included), in
    fields gunicorn accepts (each under its 8190-byte limit)."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    fields = b""
    i = 0
    while (left := size - len(start) - len(fields) - 2) > 0:
        name = b"X-Pad-%d: " % i
        value = b"a" * max(1, min(4000, left - len(name) - 2))
        fields += name + value + b"\r\n"
        i += 1
    head = start + fields + b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


@pytest.mark.parametrize(("size", "status"), [
    (MAX_HEAD, b"200"), (MAX_HEAD + 1, b"431"), (90 * 1024, b"431"), (100 * 1024, b"431"),
])
def test_the_head_limit_holds_for_complete_heads(deployed, size: int, status: bytes) -> None:
    """MAX_HEAD bytes of head, its blank line included, are the most the API reads: a head
    that ends within what arrived is measured too, not only one still without its end."""
    system, _ = deployed
    with raw(system) as sock:
        sock.sendall(head_of(size))
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 " + status + b" "), got[:100]


def test_a_slow_but_progressing_upload_goes_through(make_system, samples: Path,
                                                   store_env: dict[str, str]) -> None:
    """A raw upload sent in pieces over about three header timeouts: a body too large to be
    held is read by a thread as it comes (each read may wait up to the upload's idle time),
    and stored whole. Once per media store (``store_env``)."""
    system, _ = deploy(make_system, **store_env)
    data = (samples / "bbb_chapters.mp4").read_bytes()
    pieces = 12
    step = -(-len(data) // pieces)
    with raw(system) as sock:
        sock.sendall(b"POST /api/videos?filename=slow.mp4 HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + system.admin_token.encode() + b"\r\n"
                     b"Content-Type: video/mp4\r\n"
                     b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n")
        started = time.monotonic()
        for i in range(pieces):
            sock.sendall(data[i * step:(i + 1) * step])
            time.sleep(HEADER_TIMEOUT * 3 / pieces)  # the client's pace, the point of the test
        assert time.monotonic() - started > HEADER_TIMEOUT * 2
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 202 "), head[:200]
    wait_for(lambda: system.records_named("slow.mp4"), timeout=10, what="the upload's row")
    [(key,)] = rows(system.database_url,
                    "SELECT stored_path FROM videos WHERE original_filename = 'slow.mp4'")
    assert stored_bytes(system, key) == data


def test_one_client_leaves_two_of_a_workers_threads_to_others(make_system,
                                                              store_env: dict[str, str]
                                                              ) -> None:
    """Slow downloads from one client (here named by the trusted proxy's X-Forwarded-For)
    take all the threads but two: the next from that client gets 503 with Retry-After
    at once, and everyone else is still answered. Once per media store (``store_env``:
    on s3 the downloads proxied from an object, ``VIDEODROP_S3_SERVE=proxy``; a redirect
    holds no thread)."""
    import socket

    import psycopg
    import requests

    proxy = {"VIDEODROP_S3_SERVE": "proxy"} if store_env else {}
    system: System = make_system(VIDEODROP_API_WORKERS="1", VIDEODROP_API_THREADS="4",
                                 VIDEODROP_TOKEN_CACHE_SIZE="0", **store_env, **proxy)
    system.start("api")
    wait_for(lambda: _up(system), timeout=30, what="the API")
    video_id, token = add_ready(system.database_url)
    with io.BytesIO(b"\0" * (64 << 20)) as zeros:  # far more than the sockets' buffers hold
        media_of(system).put_stream("videos/big/c.mp4", zeros)
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE videos SET stored_path = 'videos/big/c.mp4', size = %s"
                     " WHERE id = %s", (64 << 20, video_id))
    request = (f"GET /api/video/{token}/download/ HTTP/1.1\r\nHost: x\r\n"
               "X-Forwarded-For: 203.0.113.7\r\n\r\n").encode()
    readers = []
    try:
        for _ in range(2):  # 4 threads but the 2 kept for others, reading nothing
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", system.port))
            sock.sendall(request)
            readers.append(sock)
            wait_for(lambda s=sock: s.recv(64, socket.MSG_PEEK), timeout=10,
                     what="the download to start")
        third = socket.create_connection(("127.0.0.1", system.port), timeout=10)
        third.sendall(request)
        answer = third.recv(4096)
        third.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer, answer
        assert requests.get(f"{system.base_url}/healthz", timeout=5).status_code == 200
        other = requests.get(f"{system.base_url}/api/video/{token}/", timeout=5,
                             headers={"X-Forwarded-For": "198.51.100.1"})
        assert other.status_code == 200
    finally:
        for sock in readers:
            sock.close()
    # the threads come back: the same client is served again
    wait_for(lambda: requests.get(f"{system.base_url}/api/video/{token}/", timeout=5,
                                  headers={"X-Forwarded-For": "203.0.113.7"}).status_code
             == 200, timeout=30, what="the client's threads to be free again")


def _up(system: System) -> bool:
    import requests

    try:
        return requests.get(f"{system.base_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_workers_own_answers_are_counted_and_logged_once_a_minute(make_system) -> None:
    """431 (a head too large) and 503 (a client holding its share of the threads), which
    the worker writes to the socket itself: each counted in /metrics, logged as 'refused'
    with the client's address, once per client and reason a minute, and never with a
    token."""
    import re

    import requests

    from testbed.hostile import threads_held

    system: System = make_system(VIDEODROP_API_WORKERS="1", VIDEODROP_API_THREADS="4")
    system.start("api")
    token = "Ab3x" + "k" * 39  # token-shaped: the log may keep a prefix only
    big = (f"GET /api/video/{token}/ HTTP/1.1\r\nHost: x\r\nX-Big: ").encode() + b"a" * 70_000
    for _ in range(2):
        with raw(system) as sock:
            sock.sendall(big)
            assert answer(sock).startswith(b"HTTP/1.1 431 ")
    client = "203.0.113.9"  # named by the trusted proxy: no other request comes from it
    with threads_held(system.base_url, system.admin_token, 2, client):  # 4 threads but 2
        for _ in range(3):
            with raw(system) as sock:
                sock.sendall(f"GET /api/video/{token}/ HTTP/1.1\r\nHost: x\r\n"
                             f"X-Forwarded-For: {client}\r\n\r\n".encode())
                got = answer(sock)
            assert got.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in got, got
        with raw(system) as sock:  # a monitor on that client's address: never refused
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         f"X-Forwarded-For: {client}\r\n\r\n".encode())
            assert answer(sock).startswith(b"HTTP/1.1 200 ")

    # asked for by another client (the trusted proxy forwards for it): never refused
    resp = requests.get(f"{system.base_url}/metrics", timeout=10,
                        headers={"X-Forwarded-For": "198.51.100.1"})
    assert resp.status_code == 200
    text = resp.text
    assert re.search(r'^videodrop_http_refused_total\{reason="head_too_large"\} 2\.0$', text,
                     re.M), text
    assert re.search(r'^videodrop_http_refused_total\{reason="client_busy"\} 3\.0$', text,
                     re.M), text
    assert re.search(r'^videodrop_http_refused_total\{reason="timed_out"\} 0\.0$', text, re.M)
    assert re.search(r'^videodrop_http_requests_total\{method="GET",route="unmatched",'
                     r'status="503"\} 3\.0$', text, re.M), text
    assert re.search(r'^videodrop_http_requests_total\{method="GET",route="unmatched",'
                     r'status="431"\} 2\.0$', text, re.M), text

    lines = wait_for(lambda: (found := system.log_events("api", "refused"))
                     and len(found) >= 2 and found, timeout=10, what="the refused lines")
    by_reason = {line["reason"]: line for line in lines}
    assert sorted(line["reason"] for line in lines) == ["client_busy", "head_too_large"]
    for reason, status, who in (("head_too_large", 431, "127.0.0.1"),
                                ("client_busy", 503, client)):
        line = by_reason[reason]
        assert line["status"] == status and line["client"] == who, line
        assert line["level"] == "info" and line["method"] == "GET", line
        assert line["path"].startswith("/api/video/Ab3x") and token not in line["path"], line
        assert line["not_logged"] == 0, line
    assert token not in system.log_text("api")
