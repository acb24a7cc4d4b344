"""What the app answers when a request fails for want of the database or for a reason
nobody planned for (a bug, a stored file the process may not read), registered once on the
app (:func:`register`, ``add_error_handler``; HTTP errors keep Falcon's own handler).
Resources let :class:`~videodrop.errors.CatalogUnavailable` through; nothing else turns it
into an answer.

* ``CatalogUnavailable`` → 503 with ``Retry-After: 5`` and the JSON error
  ``{"title": "Catalog unavailable", "description": …}`` (:func:`catalog_unavailable`); on
  the routes of the web pages, the pages' own 503 page instead (``html_routes``).
* the media store's :class:`~videodrop.storage.StoreUnavailable` (it does not answer: an
  S3 endpoint down or timing out) and :class:`~videodrop.storage.StoreRefused` (no bucket,
  credentials refused) → 503 with ``Retry-After: 5`` and ``{"title": "Media store
  unavailable", …}`` (:func:`store_unavailable`), one ``warning`` line naming the route;
  the routes that need no store keep answering.
* anything else → one structured ``error`` line and a JSON 500 naming the request's id.

Falcon's default for an unplanned exception writes the method, the path and the traceback
to ``wsgi.errors``, which gunicorn copies into its error log as they are: the path of
``/stream/{token}/`` holds the whole token. Here the failure is one structured ``error``
line instead, naming the request by its route (``api.ops.requestlog.route_of``) and
carrying the traceback with token-shaped runs cut (``videodrop.logs``), and the answer is a
JSON 500 with the request's id to find that line by.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

import falcon

from api.ops.requestlog import route_of
from videodrop import logs
from videodrop.errors import CatalogUnavailable
from videodrop.storage import StoreRefused, StoreUnavailable

_log = logs.get("api")

RETRY_AFTER = 5  # seconds, in the Retry-After of a 503

Page = Callable[[falcon.Request, falcon.Response], None]


def unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception,
               params: dict[str, Any]) -> None:
    """Any exception no resource turned into an HTTP error: logged, answered 500."""
    _log.error("request failed", method=req.method, route=route_of(req),
               error=f"{type(ex).__name__}: {ex}", exception=traceback.format_exc())
    raise falcon.HTTPInternalServerError(
        title="Internal Server Error",
        description="The request failed on the server; its log has the reason under this"
                    " response's X-Request-ID.")


def catalog_unavailable() -> falcon.HTTPServiceUnavailable:
    """The 503 of every JSON endpoint when the database cannot be reached."""
    return falcon.HTTPServiceUnavailable(
        title="Catalog unavailable",
        description="The database cannot be reached; try again shortly.",
        retry_after=RETRY_AFTER)


def store_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception,
                      params: dict[str, Any]) -> None:
    """The handler of the media store's StoreUnavailable and StoreRefused: a warning line
    and a 503 (see the module docstring)."""
    _log.warning("media store unavailable", method=req.method, route=route_of(req),
                 error=f"{type(ex).__name__}: {ex}")
    raise falcon.HTTPServiceUnavailable(
        title="Media store unavailable",
        description="The media store cannot be reached or refuses us; try again shortly.",
        retry_after=RETRY_AFTER) from ex


class CatalogUnavailableHandler:
    """The handler of :class:`CatalogUnavailable`: ``html_page(req, resp)`` renders the
    answer of a request whose route template is one of ``html_routes``; every other
    request gets :func:`catalog_unavailable`."""

    def __init__(self, html_page: Page | None = None, html_routes: Iterable[str] = ()
                 ) -> None:
        self.html_page = html_page
        self.html_routes = frozenset(html_routes)

    def __call__(self, req: falcon.Request, resp: falcon.Response, ex: Exception,
                 params: dict[str, Any]) -> None:
        if self.html_page is not None and req.uri_template in self.html_routes:
            self.html_page(req, resp)
            return
        raise catalog_unavailable() from ex


def register(app: falcon.App, html_page: Page | None = None,
             html_routes: Iterable[str] = ()) -> None:
    """Install the handlers on ``app`` (see the module docstring)."""
    app.add_error_handler(Exception, unexpected)
    for store_error in (StoreUnavailable, StoreRefused):
        app.add_error_handler(store_error, store_unavailable)
    app.add_error_handler(CatalogUnavailable,
                          CatalogUnavailableHandler(html_page, html_routes))
