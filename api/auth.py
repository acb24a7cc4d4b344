"""The admin bearer token: management endpoints refuse everything until it is set."""

from __future__ import annotations

import hmac

import falcon

from api import session


def require_admin(req: falcon.Request, admin_token: str | None) -> None:
    if not admin_token:
        raise falcon.HTTPUnauthorized(
            title="Admin API disabled",
            description="Set VIDEODROP_ADMIN_TOKEN to enable management endpoints.",
            challenges=['Bearer realm="videodrop"'],
        )
    if req.get_header("Authorization") is None and session.admitted(req, admin_token):
        return  # the web pages' login cookie (api/session.py; CSRF-checked for changes)
    header = req.get_header("Authorization") or ""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             admin_token.encode()):
        raise falcon.HTTPUnauthorized(
            title="Unauthorized",
            description="Send 'Authorization: Bearer <VIDEODROP_ADMIN_TOKEN>'.",
            challenges=['Bearer realm="videodrop"'],
        )
