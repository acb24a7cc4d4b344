"""The web pages' login sessions, kept in PostgreSQL (api/auth/sessions.py, migration 0007): the
cookie's checks against a real database, and over HTTP against gunicorn with two workers:
logging out ends the session for every worker at once (a copy of the cookie replayed
afterwards is refused), "log out everywhere" ends every browser's, and a ``next=`` that
cannot go into a Location header is dropped instead of failing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import falcon
import falcon.testing
import pytest
import requests

from api.auth.sessions import COOKIE, CSRF_HEADER, Sessions
from tests.harness import System, wait_for
from videodrop.catalog import Catalog
from videodrop.websessions import LoginStore

ADMIN = "gF3r_Qk8N2mVtY7pWx5sZc9aLd4HjB6eKu1o"  # 36 characters of 64: about 216 bits


@pytest.fixture
def store(db_url: str) -> Iterator[LoginStore]:
    catalog = Catalog.connect(db_url)
    yield LoginStore(catalog)
    catalog.close()


def test_cookie_round_trip_tampering_and_logout(store: LoginStore) -> None:
    sessions = Sessions(ADMIN, store)
    value = sessions.begin("203.0.113.1")
    assert ADMIN not in value and sessions.valid(value)
    assert not Sessions("another-admin-token-of-forty-characters!", store).valid(value)
    assert not Sessions(None, store).valid(value)
    secret, signature = value.split(".")
    forged = signature[:-1] + ("B" if signature.endswith("A") else "A")
    assert not sessions.valid(f"{secret}.{forged}")
    assert not sessions.valid(f"{secret[:-1]}x.{signature}")
    for junk in ("", "x", ".", "a.b", "." * 3, "9" * 300, None):
        assert not sessions.valid(junk)
    # a cookie signed right whose row never existed (or was deleted) is refused
    other = Sessions(ADMIN, store)
    assert not other.valid(f"{'Q' * 43}.{other._sign('session', 'Q' * 43)}")

    sessions.end(value)
    assert not sessions.valid(value)
    one, two = sessions.begin("203.0.113.1"), sessions.begin("203.0.113.2")
    assert sessions.end_all() == 2
    assert not sessions.valid(one) and not sessions.valid(two)


def test_session_expires(store: LoginStore) -> None:
    sessions = Sessions(ADMIN, store, max_age=1)
    value = sessions.begin("203.0.113.1")
    assert sessions.valid(value)
    wait_for(lambda: not sessions.valid(value), timeout=10, what="the session to expire")


def _admitted(sessions: Sessions, method: str, headers: dict[str, str]) -> object:
    class Probe:
        def on_request(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"admitted": sessions.admitted(req)}
    app = falcon.App()
    app.add_sink(Probe().on_request, "/")
    result = falcon.testing.TestClient(app).simulate_request(method, "/", headers=headers)
    return result.json["admitted"] if result.status_code == 200 else result.status_code


def test_admitted_needs_csrf_for_changes_only(store: LoginStore) -> None:
    sessions = Sessions(ADMIN, store)
    value, other = sessions.begin("203.0.113.1"), sessions.begin("203.0.113.1")
    cookie = {"Cookie": f"{COOKIE}={value}"}
    csrf = {CSRF_HEADER: sessions.csrf_token(value)}
    assert sessions.csrf_ok(value, csrf[CSRF_HEADER])
    assert not sessions.csrf_ok(other, csrf[CSRF_HEADER])  # bound to its session
    assert not sessions.csrf_ok(value, None) and not sessions.csrf_ok(value, "")
    assert _admitted(sessions, "GET", cookie) is True
    assert _admitted(sessions, "GET", {}) is False
    assert _admitted(sessions, "POST", {}) is False  # no cookie: the bearer check decides
    assert _admitted(sessions, "POST", cookie) == 403
    assert _admitted(sessions, "DELETE", {**cookie, CSRF_HEADER: "forged"}) == 403
    assert _admitted(sessions, "POST", {**cookie, **csrf}) is True
    assert _admitted(sessions, "POST", {**cookie, **csrf, "Origin": "null"}) is True
    assert _admitted(sessions, "POST", {**cookie, **csrf,
                                        "Origin": "http://falconframework.org"}) is True
    assert _admitted(sessions, "POST", {**cookie, **csrf,
                                        "Origin": "https://evil.example"}) == 403
    sessions.end(value)
    assert _admitted(sessions, "POST", {**cookie, **csrf}) is False


# --- over HTTP ------------------------------------------------------------------------------

@pytest.fixture
def api(make_system) -> System:  # type: ignore[no-untyped-def]
    return make_system(VIDEODROP_API_WORKERS="2").start("api")


def log_in(system: System) -> tuple[str, str]:
    """A new session: the cookie's value and the CSRF token its pages carry."""
    resp = requests.post(f"{system.base_url}/login", data={"token": system.admin_token},
                         allow_redirects=False, timeout=5)
    assert resp.status_code == 303, resp.text
    value = resp.cookies[COOKIE]
    page = requests.get(f"{system.base_url}/", cookies={COOKIE: value}, timeout=5)
    match = re.search(r'data-csrf="([^"]+)"', page.text)
    assert page.status_code == 200 and match
    return value, match.group(1)


