"""Stream links: nginx answers ``/stream/{token}/`` by itself, at nginx's speed.

With ``VIDEODROP_STREAM_LINKS`` set to a folder, every ready video whose token has no
expiry has a symbolic link there, named by its token, pointing at its stored file::

    <folder>/<first 2 characters of the token>/<token>.<extension> -> <media root>/<stored path>

``deploy/nginx.conf`` serves ``/stream/{token}/`` from that link when it exists (Range,
If-Range, conditional requests and ``sendfile`` are nginx's own) and hands every other
request to the API: no link (not ready, failed, unknown, revoked, expiring tokens), several
ranges (the API merges them), numbers nginx reads wrongly. The extension is the key of the
container the API would serve it as (``videodrop/formats.py``: one per Content-Type), and
nginx's ``types`` map each key to that Content-Type.

What keeps "a revoked token stops at once" (the catalog, ``videodrop/catalog/streamlinks.py``,
is the only writer):

* a link is **removed before** any change to its row commits, in the same transaction and
  under the row's lock: once the change is visible, the link is gone; a crash in between
  leaves the row unchanged and merely the link missing (the API answers instead);
* a link is **created only from a committed ready row**, read ``FOR SHARE``, so no change
  to that row can commit between the read and the link;
* a change made behind the catalog's back (``psql``) is announced by a trigger on the
  ``videodrop_links`` channel with the old token; the API's listener removes the link
  milliseconds later (a listener back from an outage first removes the links of rows
  changed meanwhile, ``Catalog.prune_links``); ``videodrop links`` (run by ``videodrop
  api`` at start) puts the folder back in step with the catalog. The catalog's own
  changes are not announced (migration 0004): it removed the link itself, and a late
  notice could remove the next link of a row that keeps its token (a video probed again).

Removing a link is always safe (the API answers); only creating one needs the rules above.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videodrop import formats, logs
from videodrop.changes import (
    LINKS_CHANNEL,
    AllChanged,
    ChangeListener,
    LinkChanged,
    Listening,
)
from videodrop.settings import Settings
from videodrop.storage import FileStore, MediaStore, local_root
from videodrop.storage import from_settings as storage_of

CHANNEL = LINKS_CHANNEL  # NOTIFY payload: the old token, or '*' (table truncated)
EVERYTHING = "*"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_LINK = re.compile(r"([A-Za-z0-9_-]{16,128})\.([a-z0-9]+)")
_TEMPORARY = ".new-"  # a link being made (:meth:`StreamLinks.add`)
STRAY_SECONDS = 60.0  # a temporary this old is left over from an interrupted add


@dataclass(frozen=True)
class Target:
    """What a link needs from a row."""

    token: str
    path: Path  # absolute: the stored file
    extension: str


def target_of(token: str | None, stored_path: str, fmt: str | None, original_filename: str,
              media_root: Path) -> Target | None:
    """The link of a ready row, or None when nginx must not serve it alone (no token, a
    token of another shape, a file of no known container: the API answers those)."""
    if not token or not _TOKEN.fullmatch(token):
        return None
    container = formats.served_as(fmt, original_filename)
    if container is None:
        return None
    return Target(token, Path(os.path.abspath(media_root / stored_path)), container.key)


def from_settings(settings: Settings, media: MediaStore | None = None) -> StreamLinks | None:
    """The link folder of ``VIDEODROP_STREAM_LINKS`` pointing into the folder of ``media``
    (default: the store the settings name), or None when it is not set. The links point at
    local files: on a store without them (s3) the setting is ignored, with a warning (the
    API serves ``/stream/`` itself: a redirect or a proxy, docs/storage.md)."""
    if settings.stream_links is None:
        return None
    store = media if media is not None else storage_of(settings)
    if not isinstance(store, FileStore):
        logs.get("videodrop.links").warning(
            "VIDEODROP_STREAM_LINKS is ignored: stream links point at local files and"
            " this store has none; the API serves /stream/", store=store.describe())
        return None
    return StreamLinks(settings.stream_links, local_root(store))


class StreamLinks:
    """The link folder. Only the file system here; when to call what is the catalog's."""

    def __init__(self, root: Path, media_root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.media_root = Path(os.path.abspath(media_root))

    def target(self, row: Mapping[str, Any]) -> Target | None:
        """The link of a ready row (``access_token``, ``stored_path``, ``format``,
        ``original_filename``, and ``rendition``: its ready browser rendition's file, which
        ``/stream/`` serves instead of the original, or None; ``awaits_viewer``: true
        when its transcode waits for someone to watch). None when it has no link: a row
        awaiting a viewer is served by the API, whose ``/stream/`` asks for the transcode
        (nginx answering alone would never start it)."""
        if row.get("awaits_viewer"):
            return None
        rendition = row.get("rendition")
        if rendition:
            fmt = "webm" if rendition.endswith(".webm") else "mp4"
            return target_of(row["access_token"], rendition, fmt, rendition, self.media_root)
        return target_of(row["access_token"], row["stored_path"], row["format"],
                         row["original_filename"], self.media_root)

    def _shard(self, token: str) -> Path:
        return self.root / token[:2]

    def _path(self, target: Target) -> Path:
        return self._shard(target.token) / f"{target.token}.{target.extension}"

    def add(self, target: Target) -> None:
        """Create (or replace) the link atomically: a new link under a temporary name,
        renamed over the final one; then the token's links of other extensions go (the
        original's once its browser rendition is linked, and back)."""
        if self.is_current(target):
            return
        shard = self._shard(target.token)
        shard.mkdir(parents=True, exist_ok=True)
        temporary = shard / f"{_TEMPORARY}{secrets.token_hex(8)}"
        os.symlink(target.path, temporary)
        try:
            os.replace(temporary, self._path(target))
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        for extension in formats.BY_KEY:  # one link a token: a rendition's replaces the original's
            if extension != target.extension:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(shard / f"{target.token}.{extension}")

    def remove(self, token: str) -> None:
        """Remove every link of ``token`` (one per container at most); missing is fine."""
        if not _TOKEN.fullmatch(token):
            return
        shard = self._shard(token)
        for extension in formats.BY_KEY:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(shard / f"{token}.{extension}")

    def is_current(self, target: Target) -> bool:
        """The link of ``target`` is in place and points at its file."""
        try:
            return os.readlink(self._path(target)) == str(target.path)
        except OSError:
            return False

    def shards(self) -> Iterator[list[tuple[str, Path]]]:
        """The links of the folder, a shard at a time: (token, link path) pairs. Strays are
        removed on the way: non-links, and temporaries of an interrupted :meth:`add` (older
        than :data:`STRAY_SECONDS`: a younger one may be an :meth:`add` under way)."""
        try:
            shards = sorted(e.path for e in os.scandir(self.root)
                            if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return
        for shard in shards:
            links: list[tuple[str, Path]] = []
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(shard):
                    m = _LINK.fullmatch(entry.name)
                    if m and entry.is_symlink():
                        links.append((m.group(1), Path(entry.path)))
                    elif self._is_stray(entry):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
            yield links

    @staticmethod
    def _is_stray(entry: os.DirEntry[str]) -> bool:
        """An entry of a shard that is no stream link: anything but a temporary link
        (``.new-``), and a temporary link older than STRAY_SECONDS (its maker died)."""
        if not entry.name.startswith(_TEMPORARY):
            return True
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return False
        return age > STRAY_SECONDS

    def remove_all(self) -> int:
        return sum(self.prune(links, {}) for links in self.shards())

    def prune(self, links: list[tuple[str, Path]], valid: dict[str, Target]) -> int:
        """Remove those of ``links`` that are not the link of ``valid[token]``: how many."""
        removed = 0
        for token, path in links:
            target = valid.get(token)
            if target is None or path != self._path(target) or not self.is_current(target):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed


class LinkRemover:
    """The stream links' subscriber of ``videodrop.changes``: removes the link of a row
    changed around the catalog (:class:`~videodrop.changes.LinkChanged`; every link on
    :class:`~videodrop.changes.AllChanged`), and once the listener is back from an outage
    (``Listening(resumed=True)``) the links of rows changed meanwhile (``prune``:
    ``Catalog.prune_links``, returning how many it removed). A link it cannot remove is
    logged (``videodrop links`` puts the folder back in step)."""

    def __init__(self, links: StreamLinks, prune: Callable[[], int], log: Any) -> None:
        self.links = links
        self.prune = prune
        self.log = log

    def subscribe(self, listener: ChangeListener) -> None:
        listener.subscribe(LinkChanged, self.remove_link)
        listener.subscribe(AllChanged, self.remove_every_link)
        listener.subscribe(Listening, self.prune_after_outage)

    def remove_link(self, event: LinkChanged) -> None:
        self._remove_or_warn(lambda: self.links.remove(event.token))

    def remove_every_link(self, event: AllChanged) -> None:
        self._remove_or_warn(self.links.remove_all)

    def _remove_or_warn(self, remove: Callable[[], object]) -> None:
        """Run ``remove``; an OSError is logged as a warning naming ``videodrop links``."""
        try:
            remove()
        except OSError as exc:
            self.log.warning("stream link not removed: run 'videodrop links'", error=str(exc))

    def prune_after_outage(self, event: Listening) -> None:
        if not event.resumed:
            return
        try:
            removed = self.prune()
        except Exception as exc:  # the database again, or the folder: the operator's turn
            self.log.warning("stream links not checked after the listener's outage: run"
                             " 'videodrop links'", error=str(exc).strip())
            return
        self.log.info("stream links checked after the listener's outage", removed=removed)


__all__ = ["CHANNEL", "EVERYTHING", "LinkRemover", "StreamLinks", "Target", "from_settings",
           "target_of"]
