"""Watch-folder claims in the catalog: one row per name of an inbox file.

The claim key is the message itself (:class:`videodrop.messages.InboxFile`): the file's
device, inode, size, mtime and ctime as the ingest saw them when the file settled, and its
name. SQL: ``sql/claims.sql``.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from videodrop import media
from videodrop.catalog.base import CatalogBase
from videodrop.catalog.connector import Duplicate
from videodrop.catalog.rows import Video
from videodrop.errors import Conflict
from videodrop.messages import InboxFile
from videodrop.tokens import new_source_id

CLAIM_LOCK_SPACE = 0x5643  # advisory lock namespace of "claiming name <path> of inode <ino>"


def claim_params(key: InboxFile) -> dict[str, Any]:
    """The claim key's columns as statement parameters (``sql/claims.sql``)."""
    return {"dev": key.dev, "ino": key.ino, "size": key.size, "mtime_ns": key.mtime_ns,
            "ctime_ns": key.ctime_ns, "origin_path": key.raw_path}


class InboxClaims(CatalogBase):
    """The catalog's watch-folder methods."""

    def claim_lock(self, key: InboxFile) -> contextlib.AbstractContextManager[bool]:
        """Held while one prober claims one name of one inode (True if we got it): another
        message for the same name waits its turn instead of racing the move."""
        return self.db.advisory_lock(CLAIM_LOCK_SPACE, key.lock_id)

    def claim_inbox_file(self, key: InboxFile) -> tuple[Video, bool]:
        """Insert the row for this name of this file, or return the one a previous message
        made: (row, inserted). Name and origin are the decoded path (``media.decode_name``),
        bounded to ``media.NAME_BYTES``; ``origin_path`` keeps the bytes."""
        shown = media.decode_name(key.raw_path)
        folder, _, filename = shown.rpartition("/")
        filename = media.bounded(filename)
        for _ in range(5):
            source_id = new_source_id(self.clock())
            params = {
                **claim_params(key),
                "source_id": source_id,
                "name": media.name_from_filename(filename),
                "access_token": self.new_token(),
                "original_filename": filename,
                "origin": f"inbox/{folder}" if folder else "inbox",
                "stored_path": media.stored_path(source_id, filename),
                "now": self.clock(),
            }
            try:
                row = self.db.one("claim_inbox_file", params)
            except Duplicate:  # a random source_id collided: new one
                continue
            assert row is not None
            return Video.from_row(row), bool(row["inserted"])
        raise Conflict("could not generate a unique source_id")

    def by_claim(self, key: InboxFile) -> Video | None:
        row = self.db.one("get_by_claim", claim_params(key))
        return Video.from_row(row) if row else None

    def earlier_claims(self, key: InboxFile) -> list[Video]:
        """Rows of this name and inode, size and mtime, claimed at an earlier ctime and not
        probed yet, oldest first (``sql/claims.sql`` earlier_claims)."""
        return [Video.from_row(r) for r in self.db.all("earlier_claims", claim_params(key))]

    def move_stored(self, video: Video) -> Video | None:
        """Give ``video`` (``processing``, nothing stored yet) a stored path in a folder of
        its own no other row can have (``~`` and 128 random bits, lower case: distinct on
        a case-insensitive store too); None if the row changed meanwhile."""
        filename = video.stored_path.rsplit("/", 1)[-1]
        for _ in range(5):
            new = f"videos/~{secrets.token_hex(16)}/{filename}"
            try:
                row = self.db.one("move_stored", {"id": video.id, "old": video.stored_path,
                                                  "stored_path": new, "now": self.clock()})
            except Duplicate:  # pragma: no cover - 128 random bits
                continue
            return Video.from_row(row) if row else None
        raise Conflict("could not find a free stored path")

    def rekey_claim(self, video: Video, ctime_ns: int) -> Video | None:
        """Move the row's claim to the file's current ctime; None if it changed meanwhile."""
        row = self.db.one("rekey_claim", {"id": video.id, "ctime_ns": ctime_ns,
                                          "old_ctime_ns": video.claim_ctime_ns,
                                          "now": self.clock()})
        return Video.from_row(row) if row else None