def uploaded(system: System) -> int:
    """A video's id (an upload's row: enough to rotate its token)."""
    resp = requests.post(f"{system.base_url}/api/videos", params={"filename": "a.mp4"},
                         data=b"\0" * 100, headers={**system.admin, "Content-Type": "video/mp4"},
                         timeout=5)
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


def replay(system: System, value: str, csrf: str, video_id: int, times: int = 12
           ) -> set[tuple[int, int]]:
    """The cookie sent as a copy of it would be, on fresh connections (either worker may
    answer): the statuses of the list and of a token rotation."""
    seen = set()
    headers = {"Cookie": f"{COOKIE}={value}", CSRF_HEADER: csrf}
    for _ in range(times):
        listed = requests.get(f"{system.base_url}/api/videos", headers=headers, timeout=5)
        rotated = requests.post(f"{system.base_url}/api/videos/{video_id}/token",
                                headers=headers, timeout=5)
        seen.add((listed.status_code, rotated.status_code))
    return seen


def test_logout_ends_the_session_on_every_worker(api: System) -> None:
    video_id = uploaded(api)
    value, csrf = log_in(api)
    assert replay(api, value, csrf, video_id) == {(200, 200)}
    out = requests.post(f"{api.base_url}/logout", data={"csrf": csrf},
                        cookies={COOKIE: value}, allow_redirects=False, timeout=5)
    assert out.status_code == 303 and out.headers["Location"] == "/login?done=loggedout"
    assert replay(api, value, csrf, video_id) == {(401, 401)}  # at once, whichever worker answers
    assert requests.get(f"{api.base_url}/", cookies={COOKIE: value}, allow_redirects=False,
                        timeout=5).headers["Location"] == "/login?next=%2F"


def test_log_out_everywhere(api: System) -> None:
    video_id = uploaded(api)
    (mine, my_csrf), (theirs, their_csrf) = log_in(api), log_in(api)
    page = requests.get(f"{api.base_url}/", cookies={COOKIE: mine}, timeout=5).text
    assert 'name="everywhere" value="1"' in page  # the button
    out = requests.post(f"{api.base_url}/logout", data={"csrf": my_csrf, "everywhere": "1"},
                        cookies={COOKIE: mine}, allow_redirects=False, timeout=5)
    assert out.status_code == 303 and out.headers["Location"] == "/login?done=everywhere"
    assert replay(api, theirs, their_csrf, video_id, times=4) == {(401, 401)}
    assert replay(api, mine, my_csrf, video_id, times=4) == {(401, 401)}
    # the bearer token is not a session: it still works
    assert requests.get(f"{api.base_url}/api/videos", headers=api.admin,
                        timeout=5).status_code == 200


BAD_NEXT = ["/\r\nSet-Cookie: evil=1", "/a\nb", "/a\rb", "/a\x00b", "/a\u2028b", "/a\u2029b",
            "/a\u0085b"]


@pytest.mark.parametrize("target", BAD_NEXT)
def test_login_drops_a_next_that_cannot_be_a_location(api: System, target: str) -> None:
    base = api.base_url
    page = requests.get(f"{base}/login", params={"next": target}, timeout=5)
    assert page.status_code == 200 and 'name="next" value="/"' in page.text
    wrong = requests.post(f"{base}/login", data={"token": "wrong", "next": target}, timeout=5)
    assert wrong.status_code == 200 and 'name="next" value="/"' in wrong.text
    right = requests.post(f"{base}/login", data={"token": api.admin_token, "next": target},
                          allow_redirects=False, timeout=5)
    assert right.status_code == 303 and right.headers["Location"] == "/"
    again = requests.get(f"{base}/login", params={"next": target}, cookies=right.cookies,
                         allow_redirects=False, timeout=5)
    assert again.status_code == 303 and again.headers["Location"] == "/"
