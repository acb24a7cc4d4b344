"""Guessing the admin token, over HTTP against the real API (and through nginx with
deploy/nginx.conf): wrong tokens count per client address, through the login form and as
bearer tokens alike; past the burst the client is answered 429 with Retry-After before its
token is compared (the right one included); other addresses are not affected; a client
cannot pick its address with X-Forwarded-For unless it is a trusted proxy; and a weak admin
token keeps the API from starting (exit 78)."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from testbed.nginx import nginx_in_front
from tests.harness import REPO, System, wait_for
from tests.unit.test_token_strength import WEAK

BURST, PER_MINUTE = 3, 30  # a try every 2 s after the burst


@pytest.fixture
def api(make_system) -> System:  # type: ignore[no-untyped-def]
    return make_system(VIDEODROP_LOGIN_BURST=str(BURST),
                       VIDEODROP_LOGIN_RATE=str(PER_MINUTE)).start("api")


def ask(url: str, method: str, path: str, *, source: str = "127.0.0.1",
        headers: dict[str, str] | None = None, form: dict[str, str] | None = None
        ) -> http.client.HTTPResponse:
    """One request from the loopback address ``source`` (127.0.0.0/8 is all loopback)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10,
                                      source_address=(source, 0))
    body = urlencode(form).encode() if form is not None else None
    sent = {**(headers or {}), "Connection": "close"}
    if body is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=sent)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def login(url: str, token: str, **kw: str) -> int:
    return ask(url, "POST", "/login", form={"token": token, "next": "/"}, **kw).status


def bearer(url: str, token: str, **kw: str) -> http.client.HTTPResponse:
    return ask(url, "GET", "/api/videos", headers={"Authorization": f"Bearer {token}"}, **kw)


def test_wrong_tokens_are_throttled_per_address(api: System) -> None:
    url = api.base_url
    assert [login(url, "wrong", source="127.0.0.2") for _ in range(BURST)] == [200] * BURST
    refused = ask(url, "POST", "/login", source="127.0.0.2",
                  form={"token": api.admin_token, "next": "/"})
    assert refused.status == 429  # the right token is not even compared now
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 60 // PER_MINUTE
    assert login(url, api.admin_token, source="127.0.0.3") == 303  # others: as before

    # bearer tokens on the management API count too, against their own address
    assert [bearer(url, "wrong", source="127.0.0.4").status for _ in range(BURST)] == [401] * 3
    over = bearer(url, api.admin_token, source="127.0.0.4")
    assert over.status == 429 and int(over.headers["Retry-After"]) >= 1
    assert bearer(url, api.admin_token, source="127.0.0.5").status == 200
    # no credential at all is no guess
    for _ in range(BURST + 2):
        assert ask(url, "GET", "/api/videos", source="127.0.0.6").status == 401
    assert bearer(url, api.admin_token, source="127.0.0.6").status == 200

    # after Retry-After (2 s), a try again: the right token goes through
    wait_for(lambda: bearer(url, api.admin_token, source="127.0.0.4").status == 200,
             timeout=10, interval=0.5, what="the throttle to let 127.0.0.4 try again")


def test_a_direct_client_cannot_choose_its_address(api: System) -> None:
    """127.0.0.2 is not a trusted proxy: what it says in X-Forwarded-For or X-Real-IP is
    not believed, every guess counts against 127.0.0.2."""
    for i in range(BURST):
        spoof = {"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}"}
        assert ask(api.base_url, "POST", "/login", source="127.0.0.2", headers=spoof,
                   form={"token": "wrong"}).status == 200
    spoof = {"X-Forwarded-For": "198.51.100.99"}
    assert login(api.base_url, api.admin_token, source="127.0.0.2", headers=spoof) == 429


def test_behind_nginx_the_client_is_named_by_nginx(api: System, tmp_path: Path) -> None:
    """nginx (127.0.0.1, trusted) appends the real peer to X-Forwarded-For: a client's own
    X-Forwarded-For entries sit left of it and change nothing; clients differ by address."""
    with nginx_in_front(api, tmp_path / "nginx") as url:
        for i in range(BURST):
            spoof = {"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}"}
            assert ask(url, "POST", "/login", source="127.0.0.2", headers=spoof,
                       form={"token": "wrong"}).status == 200
        assert login(url, api.admin_token, source="127.0.0.2") == 429
        assert login(url, api.admin_token, source="127.0.0.3") == 303


def test_guessing_speed_is_bounded(api: System) -> None:
    """However fast a client guesses, it gets its burst and then the rate: counted here
    over a few seconds of guessing as fast as one connection can."""
    evaluated = 0
    started = time.monotonic()
    while time.monotonic() - started < 3.0:  # the guesser's own pace, not a wait
        status = bearer(api.base_url, "wrong", source="127.0.0.7").status
        evaluated += status == 401
    allowed = BURST + (time.monotonic() - started) * PER_MINUTE / 60 + 1
    assert BURST <= evaluated <= allowed


@pytest.mark.parametrize("token", ["a", *WEAK])
def test_a_weak_admin_token_keeps_the_api_from_starting(make_system, token: str) -> None:
    system: System = make_system(VIDEODROP_ADMIN_TOKEN=token)
    done = subprocess.run([sys.executable, "-m", "videodrop", "api"], env=system.env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr
    assert "VIDEODROP_ADMIN_TOKEN is too easy to guess" in done.stderr
    assert "token_urlsafe(32)" in done.stderr
    assert len(token) < 8 or token not in done.stderr  # the refusal does not print it
    # gunicorn started by hand, without `videodrop api`, refuses too (no worker boots)
    bare = subprocess.run([sys.executable, "-m", "gunicorn", "api.app:get_app()",
                           "--bind", f"127.0.0.1:{system.port}"], env=system.env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "too easy to guess" in bare.stderr
