"""HTTP uploads in the catalog: a row ``uploading`` while its file arrives, with a
heartbeat; ``processing`` once the file is stored. SQL: ``sql/uploads.sql``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from videodrop import media
from videodrop.catalog.base import CatalogBase
from videodrop.catalog.connector import Duplicate, Row
from videodrop.catalog.rows import Video
from videodrop.errors import Conflict
from videodrop.tokens import new_source_id


class Uploads(CatalogBase):
    def create_upload(self, *, filename: str, name: str | None = None, description: str = "",
                      source_id: str | None = None) -> Video:
        """The row of an upload, ``uploading``. ``filename`` as the client sent it: its
        folders go (``C:\\Users\\bob\\holiday.mp4`` → ``holiday.mp4``) and it is bounded
        to ``media.NAME_BYTES``, keeping its extension. :class:`Conflict` when
        ``source_id`` is taken."""
        filename = media.bounded(media.client_basename(filename))
        sid = source_id or new_source_id(self.clock())
        params = {
            "source_id": sid,
            "name": name or media.name_from_filename(media.safe_filename(filename)),
            "description": description,
            "access_token": self.new_token(),
            "original_filename": filename,
            "now": self.clock(),
        }
        row = self._in_own_folder("create_upload", params, sid, filename)
        assert row is not None
        return Video.from_row(row)

    def _in_own_folder(self, statement: str, params: dict[str, Any], source_id: str,
                       filename: str) -> Row | None:
        """Run ``statement`` with the row's ``stored_path`` in the source_id's folder
        (``media.source_folder``). Should that folder hold a file of a row made before
        folders were kept apart (``a.`` once shared ``a``'s), the row goes to its
        ``media.hashed_folder`` instead. A source_id already taken is a :class:`Conflict`."""
        for folder in (media.source_folder(source_id), media.hashed_folder(source_id)):
            try:
                return self.db.one(statement, {**params, "stored_path": media.stored_path(
                    source_id, filename, folder=folder)})
            except Duplicate as exc:
                if exc.constraint != "videos_stored_path_key":
                    raise Conflict(f"source_id {source_id!r} already exists") from exc
        raise Conflict(f"source_id {source_id!r} already exists")

    def upload_received(self, video_id: int, size: int, sha256: str | None = None
                        ) -> Video | None:
        """The file (``size`` bytes; ``sha256``, 64 hex digits, when the put hashed it) is
        stored: ``processing``. None unless uploading."""
        row = self.db.one("upload_received", {"id": video_id, "size": size,
                                              "sha256": sha256, "now": self.clock()})
        return Video.from_row(row) if row else None

    def touch_upload(self, video_id: int, received: int) -> bool:
        """Heartbeat of a running upload, with the bytes ``received`` so far (kept in
        ``size`` until the file is stored); False when the row is no longer uploading."""
        return self.db.one("touch_upload", {"id": video_id, "now": self.clock(),
                                            "received": received}) is not None

    def discard_upload(self, video_id: int) -> Video | None:
        """Delete the row of a refused upload (only while it is still uploading)."""
        row = self.db.one("discard_upload", {"id": video_id})
        return Video.from_row(row) if row else None

    def upload_details(self, video_id: int, *, name: str | None = None,
                       description: str | None = None,
                       source_id: str | None = None) -> Video | None:
        """Apply form fields that arrived after the file part (before it is stored)."""
        params = {"id": video_id, "name": name, "description": description,
                  "source_id": source_id, "stored_path": None, "now": self.clock()}
        if source_id is None:
            row = self.db.one("upload_details", params)
        else:
            current = self.db.one("get_by_id", {"id": video_id})
            if current is None:
                return None
            row = self._in_own_folder("upload_details", params, source_id,
                                      current["original_filename"])
        return Video.from_row(row) if row else None

    def note_leftover(self, key: str, video_id: int | None) -> None:
        """Note ``key``: the store may hold an object there that no row may come to name
        (the first key of an upload a late ``source_id`` moves; a delete the store failed).
        The housekeeping deletes it once old and unnamed (:meth:`due_leftovers`)."""
        self.db.one("note_leftover", {"key": key, "video_id": video_id, "now": self.clock()})

    def forget_leftover(self, key: str) -> None:
        """``key``'s object is gone (deleted by whoever noted it, or by the sweep)."""
        self.db.one("forget_leftover", {"key": key})

    def due_leftovers(self, older_than: timedelta, limit: int = 1000
                      ) -> list[tuple[str, int | None]]:
        """(key, video id) of the leftovers noted more than ``older_than`` ago that no row's
        ``stored_path`` names: their objects are to be deleted, then forgotten. Older notes
        of keys a row names are forgotten here (that row's removal deletes its object)."""
        cutoff = self.clock() - older_than
        self.db.one("forget_named_leftovers", {"cutoff": cutoff})
        return [(r["key"], r["video_id"]) for r in
                self.db.all("due_leftovers", {"cutoff": cutoff, "limit": limit})]

    def fail_stale_uploads(self, older_than: timedelta) -> list[Video]:
        """Uploads without a heartbeat for ``older_than`` (their API process died):
        ``failed: upload interrupted``. Returns them so their files can be removed."""
        now = self.clock()
        rows = self.db.all("fail_stale_uploads", {"now": now, "cutoff": now - older_than})
        return [Video.from_row(r) for r in rows]

    def claim_unpublished_uploads(self, older_than: timedelta) -> list[int]:
        """Received uploads no prober has started for ``older_than``: publish them again
        (a duplicate message is harmless). Each row goes to one caller per round."""
        now = self.clock()
        rows = self.db.all("claim_unpublished_uploads", {"now": now,
                                                         "cutoff": now - older_than})
        return [r["id"] for r in rows]
