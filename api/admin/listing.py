"""Management endpoints (admin bearer token): the list, and the collection's POST (upload).

``GET /api/videos`` pages newest first by ``(created_at, id)`` with an opaque keyset
``cursor``; ``status``, ``origin``, ``created_after`` and ``created_before`` filter. Each
page is an index range scan however deep it is (catalog.list_videos)."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon

from api.auth.credential import AdminAuth, admin_only
from api.http.params import (
    bad,
    decode_cursor,
    encode_cursor,
    parse_int,
    parse_when,
    query_params,
    text,
)
from api.uploads.receive import Upload
from videodrop import records
from videodrop.catalog import STATUSES, Catalog
from videodrop.settings import Settings

MAX_LIMIT = 1000


@admin_only
class VideoList:
    """``GET /api/videos`` (the module docstring); ``POST`` is :class:`Upload`'s."""

    def __init__(self, settings: Settings, catalog: Catalog, admin: AdminAuth,
                 upload: Upload) -> None:
        self.settings = settings
        self.catalog = catalog
        self.admin = admin
        self.upload = upload

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = query_params(req)
        limit = parse_int(query.get("limit", "50"), "limit", low=1, high=MAX_LIMIT)
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise bad("status", f"status is one of {', '.join(STATUSES)}")
        origin = query.get("origin")
        if origin is not None and not 1 <= len(origin) <= 1024:
            raise bad("origin", "origin is e.g. upload, inbox, inbox/cam1")
        if origin is not None:
            origin = text(origin)
        cursor = decode_cursor(query["cursor"]) if "cursor" in query else None
        after, before = query.get("created_after"), query.get("created_before")
        videos = self.catalog.list_videos(
            limit=limit + 1, cursor=cursor, status=status, origin=origin,
            created_after=None if after is None else parse_when(after, "created_after"),
            created_before=None if before is None else parse_when(before, "created_before"))
        nxt = None
        if len(videos) > limit:
            videos = videos[:limit]
            query["cursor"] = encode_cursor(videos[-1].created_at, videos[-1].id)
            nxt = self.settings.link(f"/api/videos?{urlencode(query)}")
        resp.media = {"items": [records.record(v, self.settings.base_url) for v in videos],
                      "next": nxt}

    on_head = on_get

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.upload.on_post(req, resp)
