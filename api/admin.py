"""Management endpoints (admin bearer token): the list, for operators and tests."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import falcon

from api.auth import require_admin
from videodrop import records
from videodrop.catalog import STATUSES, Catalog
from videodrop.errors import CatalogUnavailable
from videodrop.settings import Settings

MAX_LIMIT = 1000


class VideoList:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.settings.admin_token)
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=50)
        before = req.get_param_as_int("before", min_value=1)
        status = req.get_param("status")
        if status is not None and status not in STATUSES:
            raise falcon.HTTPBadRequest(title="Bad status",
                                        description=f"status is one of {', '.join(STATUSES)}")
        origin = req.get_param("origin")
        after_ts = _when(req, "created_after")
        before_ts = _when(req, "created_before")
        try:
            videos = self.catalog.list_videos(limit=limit, before=before, status=status, origin=origin,
                                       created_after=after_ts, created_before=before_ts)
        except CatalogUnavailable as exc:
            raise falcon.HTTPServiceUnavailable(title="Catalog unavailable",
                                                description=str(exc), retry_after=5) from exc
        nxt = None
        if len(videos) == limit:
            params = {k: v for k, v in req.params.items() if k != "before"}
            params["before"] = str(videos[-1].id)
            nxt = self.settings.link(f"/api/videos?{urlencode(params)}")
        resp.media = {"items": [records.record(v, self.settings.base_url) for v in videos],
                      "next": nxt}


def _when(req: falcon.Request, name: str) -> datetime | None:
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise falcon.HTTPBadRequest(title=f"Bad {name}",
                                    description="Use ISO 8601, e.g. 2026-11-25T12:00:00Z") from exc
