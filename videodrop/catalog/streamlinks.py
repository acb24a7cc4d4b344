"""Keeping the stream-link folder (videodrop/links.py) in step with the catalog: a link
goes in the transaction of any change to a ready row, before it commits; it is made from
a committed ready row held FOR SHARE. SQL: ``sql/streamlinks.sql``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from videodrop import logs
from videodrop.catalog.base import CatalogBase
from videodrop.catalog.connector import Row, Transaction
from videodrop.errors import CatalogUnavailable


class StreamLinkSync(CatalogBase):
    def _write_after_unlinking(self, name: str, params: Mapping[str, Any]) -> Row | None:
        """Statement ``name`` on row ``params["id"]``, its stream link removed first, in the
        same transaction (:meth:`_remove_link`)."""
        with self.db.transaction() as tx:
            self._remove_link(tx, params["id"])
            return tx.one(name, params)

    def _remove_link(self, tx: Transaction, video_id: int) -> None:
        """In a transaction about to change a row: if it is ready, lock it and remove its
        link now, so that the link is gone before the change is visible.
        :class:`CatalogUnavailable` (the change must not commit) when it cannot be
        removed."""
        if self.links is None:
            return
        row = tx.one("lock_ready_token", {"id": video_id})
        if row and row["access_token"]:
            try:
                self.links.remove(row["access_token"])
            except OSError as exc:
                raise CatalogUnavailable(
                    f"stream link of video {video_id} not removed, change refused: {exc}"
                ) from exc

    def _make_link(self, video_id: int) -> None:
        """After a row turned ready or got a new token: its link, made while the committed
        row is held FOR SHARE. A failure costs speed only (the API answers instead)."""
        if self.links is None:
            return
        try:
            with self.db.transaction() as tx:
                row = tx.one("link_row", {"id": video_id})
                target = self.links.target(row) if row else None
                if target is not None:
                    self.links.add(target)
                elif row is not None:  # a ready row with no link (awaiting a viewer)
                    self.links.remove(row["access_token"])
        except (CatalogUnavailable, OSError) as exc:
            logs.get("videodrop.links").warning(
                "stream link not made: the API serves this video", video_id=video_id,
                error=str(exc))

    def refresh_link(self, video_id: int) -> None:
        """A ready video's rendition became ready, stopped being, or waits for a viewer:
        its link points at what ``/stream/`` serves now, or is removed (:meth:`_make_link`)."""
        self._make_link(video_id)

    def sync_links(self, batch: int = 1000) -> tuple[int, int]:
        """Put the link folder in step with the catalog: (links made, links removed).
        Links of rows that are no longer ready, revoked, expiring or moved go (removing is
        always safe); then every ready row's link is made, a batch of rows held FOR SHARE
        at a time."""
        links = self.links
        if links is None:
            return 0, 0
        removed = self.prune_links()
        made, after = 0, 0
        while True:
            with self.db.transaction() as tx:
                rows = tx.all("link_rows", {"after": after, "limit": batch})
                for row in rows:
                    target = links.target(row)
                    if target is not None and not links.is_current(target):
                        links.add(target)
                        made += 1
            if len(rows) < batch:
                return made, removed
            after = rows[-1]["id"]

    def prune_links(self) -> int:
        """Remove the links of rows that are no longer ready, revoked, expiring or moved:
        how many (the first half of :meth:`sync_links`; removing is always safe)."""
        links = self.links
        if links is None:
            return 0
        removed = 0
        for shard in links.shards():
            if not shard:
                continue
            rows = self.db.all("link_rows_by_token", {"tokens": [token for token, _ in shard]})
            valid = {t.token: t for t in map(links.target, rows) if t is not None}
            removed += links.prune(shard, valid)
        return removed
