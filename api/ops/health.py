"""/healthz (the process answers) and /readyz (database and broker reachable, inbox writable)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import falcon

from videodrop.catalog import Catalog
from videodrop.errors import CatalogUnavailable
from videodrop.settings import Settings


def broker_answers(urls: tuple[str, ...]) -> str:
    """``"ok"`` when a node of ``urls`` (VIDEODROP_AMQP_URL's) accepts a TCP connection
    within 2 s: the roles fail over to it. Else why the last one did not."""
    problem = "no URL"
    for amqp_url in urls:
        url = urlsplit(amqp_url)
        default = 5671 if url.scheme == "amqps" else 5672
        try:
            with socket.create_connection((url.hostname or "localhost", url.port or default), 2):
                return "ok"
        except OSError as exc:
            problem = f"unavailable: {exc.strerror or exc}"
    return problem


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}

    on_head = on_get


class Ready:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings, self.catalog = settings, catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {}
        try:
            self.catalog.ping()
            checks["database"] = "ok"
        except CatalogUnavailable as exc:
            checks["database"] = f"unavailable: {exc}"
        checks["broker"] = broker_answers(self.settings.amqp_urls)
        inbox = self.settings.inbox
        checks["inbox"] = "ok" if os.access(inbox, os.W_OK) else f"not writable: {inbox}"
        ok = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
        resp.media = {"status": "ready" if ok else "not ready", "checks": checks}

    on_head = on_get
