"""The admin credential: ``Authorization: Bearer $VIDEODROP_ADMIN_TOKEN``, or the web pages'
session cookie (api/session.py). Management endpoints refuse everything until the token is
set, and the API refuses to start with a token a guesser could find (:func:`weak_token`).

Every wrong token, given as a bearer or typed into the login form, counts against its
client address (api/throttle.py); a client over its budget is answered 429 before its token
is compared. A request without any credential is not a guess and is not counted.
"""

from __future__ import annotations

import hmac
import math
import string

import falcon

from api.clients import ClientAddress
from api.session import Sessions
from api.throttle import LoginThrottle

MIN_TOKEN_BITS = 128
# The character classes a token's alphabet is estimated from (their sizes add up).
CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits,
           string.punctuation + " ")
OTHER_CLASS = 128  # any character outside printable ASCII counts as one of this many


def token_bits(token: str) -> float:
    """An estimate of the entropy of ``token`` in bits: its length times log2 of the
    alphabet made of the character classes it uses (lowercase 26, uppercase 26, digits 10,
    ASCII punctuation and space 33, anything else 128). An upper bound for a token a person
    made up; about right for a random one (``secrets.token_urlsafe(32)``: 43 characters of
    64, about 256 bits)."""
    alphabet = sum(len(c) for c in CLASSES if any(ch in c for ch in token))
    if any(not any(ch in c for c in CLASSES) for ch in token):
        alphabet += OTHER_CLASS
    return len(token) * math.log2(alphabet) if alphabet > 1 else 0.0


def weak_token(token: str | None) -> str | None:
    """Why ``token`` may not be the admin token, or None (no token: management is off)."""
    if not token:
        return None
    bits = token_bits(token)
    if bits >= MIN_TOKEN_BITS:
        return None
    return (f"VIDEODROP_ADMIN_TOKEN is too easy to guess: about {bits:.0f} bits, at least"
            f" {MIN_TOKEN_BITS} needed (length x log2 of the alphabet of the character classes"
            " it uses). Make one with: python3 -c 'import secrets;"
            " print(secrets.token_urlsafe(32))'")


class AdminAuth:
    """Who may use the management API and the pages (module docstring)."""

    def __init__(self, admin_token: str | None, sessions: Sessions, throttle: LoginThrottle,
                 clients: ClientAddress) -> None:
        self.admin_token = admin_token
        self.sessions = sessions
        self.throttle = throttle
        self.clients = clients

    def client(self, req: falcon.Request) -> str:
        return self.clients.of(req.env)

    def token_ok(self, req: falcon.Request, given: str | None) -> bool:
        """Whether ``given`` is the admin token (None: a credential of another kind),
        counted against the request's client: raises api.throttle.Throttled (429) first if
        the client is over its budget."""
        client = self.client(req)
        self.throttle.check(client)
        if (self.admin_token and given is not None
                and hmac.compare_digest(given.encode(), self.admin_token.encode())):
            return True
        self.throttle.failed(client)
        return False

    def require(self, req: falcon.Request) -> None:
        """Admit the request or raise 401 (403 for a cookie without its CSRF token, 429 for
        a client over its budget)."""
        if not self.admin_token:
            raise falcon.HTTPUnauthorized(
                title="Admin API disabled",
                description="Set VIDEODROP_ADMIN_TOKEN to enable management endpoints.",
                challenges=['Bearer realm="videodrop"'])
        header = req.get_header("Authorization")
        if header is None and self.sessions.admitted(req):
            return  # the web pages' login cookie (CSRF-checked for changes)
        if header is not None:
            scheme, _, given = header.partition(" ")
            if self.token_ok(req, given.strip() if scheme.lower() == "bearer" else None):
                return
        raise falcon.HTTPUnauthorized(
            title="Unauthorized",
            description="Send 'Authorization: Bearer <VIDEODROP_ADMIN_TOKEN>'.",
            challenges=['Bearer realm="videodrop"'])
