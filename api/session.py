"""The web pages' login session: an HttpOnly, SameSite=Strict cookie standing in for the
admin token, and the CSRF token that cookie-authenticated changes must carry.

The cookie is ``<issued unix time>.<random nonce>.<signature>``; the signature is an
HMAC-SHA256 keyed by a key derived from ``VIDEODROP_ADMIN_TOKEN``, so the cookie proves
that its holder once typed the admin token, no server state is needed (any gunicorn
worker, any API process checks it), and changing the admin token logs every browser out.
The cookie never contains the admin token itself.

Cross-site request forgery: the cookie is ``SameSite=Strict`` (another site's page cannot
make the browser send it), and on top of that a cookie-authenticated POST/PUT/PATCH/DELETE
must send ``X-CSRF-Token`` (an HMAC of the cookie, rendered into each page) and, when the
browser sends ``Origin``, an origin naming this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import falcon

COOKIE = "videodrop_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_AGE = 12 * 3600  # seconds a login lasts
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Clock = Callable[[], float]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _key(admin_token: str) -> bytes:
    return hmac.new(admin_token.encode(), b"videodrop web session v1", hashlib.sha256).digest()


def _sign(admin_token: str, purpose: str, text: str) -> str:
    return _b64(hmac.new(_key(admin_token), f"{purpose}|{text}".encode(),
                         hashlib.sha256).digest())


def issue(admin_token: str, *, clock: Clock = time.time) -> str:
    """A new session value for someone who just gave the right admin token."""
    body = f"{int(clock())}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_sign(admin_token, 'session', body)}"


def valid(admin_token: str | None, value: str | None, *, clock: Clock = time.time) -> bool:
    if not admin_token or not value or len(value) > 200:
        return False
    body, _, signature = value.rpartition(".")
    issued, _, _nonce = body.partition(".")
    if not issued.isdigit():
        return False
    if not hmac.compare_digest(signature.encode(), _sign(admin_token, "session", body).encode()):
        return False
    age = clock() - int(issued)
    return -60 <= age <= MAX_AGE


def csrf_token(admin_token: str, value: str) -> str:
    """The token a page sends back with a change (bound to this one session)."""
    return _sign(admin_token, "csrf", value)


def csrf_ok(admin_token: str, value: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(
        (given or "").encode(), csrf_token(admin_token, value).encode())


def cookie_of(req: falcon.Request) -> str | None:
    values = req.get_cookie_values(COOKIE)
    return values[0] if values else None


def same_origin(req: falcon.Request, base_url: str | None = None) -> bool:
    """False only when the browser says the request comes from another origin. Under
    ``Referrer-Policy: no-referrer`` (every response here) browsers send ``Origin: null``
    with a same-origin POST, so "null" tells nothing: the CSRF token decides then."""
    origin = req.get_header("Origin")
    if origin is None or origin == "null":
        return True
    netloc = urlsplit(origin).netloc.lower()
    mine = {(req.get_header("Host") or "").lower(), req.netloc.lower()}
    if base_url:
        mine.add(urlsplit(base_url).netloc.lower())
    return netloc in mine


def admitted(req: falcon.Request, admin_token: str) -> bool:
    """True when the request carries a valid session cookie (and, for a change, the CSRF
    token and a same-site origin). A valid cookie without them is refused with 403."""
    value = cookie_of(req)
    if not valid(admin_token, value):
        return False
    assert value is not None
    if req.method in SAFE_METHODS:
        return True
    if not csrf_ok(admin_token, value, req.get_header(CSRF_HEADER)) or not same_origin(req):
        raise falcon.HTTPForbidden(
            title="CSRF check failed",
            description=f"A change made with the session cookie must send {CSRF_HEADER} "
                        "from a page of this site.")
    return True


def set_cookie(resp: falcon.Response, value: str) -> None:
    resp.set_cookie(COOKIE, value, max_age=MAX_AGE, path="/", http_only=True,
                    same_site="Strict")


def clear_cookie(resp: falcon.Response) -> None:
    resp.unset_cookie(COOKIE, same_site="Strict", path="/")
