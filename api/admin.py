"""Management endpoints (admin bearer token): the list, and the collection's POST (upload).

``GET /api/videos`` pages newest first by ``(created_at, id)`` with an opaque keyset
``cursor``; ``status``, ``origin``, ``created_after`` and ``created_before`` filter. Each
page is an index range scan however deep it is (catalog.list_videos)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import falcon

from api.auth import require_admin
from api.uploads import Upload
from videodrop import records
from videodrop.catalog import STATUSES, Catalog
from videodrop.errors import CatalogUnavailable
from videodrop.settings import Settings

MAX_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_CURSOR = re.compile(r"(-?[0-9]{1,18})_([0-9]{1,19})")
_MAX_ID = 2**63 - 1


def encode_cursor(created_at: datetime, video_id: int) -> str:
    """``<microseconds since 1970>_<id>``: exact (no float), URL-safe."""
    return f"{(created_at - _EPOCH) // _MICRO}_{video_id}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    m = _CURSOR.fullmatch(raw)
    try:
        if m is None or int(m.group(2)) > _MAX_ID:
            raise ValueError(raw)
        return _EPOCH + int(m.group(1)) * _MICRO, int(m.group(2))
    except (ValueError, OverflowError) as exc:
        raise falcon.HTTPBadRequest(
            title="Bad cursor", description="Use the 'next' link of the previous page.") from exc


def parse_when(raw: str, name: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when.astimezone(UTC)  # out of range once moved to UTC → OverflowError
    except (ValueError, OverflowError) as exc:
        raise falcon.HTTPBadRequest(title=f"Bad {name}",
                                    description="Use ISO 8601, e.g. 2026-11-25T12:00:00Z") from exc
    return when


def catalog_unavailable(exc: CatalogUnavailable) -> falcon.HTTPError:
    return falcon.HTTPServiceUnavailable(
        title="Catalog unavailable",
        description="The database cannot be reached; try again shortly.", retry_after=5)


class VideoList:
    def __init__(self, settings: Settings, catalog: Catalog, upload: Upload | None = None
                 ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.upload = upload

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.settings.admin_token)
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=50)
        status = req.get_param("status")
        if status is not None and status not in STATUSES:
            raise falcon.HTTPBadRequest(title="Bad status",
                                        description=f"status is one of {', '.join(STATUSES)}")
        origin = req.get_param("origin")
        if origin is not None and ("\x00" in origin or len(origin) > 1024
                                   or not origin.isprintable()):
            raise falcon.HTTPBadRequest(title="Bad origin",
                                        description="origin is e.g. upload, inbox, inbox/cam1")
        raw_cursor = req.get_param("cursor")
        cursor = decode_cursor(raw_cursor) if raw_cursor is not None else None
        after = req.get_param("created_after")
        before = req.get_param("created_before")
        try:
            videos = self.catalog.list_videos(
                limit=limit + 1, cursor=cursor, status=status, origin=origin,
                created_after=parse_when(after, "created_after") if after else None,
                created_before=parse_when(before, "created_before") if before else None)
        except CatalogUnavailable as exc:
            raise catalog_unavailable(exc) from exc
        nxt = None
        if len(videos) > limit:
            videos = videos[:limit]
            params = {k: v for k, v in req.params.items() if k != "cursor"}
            params["cursor"] = encode_cursor(videos[-1].created_at, videos[-1].id)
            nxt = self.settings.link(f"/api/videos?{urlencode(params, doseq=True)}")
        resp.media = {"items": [records.record(v, self.settings.base_url) for v in videos],
                      "next": nxt}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.upload is None:
            raise falcon.HTTPMethodNotAllowed(["GET"])
        self.upload.on_post(req, resp)
