"""The message contract between the roles: one JSON object per message, versioned."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

VERSION = 1


class BadMessage(ValueError):
    """A message we cannot understand: it goes to the dead-letter queue, not back."""


@dataclass(frozen=True)
class InboxFile:
    """A settled file in the inbox. The claim key makes re-publishing harmless."""

    path: str  # relative to the inbox, '/'-separated
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    kind: str = "inbox"


@dataclass(frozen=True)
class ProbeVideo:
    """A row whose stored file should be probed (uploads, requeues)."""

    video_id: int
    force: bool = False  # probe again even when the row is already ready or failed
    kind: str = "video"


Message = InboxFile | ProbeVideo


def encode(msg: Message) -> bytes:
    return json.dumps({"v": VERSION, **asdict(msg)}, separators=(",", ":")).encode()


def decode(body: bytes) -> Message:
    try:
        data: dict[str, Any] = json.loads(body)
        if not isinstance(data, dict):
            raise BadMessage("a message is a JSON object")
        if data.get("v") != VERSION:
            raise BadMessage(f"unknown message version: {data.get('v')!r}")
        kind = data.get("kind")
        if kind == "inbox":
            path = data["path"]
            if not isinstance(path, str) or path.startswith("/") or ".." in path.split("/"):
                raise BadMessage(f"unsafe path in message: {path!r}")
            return InboxFile(path=path, dev=int(data["dev"]), ino=int(data["ino"]),
                             size=int(data["size"]), mtime_ns=int(data["mtime_ns"]),
                             ctime_ns=int(data["ctime_ns"]))
        if kind == "video":
            return ProbeVideo(video_id=int(data["video_id"]), force=bool(data.get("force")))
        raise BadMessage(f"unknown message kind: {kind!r}")
    except BadMessage:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise BadMessage(f"malformed message: {exc}") from exc
