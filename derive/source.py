"""What an ffmpeg or ffprobe child of the derive role reads: the stored original, as a
:class:`Source` that gives the child's input URL and the protocols that URL needs.

- On the file store (and for a bare :class:`~pathlib.Path`, as tests and bench/ pass):
  ``file:/abs/path`` and the ``file`` protocol only, as ever.
- On an object store (s3): a presigned ``http:``/``https:`` URL of the object
  (``MediaStore.input_url``), read by the child with ranged GETs (its seeks) and never
  copied whole to this machine; its protocols are :data:`REMOTE_PROTOCOLS`, allowed for that
  input only (``-protocol_whitelist`` is an input option), with the child's deadline and
  resource limits unchanged (videodrop/children.py).

A presigned URL is made afresh at each :meth:`Source.url` call (a local signature, no
request) and lives ``lifetime`` seconds: the caller gives at least twice the longest
deadline a child of the job may get (a poster's last child may reuse the arguments of an
earlier pass), so no child outlives its URL. The URL is a capability: it appears in the
child's arguments only, never in a log line or a row (:func:`redacted`).
"""

from __future__ import annotations

from pathlib import Path

from videodrop.storage import MediaStore, ObjectMissing, redact_urls

__all__ = ["REMOTE_PROTOCOLS", "LocalFile", "Source", "StoredObject", "as_source", "redacted"]

#: The protocols a child may use for a presigned URL of the store: HTTP(S) over TCP/TLS.
REMOTE_PROTOCOLS = "http,https,tcp,tls"


class Source:
    """The stored original as a child reads it: :meth:`url` (its ``-i``),
    :attr:`protocols` (its ``-protocol_whitelist``), :attr:`size` (bytes) and
    :meth:`head` (its first bytes)."""

    protocols: str
    remote: bool = False

    @property
    def size(self) -> int:
        """Bytes."""
        raise NotImplementedError

    def url(self) -> str:
        raise NotImplementedError

    def head(self, count: int) -> bytes:
        """The first ``count`` bytes (fewer when shorter; b"" when it cannot be read)."""
        raise NotImplementedError

    def local_path(self) -> Path | None:
        """The file of this machine that holds it; None on an object store."""
        return None


class LocalFile(Source):
    """A file of this machine (``file:`` input). ``size`` is read when asked: OSError when
    the file is gone."""

    protocols = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def url(self) -> str:
        return f"file:{self.path}"

    def local_path(self) -> Path | None:
        return self.path

    def head(self, count: int) -> bytes:
        try:
            with self.path.open("rb") as f:
                return f.read(count)
        except OSError:
            return b""


class StoredObject(Source):
    """The object ``key`` of ``media`` (``size`` bytes, as its stat said): a ``file:`` URL
    on the file store, a presigned URL living ``lifetime`` seconds on s3."""

    def __init__(self, media: MediaStore, key: str, size: int, lifetime: float) -> None:
        self.media, self.key, self._size, self.lifetime = media, key, size, lifetime
        self.remote = media.local_path(key) is None
        self.protocols = REMOTE_PROTOCOLS if self.remote else "file"

    @property
    def size(self) -> int:
        return self._size

    def url(self) -> str:
        return self.media.input_url(self.key, self.lifetime)

    def local_path(self) -> Path | None:
        return self.media.local_path(self.key)

    def head(self, count: int) -> bytes:
        if self.size == 0:
            return b""
        try:
            reader = self.media.open(self.key, 0, min(count, self.size))
        except (ObjectMissing, ValueError):
            return b""
        try:
            return reader.read(count)
        finally:
            reader.close()


def as_source(given: Path | Source) -> Source:
    """``given`` as a :class:`Source` (a path: :class:`LocalFile`)."""
    return given if isinstance(given, Source) else LocalFile(Path(given))


def redacted(text: str) -> str:
    """``text`` with every URL (a presigned one is a credential) replaced by
    ``<stored video>``: what a child said, fit for a row's error and a log line
    (:func:`videodrop.storage.redact_urls`)."""
    return redact_urls(text)
