"""What the app answers when a request fails for want of the database or for a reason
nobody planned for (a bug, a stored file the process may not read), registered once on the
app (``add_error_handler``; HTTP errors keep Falcon's own handler).

Falcon's default for an unplanned exception writes the method, the path and the traceback
to ``wsgi.errors``, which gunicorn copies into its error log as they are: the path of
``/stream/{token}/`` holds the whole token. Here the failure is one structured ``error``
line instead, naming the request by its route (``api.ops.requestlog.route_of``) and carrying
the traceback with token-shaped runs cut (``videodrop.logs``), and the answer is a JSON 500
with the request's id to find that line by.
"""

from __future__ import annotations

import traceback
from typing import Any

import falcon

from api.ops.requestlog import route_of
from videodrop import logs
from videodrop.errors import CatalogUnavailable

_log = logs.get("api")


def unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception,
               params: dict[str, Any]) -> None:
    """Any exception no resource turned into an HTTP error: logged, answered 500."""
    _log.error("request failed", method=req.method, route=route_of(req),
               error=f"{type(ex).__name__}: {ex}", exception=traceback.format_exc())
    raise falcon.HTTPInternalServerError(
        title="Internal Server Error",
        description="The request failed on the server; its log has the reason under this"
                    " response's X-Request-ID.")


def catalog_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception,
                        params: dict[str, Any]) -> None:
    """The database cannot be reached (where a resource did not answer that itself)."""
    raise falcon.HTTPServiceUnavailable(
        title="Catalog unavailable",
        description="The database cannot be reached; try again shortly.", retry_after=5)


def register(app: falcon.App) -> None:
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(CatalogUnavailable, catalog_unavailable)
