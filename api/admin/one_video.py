"""One video, by id (admin bearer token): read, delete, rotate or revoke its token.

* ``GET /api/videos/{id}`` → the record.
* ``DELETE /api/videos/{id}`` → 204; the row, its stored file and its derivatives are gone.
* ``POST /api/videos/{id}/token`` → 200 with the record carrying a new token; the old one
  stops working with the commit. Optional JSON body ``{"expires_at": ISO 8601 | null}``:
  after that instant the token answers the same 404 as an unknown one.
* ``DELETE /api/videos/{id}/token`` → 200 with the record, no token: every link is dead
  until the next rotation.
* ``POST /api/videos/{id}/hold`` → 200 with the record, ``held_at`` set: no retention rule
  removes the video (docs/operations.md); 409 when it has expired already.
* ``DELETE /api/videos/{id}/hold`` → 200 with the record, ``held_at`` null: the rules
  apply again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon

from api.auth.credential import AdminAuth, admin_only
from api.http.params import parse_when
from videodrop import logs, records, removal
from videodrop.catalog import Catalog, Conflict, Video
from videodrop.settings import Settings
from videodrop.storage import MediaStore, from_settings
from videodrop.tokens import token_prefix


def no_such_video() -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(title="Not found", description="No video has this id.")


class _ById:
    def __init__(self, settings: Settings, catalog: Catalog, admin: AdminAuth, *,
                 media: MediaStore | None = None) -> None:
        """``media``: the process's media store (default: the one the settings name)."""
        self.settings = settings
        self.catalog = catalog
        self.admin = admin
        self.media = media if media is not None else from_settings(settings)
        self.log = logs.get("api.manage")

    def _send_record(self, resp: falcon.Response, video: Video | None) -> None:
        if video is None:
            raise no_such_video()
        if not video.derivatives and video.status == "ready":  # a write's row lacks them
            video = self.catalog.with_derivatives(video)
        resp.media = records.record(video, self.settings.base_url)


@admin_only
class VideoItem(_ById):
    def on_get(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        video = self.catalog.by_id(video_id)
        self._send_record(resp, video)

    on_head = on_get

    def on_delete(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        video = self.catalog.delete_video(video_id)
        if video is None:
            raise no_such_video()
        # The row is gone first: from now on no link serves the file, then it goes too.
        removal.remove_video(self.media, video)
        self.log.info("video deleted", video_id=video.id, stored_path=video.stored_path)
        resp.status = falcon.HTTP_204


@admin_only
class VideoToken(_ById):
    def on_post(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        expires_at = _expires_at(req)
        video = self.catalog.rotate_token(video_id, expires_at=expires_at)
        if video is not None:
            self.log.info("token rotated", video_id=video.id,
                          token=token_prefix(video.access_token),
                          expires_at=expires_at.isoformat() if expires_at else None)
        self._send_record(resp, video)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        video = self.catalog.revoke_token(video_id)
        if video is not None:
            self.log.info("token revoked", video_id=video.id)
        self._send_record(resp, video)


@admin_only
class VideoHold(_ById):
    def on_post(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        try:
            video = self.catalog.hold(video_id)
        except Conflict as exc:
            raise falcon.HTTPConflict(title="Video expired",
                                      description=f"Nothing to hold: {exc}.") from exc
        if video is not None:
            self.log.info("video held", video_id=video.id)
        self._send_record(resp, video)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        video = self.catalog.release(video_id)
        if video is not None:
            self.log.info("video hold lifted", video_id=video.id)
        self._send_record(resp, video)


def _expires_at(req: falcon.Request) -> datetime | None:
    """``expires_at`` from an optional JSON object body."""
    if not req.content_length and req.get_header("Transfer-Encoding") is None:
        return None
    body: Any = req.get_media(default_when_empty=None)
    if not isinstance(body, dict) or set(body) - {"expires_at"}:  # JSON null included
        raise falcon.HTTPBadRequest(title="Bad body",
                                    description='Send {"expires_at": "<ISO 8601>"} or nothing.')
    value = body.get("expires_at")
    if value is None:
        return None
    if not isinstance(value, str):
        raise falcon.HTTPBadRequest(title="Bad expires_at",
                                    description="expires_at is an ISO 8601 string or null")
    return parse_when(value, "expires_at")
