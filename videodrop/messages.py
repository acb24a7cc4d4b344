"""The message contract between the roles: one JSON object per message, versioned.

An inbox file's ``path`` is text (valid UTF-8, for people and logs); when the name on disk
is not UTF-8, ``path_b64`` carries its bytes (base64) and is what the prober opens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from videodrop import media

VERSION = 1


class BadMessage(ValueError):
    """A message we cannot understand: it goes to the dead-letter queue, not back."""


@dataclass(frozen=True)
class InboxFile:
    """A settled file in the inbox, and the claim key of its row: what makes a
    watch-folder file the same file under the same name. A re-published or redelivered
    message for the same name of the same file lands on the same row; two names of one
    inode (hard links) are two videos.

    ``dev``, ``ino``, ``size`` (bytes), ``mtime_ns`` and ``ctime_ns`` (ns since 1970) are
    the file's ``lstat`` as the ingest saw it when it settled.

    Beside the key, not part of it (videodrop/inboxid.py): ``inbox``, the identity of the
    publishing ingest's inbox, and ``inbox_dev``, that inbox folder's device number on the
    ingest's host (empty and 0 in messages of earlier versions); ``local_dev``, never sent,
    is the device number this host's prober sees the file on (:meth:`seen_from`)."""

    path: str  # relative to the inbox, '/'-separated; os.fsdecode of the bytes on disk
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    kind: str = "inbox"
    inbox: str = field(default="", compare=False)
    inbox_dev: int = field(default=0, compare=False)
    local_dev: int = field(default=0, compare=False)

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> InboxFile:
        """The file at the inbox-relative ``path`` (as in :attr:`path`) whose ``lstat`` is
        ``st``."""
        return cls(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def from_inbox(self, identity: str, dev: int) -> InboxFile:
        """This message stamped with its inbox's ``identity`` and device number ``dev``
        (the ingest's view), as it is published."""
        return replace(self, inbox=identity, inbox_dev=dev)

    def foreign_to(self, identity: str) -> bool:
        """The message names a file of another inbox than the one whose identity is
        ``identity`` (empty: an inbox no ingest stamped). False for an unstamped message."""
        return bool(self.inbox) and self.inbox != identity

    def seen_from(self, dev: int) -> InboxFile:
        """This message as a prober whose inbox folder has the device number ``dev``
        compares it with the file (:attr:`stat_dev`): a file on the inbox's own file
        system, as the ingest saw it, is on ``dev`` here."""
        if self.inbox_dev and self.dev == self.inbox_dev and dev != self.inbox_dev:
            return replace(self, local_dev=dev)
        return self

    @property
    def stat_dev(self) -> int:
        """The device number the file has on this host (the key's ``dev`` unless
        :meth:`seen_from` says otherwise)."""
        return self.local_dev or self.dev

    @property
    def raw_path(self) -> bytes:
        """The path as the file system spells it (any bytes but NUL)."""
        return os.fsencode(self.path)

    def at(self, ctime_ns: int) -> InboxFile:
        """The same name and file with another ctime (removing another name of an inode
        moves the ctime of the rest)."""
        return replace(self, ctime_ns=ctime_ns)

    @property
    def lock_id(self) -> int:
        """A signed 32-bit number for an advisory lock of this name of this inode."""
        digest = hashlib.blake2b(b"%d:%d:" % (self.dev, self.ino) + self.raw_path,
                                 digest_size=4)
        return int.from_bytes(digest.digest(), "big", signed=True)


@dataclass(frozen=True)
class ProbeVideo:
    """A row whose stored file should be probed (uploads, requeues)."""

    video_id: int
    force: bool = False  # probe again even when the row is already ready or failed
    kind: str = "video"


@dataclass(frozen=True)
class DeriveVideo:
    """Make the pending derivatives of a ready video (queue ``<prefix>.derive``): those of
    ``kinds`` (names of videodrop/derivatives.py KINDS) whose rows are still pending."""

    video_id: int
    kinds: tuple[str, ...] = ()
    kind: str = "derive"


Message = InboxFile | ProbeVideo | DeriveVideo


def routing_key(msg: Message) -> str:
    """The queue a message goes to: ``derive`` for derive jobs, ``probe`` for the rest."""
    return "derive" if isinstance(msg, DeriveVideo) else "probe"


def encode(msg: Message) -> bytes:
    data = {"v": VERSION, **asdict(msg)}  # the wire format: the fields, flat
    if isinstance(msg, InboxFile):
        del data["local_dev"]  # this host's own view
        if not msg.inbox:
            del data["inbox"], data["inbox_dev"]
        if (shown := media.display(msg.path)) != msg.path:
            data["path"] = shown
            data["path_b64"] = base64.b64encode(os.fsencode(msg.path)).decode("ascii")
    return json.dumps(data, separators=(",", ":")).encode()


def _inbox_path(data: dict[str, Any]) -> str:
    """The path to open: from ``path_b64`` when given, else ``path``; refused when it is
    absolute, climbs out (``..``) or holds a NUL."""
    if "path_b64" in data:
        try:
            raw = base64.b64decode(data["path_b64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise BadMessage(f"path_b64 is not base64: {exc}") from exc
    elif isinstance(data["path"], str):
        raw = os.fsencode(data["path"])
    else:
        raise BadMessage(f"path is not text: {data['path']!r}")
    if not raw or raw.startswith(b"/") or b"\0" in raw or b".." in raw.split(b"/"):
        raise BadMessage(f"unsafe path in message: {raw!r}")
    return os.fsdecode(raw)


def _inbox_id(data: dict[str, Any]) -> str:
    found = data.get("inbox", "")
    if not isinstance(found, str) or len(found) > 64:
        raise BadMessage(f"inbox is not an inbox identity: {found!r}"[:200])
    return found


def decode(body: bytes) -> Message:
    try:
        data: dict[str, Any] = json.loads(body)
        if not isinstance(data, dict):
            raise BadMessage("a message is a JSON object")
        if data.get("v") != VERSION:
            raise BadMessage(f"unknown message version: {data.get('v')!r}")
        kind = data.get("kind")
        if kind == "inbox":
            return InboxFile(path=_inbox_path(data), dev=int(data["dev"]), ino=int(data["ino"]),
                             size=int(data["size"]), mtime_ns=int(data["mtime_ns"]),
                             ctime_ns=int(data["ctime_ns"]), inbox=_inbox_id(data),
                             inbox_dev=int(data.get("inbox_dev", 0)))
        if kind == "video":
            return ProbeVideo(video_id=int(data["video_id"]), force=bool(data.get("force")))
        if kind == "derive":
            kinds = data.get("kinds", [])
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise BadMessage(f"kinds is not a list of names: {kinds!r}")
            return DeriveVideo(video_id=int(data["video_id"]), kinds=tuple(kinds))
        raise BadMessage(f"unknown message kind: {kind!r}")
    except BadMessage:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise BadMessage(f"malformed message: {exc}") from exc
