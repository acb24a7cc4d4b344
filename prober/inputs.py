"""What a probe reads: a local file, or an object of the media store read where it lies.

A :class:`ProbeInput` gives ffprobe its input argument and the protocols that argument
needs (``-protocol_whitelist``: ``file`` for a local file; ``http,https,tcp,tls`` for a
presigned URL of an S3 object, for that child only), and gives the probe's own reads
(the first bytes, ISO BMFF box headers, an audio frame header) by offset: ``pread`` on a
file, a ranged GET on an object. Never a full local copy of an object.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from videodrop.storage import MediaStore

__all__ = ["OBJECT_PROTOCOLS", "ProbeInput", "as_input"]

#: What ffprobe may open to read a presigned URL (and TLS under https).
OBJECT_PROTOCOLS = ("http", "https", "tcp", "tls")


@dataclass(frozen=True)
class ProbeInput:
    """One input: ``name`` (the file's name: its extension counts), ``size`` in bytes,
    ``target`` (ffprobe's input argument: ``file:/abs/path`` or a URL), ``protocols``
    (what that argument needs opened) and ``read_at(offset, length) -> bytes`` (fewer
    bytes only at the end; OSError or the store's errors when it cannot be read)."""

    name: str
    size: int
    target: str
    protocols: tuple[str, ...]
    read_at: Callable[[int, int], bytes]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @classmethod
    def of_file(cls, path: Path | str) -> ProbeInput:
        """The local file at ``path`` (``file:`` keeps names like ``cam1:front.mp4`` or
        ``-x.mp4`` from being read as a protocol or an option). OSError when it cannot be
        looked at."""
        path = Path(path)
        size = path.stat().st_size
        return cls(path.name, size, "file:" + str(path), ("file",), _FileReads(path).read_at)

    @classmethod
    def of_object(cls, store: MediaStore, key: str, expires: float) -> ProbeInput:
        """The object ``key`` of ``store``, read where it lies: ffprobe through
        ``store.input_url(key, expires)`` (a presigned URL on s3, ``file:`` on the file
        store), the probe's own reads as ranged reads. ``expires``: seconds the URL lives,
        at least the probe's deadline. :class:`~videodrop.storage.ObjectMissing`."""
        size = store.stat(key).size
        url = store.input_url(key, expires)
        protocols = ("file",) if url.startswith("file:") else OBJECT_PROTOCOLS

        def read_at(offset: int, length: int) -> bytes:
            if offset >= size or length <= 0:
                return b""
            reader = store.open(key, offset, min(length, size - offset))
            try:
                return reader.read()
            finally:
                reader.close()
        return cls(key.rsplit("/", 1)[-1], size, url, protocols, read_at)


class _FileReads:
    """Reads by offset from one descriptor of a file, opened at the first read (a box
    walk of a file of many boxes opens it once) and closed when the last reference goes
    (``pread``: the probe's threads may read at once)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def read_at(self, offset: int, length: int) -> bytes:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            fd = self._fd
        return os.pread(fd, length, offset)

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def as_input(source: ProbeInput | Path | str) -> ProbeInput:
    """``source`` as a :class:`ProbeInput` (a path: the local file there)."""
    return source if isinstance(source, ProbeInput) else ProbeInput.of_file(source)
