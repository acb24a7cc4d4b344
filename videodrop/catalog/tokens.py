"""Changing a video's access token, or removing the video (the management API). Each
change removes the stream link before it commits and tells the caches after
(``after_write``). SQL: ``sql/tokens.sql``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from videodrop.catalog.connector import Row
from videodrop.catalog.rows import Video
from videodrop.catalog.streamlinks import StreamLinkSync


class TokenChanges(StreamLinkSync):
    def rotate_token(self, video_id: int, *, expires_at: datetime | None = None
                     ) -> Video | None:
        """A new token; the old one stops working with this commit."""
        row = self._change_token("rotate_token", {"id": video_id, "token": self.new_token(),
                                                  "expires_at": expires_at,
                                                  "now": self.clock()})
        if row and row["status"] == "ready":
            self._make_link(video_id)
        return Video.from_row(row) if row else None

    def revoke_token(self, video_id: int) -> Video | None:
        row = self._change_token("revoke_token", {"id": video_id, "now": self.clock()})
        return Video.from_row(row) if row else None

    def delete_video(self, video_id: int) -> Video | None:
        """Remove the row; the caller removes the stored file (its path is in the result)."""
        row = self._change_token("delete_video", {"id": video_id})
        return Video.from_row(row) if row else None

    def _change_token(self, name: str, params: Mapping[str, Any]) -> Row | None:
        """Run ``name``: the link goes before it commits, ``after_write`` is called after."""
        row = self._write_after_unlinking(name, params)
        if self.after_write is not None:
            self.after_write()
        return row
