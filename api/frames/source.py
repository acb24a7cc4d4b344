"""What the frame and clip children read: the stored original, as an :class:`Original`
that gives a child its input URL and the options that URL needs.

- On the file store: ``file:/abs/path``, the ``file`` protocol and the accepted demuxers
  only, as ever.
- On s3: a presigned ``http:``/``https:`` URL of the object (``MediaStore.input_url``),
  read by the child with ranged GETs (its seeks), never copied whole to this machine; its
  protocols (:data:`REMOTE_PROTOCOLS`) are allowed for that input only
  (``-protocol_whitelist`` is an input option). Deadlines and resource limits unchanged.

A presigned URL is made afresh at each :meth:`Original.url` (a local signature, no
request) and lives at least :data:`URL_LIFETIME` seconds and twice the deadline of the
child that gets it. It is a capability: it appears in a child's arguments (or a decoding
child's request) only, never in an error sentence or a log line (:func:`redacted`).

This module imports nothing heavy: the decoding child (api/frames/decoder.py) uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from videodrop.formats import DEMUXERS
from videodrop.storage import redact_urls as redacted

if TYPE_CHECKING:
    from videodrop.storage import MediaStore

__all__ = ["REMOTE_PROTOCOLS", "URL_LIFETIME", "Original", "input_options", "redacted"]

#: The protocols a child may use for a presigned URL of the store: HTTP(S) over TCP/TLS.
REMOTE_PROTOCOLS = "http,https,tcp,tls"
#: Seconds a presigned URL given to a child lives at least.
URL_LIFETIME = 900.0


def input_options(protocols: str) -> list[str]:
    """The options of one media input: ``protocols`` (comma-separated) and the accepted
    demuxers only."""
    return ["-protocol_whitelist", protocols, "-format_whitelist", ",".join(sorted(DEMUXERS))]



@dataclass(frozen=True)
class Original:
    """The stored original ``key`` of ``media``: its local file ``path`` (the file store),
    or None (s3: read through a presigned URL); ``stamp`` tells one version of the object
    from another (s3: its size and ETag; None on the file store, whose children stat the
    file)."""

    key: str
    path: Path | None
    media: MediaStore | None = None
    stamp: tuple[int, str] | None = None

    @classmethod
    def of_file(cls, path: Path) -> Original:
        """A local file (tests and bench/ pass one)."""
        return cls(str(path), Path(path))

    @property
    def remote(self) -> bool:
        return self.path is None

    @property
    def protocols(self) -> str:
        return REMOTE_PROTOCOLS if self.path is None else "file"

    def url(self, lifetime: float = URL_LIFETIME) -> str:
        """The child's input: ``file:/abs/path``, or a presigned URL living ``lifetime``
        seconds (at least :data:`URL_LIFETIME`)."""
        if self.path is not None:
            return f"file:{self.path}"
        assert self.media is not None
        return self.media.input_url(self.key, max(URL_LIFETIME, lifetime))

    def remote_input(self, lifetime: float) -> tuple[str, float]:
        """(a presigned URL, the wall-clock time it expires, ``time.time()``)."""
        lifetime = max(URL_LIFETIME, lifetime)
        expires = time.time() + lifetime
        return self.url(lifetime), expires

    def ffmpeg_input(self, deadline_left: float) -> list[str]:
        """This input's options and ``-i`` for a child done within ``deadline_left`` s."""
        return [*input_options(self.protocols), "-i", self.url(2 * deadline_left)]


def as_original(given: Path | Original) -> Original:
    """``given`` as an :class:`Original` (a path: a local file)."""
    return given if isinstance(given, Original) else Original.of_file(Path(given))
