"""Watch-folder claims in the catalog: one row per name of an inbox file.

A claim key is the file's device, inode, size, mtime and ctime as the ingest saw them when
the file settled, and its name (the inbox-relative path, as raw bytes): two names of one
inode (hard links) are two videos; a re-published or redelivered message for the same name
of the same file lands on the same row. SQL: ``sql/claims.sql``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any

from videodrop import media
from videodrop.catalog.base import CatalogBase
from videodrop.catalog.connector import Duplicate
from videodrop.catalog.rows import Video
from videodrop.errors import Conflict
from videodrop.tokens import new_source_id

CLAIM_LOCK_SPACE = 0x5643  # advisory lock namespace of "claiming name <path> of inode <ino>"


@dataclass(frozen=True)
class ClaimKey:
    """What makes a watch-folder file the same file under the same name.

    ``path``: the inbox-relative path as the file system spells it (bytes, any encoding).
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    path: bytes

    def params(self) -> dict[str, Any]:
        return {"dev": self.dev, "ino": self.ino, "size": self.size, "mtime_ns": self.mtime_ns,
                "ctime_ns": self.ctime_ns, "origin_path": self.path}

    def at(self, ctime_ns: int) -> ClaimKey:
        """The same name and file with another ctime."""
        return replace(self, ctime_ns=ctime_ns)

    @property
    def lock_id(self) -> int:
        """A signed 32-bit number for the advisory lock of this name of this inode."""
        digest = hashlib.blake2b(b"%d:%d:" % (self.dev, self.ino) + self.path, digest_size=4)
        return int.from_bytes(digest.digest(), "big", signed=True)

    @classmethod
    def of_video(cls, video: Video) -> ClaimKey | None:
        if video.claim_ino is None or video.origin_path is None:
            return None
        return cls(video.claim_dev or 0, video.claim_ino, video.claim_size or 0,
                   video.claim_mtime_ns or 0, video.claim_ctime_ns or 0,
                   bytes(video.origin_path))


class InboxClaims(CatalogBase):
    """The catalog's watch-folder methods."""

    def claim_lock(self, key: ClaimKey) -> contextlib.AbstractContextManager[bool]:
        """Held while one prober claims one name of one inode (True if we got it): another
        message for the same name waits its turn instead of racing the move."""
        return self.db.advisory_lock(CLAIM_LOCK_SPACE, key.lock_id)

    def claim_inbox_file(self, key: ClaimKey) -> tuple[Video, bool]:
        """Insert the row for this name of this file, or return the one a previous message
        made: (row, inserted). Name and origin are the decoded path (``media.decode_name``),
        bounded to ``media.NAME_BYTES``; ``origin_path`` keeps the bytes."""
        shown = media.decode_name(key.path)
        folder, _, filename = shown.rpartition("/")
        filename = media.bounded(filename)
        for _ in range(5):
            source_id = new_source_id(self.clock())
            params = {
                **key.params(),
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

    def by_claim(self, key: ClaimKey) -> Video | None:
        row = self.db.one("get_by_claim", key.params())
        return Video.from_row(row) if row else None

    def earlier_claims(self, key: ClaimKey) -> list[Video]:
        """Rows of this name and inode, size and mtime, claimed at an earlier ctime and not
        probed yet, oldest first (``sql/claims.sql`` earlier_claims)."""
        return [Video.from_row(r) for r in self.db.all("earlier_claims", key.params())]

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
