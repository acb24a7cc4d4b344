"""The web pages' login session: an HttpOnly, SameSite=Strict cookie standing in for the
admin token, and the CSRF token that cookie-authenticated changes must carry.

The cookie is ``<secret>.<signature>``: a random secret (256 bits) naming a row of
``web_sessions`` in PostgreSQL (videodrop/websessions.py, which keeps only its SHA-256),
and an HMAC-SHA256 of it keyed by a key derived from ``VIDEODROP_ADMIN_TOKEN``. A request
carrying it is admitted while the row exists and has not expired (``MAX_AGE``): logging out
deletes the row, so the cookie stops working at once for every API worker and machine
(a copy of it replayed later is refused); "log out everywhere" deletes every row. The
signature refuses a forged or stale cookie without asking the database, and changing the
admin token logs every browser out. The cookie never contains the admin token.

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
from urllib.parse import urlsplit

import falcon

from videodrop.websessions import LoginStore

COOKIE = "videodrop_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_AGE = 12 * 3600  # seconds a login lasts
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE = 200  # characters: longer values are not ours


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Sessions:
    """Login sessions for ``admin_token`` (None: nobody can log in), kept in ``store``."""

    def __init__(self, admin_token: str | None, store: LoginStore, *,
                 max_age: float = MAX_AGE) -> None:
        self.admin_token = admin_token
        self.store = store
        self.max_age = max_age
        self._key = hmac.new((admin_token or "").encode(), b"videodrop web session v2",
                             hashlib.sha256).digest()

    def _sign(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{text}".encode(), hashlib.sha256).digest())

    def begin(self, client: str) -> str:
        """A new session for someone who just gave the right admin token: the cookie's
        value. Raises CatalogUnavailable without the database."""
        secret = secrets.token_urlsafe(32)
        self.store.begin_session(secret, self.max_age, client)
        return f"{secret}.{self._sign('session', secret)}"

    def _secret(self, value: str | None) -> str | None:
        """The secret of a cookie signed by us, or None."""
        if not self.admin_token or not value or len(value) > MAX_COOKIE:
            return None
        secret, _, signature = value.partition(".")
        if not secret or not hmac.compare_digest(signature.encode(),
                                                 self._sign("session", secret).encode()):
            return None
        return secret

    def valid(self, value: str | None) -> bool:
        """The cookie's session exists and has not expired (one database read; raises
        CatalogUnavailable without the database)."""
        secret = self._secret(value)
        return secret is not None and self.store.session_alive(secret)

    def of(self, req: falcon.Request) -> str | None:
        """The request's session cookie if it is valid, else None; asked once a request."""
        context = req.context
        if "session" not in context:
            value = cookie_of(req)
            context.session = value if self.valid(value) else None
        return context.session

    def end(self, value: str | None) -> None:
        """Log this cookie's session out (nothing if it is not one of ours)."""
        secret = self._secret(value)
        if secret is not None:
            self.store.end_session(secret)

    def end_all(self) -> int:
        """Log every session out; how many there were."""
        return self.store.end_all_sessions()

    def csrf_token(self, value: str) -> str:
        """The token a page sends back with a change (bound to this one session)."""
        return self._sign("csrf", value)

    def csrf_ok(self, value: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest((given or "").encode(),
                                                   self.csrf_token(value).encode())

    def admitted(self, req: falcon.Request) -> bool:
        """True when the request carries a valid session cookie (and, for a change, the
        CSRF token and a same-site origin). A valid cookie without them is refused with
        403."""
        value = self.of(req)
        if value is None:
            return False
        if req.method in SAFE_METHODS:
            return True
        if not self.csrf_ok(value, req.get_header(CSRF_HEADER)) or not same_origin(req):
            raise falcon.HTTPForbidden(
                title="CSRF check failed",
                description=f"A change made with the session cookie must send {CSRF_HEADER} "
                            "from a page of this site.")
        return True


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


def set_cookie(resp: falcon.Response, value: str) -> None:
    resp.set_cookie(COOKIE, value, max_age=MAX_AGE, path="/", http_only=True,
                    same_site="Strict")


def clear_cookie(resp: falcon.Response) -> None:
    resp.unset_cookie(COOKIE, same_site="Strict", path="/")
