"""The admin credential: ``Authorization: Bearer $VIDEODROP_ADMIN_TOKEN``, or the web pages'
session cookie (api/auth/sessions.py). Management endpoints refuse everything until the token is
set, and the API refuses to start with a token a guesser could find (:func:`weak_token`).

Every wrong token, given as a bearer or typed into the login form, counts against its
client address (api/auth/throttle.py); a client over its budget is answered 429 before its token
is compared. A request without any credential is not a guess and is not counted.
"""

from __future__ import annotations

import hmac
from typing import Any

import falcon

from api.auth.clients import ClientAddress
from api.auth.sessions import Sessions
from api.auth.throttle import LoginThrottle
from api.auth.token_strength import REASONS, estimates, token_bits

__all__ = ["MIN_TOKEN_BITS", "AdminAuth", "admin_only", "token_bits", "weak_token"]

MIN_TOKEN_BITS = 128


def weak_token(token: str | None) -> str | None:
    """Why ``token`` may not be the admin token, or None (no token: management is off).
    The entropy is estimated by :func:`api.auth.token_strength.token_bits`: the smallest of
    several bounds, so repeated characters or pieces, runs, common words and few distinct
    characters each make a token weak whatever its length."""
    if not token:
        return None
    found = estimates(token)
    bits = min(found.values())
    if bits >= MIN_TOKEN_BITS:
        return None
    why = min(found, key=found.__getitem__)
    return (f"VIDEODROP_ADMIN_TOKEN is too easy to guess: about {bits:.0f} bits, at least"
            f" {MIN_TOKEN_BITS} needed ({REASONS[why]}). Make one with: python3 -c"
            " 'import secrets; print(secrets.token_urlsafe(32))'")


def _admit(req: falcon.Request, resp: falcon.Response, resource: Any,
           params: dict[str, Any]) -> None:
    resource.admin.require(req)


# ``@admin_only`` on a resource class whose ``admin`` is an :class:`AdminAuth`: every
# responder of the class admits the request (:meth:`AdminAuth.require`) before it runs.
admin_only = falcon.before(_admit)


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
        counted against the request's client: raises api.auth.throttle.Throttled (429) first if
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
