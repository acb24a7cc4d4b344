"""The media store's interface: what every backend (``file``, ``s3``) promises.

Keys are relative, ``/``-separated paths such as ``videos/<source_id>/<name>`` or
``derivatives/<source_id>/poster.jpg``: no empty segment, no ``.`` or ``..`` segment, no
segment starting with ``.`` (those names are the backends' own temporaries), no NUL or
control character, at most 1024 bytes in UTF-8 (:func:`check_key`). A backend maps a key
to its own place (a path under the root, an S3 key under the prefix) and never lets a key
escape it.

Guarantees of every backend:

- **Atomic puts.** :meth:`MediaStore.put_stream` and :meth:`MediaStore.put_file` make the
  object visible whole or not at all: a reader, a :meth:`~MediaStore.stat` or a
  :meth:`~MediaStore.list_objects` never sees half an object, even when the putting process is
  killed (SIGKILL) mid-way. What a killed put leaves behind (a file store's temporary file,
  an S3 multipart upload) is invisible to readers and is removed by
  :meth:`~MediaStore.abort_stale_uploads`.
- **Verified puts.** The bytes are hashed (SHA-256) and counted while they stream; when the
  caller announces ``size`` and/or ``sha256`` and the source gives other bytes (shorter,
  longer, corrupted), the put is withdrawn (:class:`IntegrityFailure`) and nothing is
  visible. A put that returns has made the object durable (fsync'd and renamed, or the
  store acknowledged the completed upload).
- **Bounded memory.** A put holds at most a few parts in memory (the s3 backend's
  ``part_size`` x in-flight parts), whatever the object's size.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, Self

from videodrop.storage.errors import IntegrityFailure, ObjectMissing

__all__ = [
    "CHUNK",
    "MAX_PRESIGN_SECONDS",
    "STALE_UPLOAD_SECONDS",
    "MediaStore",
    "ObjectInfo",
    "ObjectReader",
    "ReaderBase",
    "Stored",
    "Verifier",
    "check_key",
    "check_prefix",
    "read_chunks",
    "redact_urls",
]

#: Bytes read from a source or a store at a time.
CHUNK = 1 << 20
#: SigV4's longest presigned URL (7 days); :meth:`MediaStore.presign` refuses more.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str) -> str:
    """``key`` when it is a valid object key (see the module docstring), else ValueError."""
    if not key or len(key.encode("utf-8", "surrogatepass")) > 1024:
        raise ValueError(f"an object key is 1 to 1024 bytes: {key!r}")
    if _BAD_CHARS.search(key):
        raise ValueError(f"an object key holds no control character: {key!r}")
    for part in key.split("/"):
        if not part or part.startswith("."):
            raise ValueError(f"an object key has no empty, '.' or '..' segment and no segment"
                             f" starting with '.': {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is ``""`` or a key's beginning (``videos/abc/`` or ``videos/ab``),
    else ValueError. A prefix matches keys by their first characters, as S3's does."""
    if prefix == "":
        return prefix
    check_key(prefix.removesuffix("/") or "x")
    return prefix


@dataclass(frozen=True)
class Stored:
    """What a put made: the key, its size in bytes, its SHA-256 (64 lowercase hex digits)
    and the store's ETag (quoted, as HTTP sends it)."""

    key: str
    size: int
    sha256: str
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    """An object as the store describes it: size in bytes, ETag (quoted, a strong
    validator of these bytes) and the last modification as seconds since the epoch."""

    key: str
    size: int
    etag: str
    mtime: float


class ObjectReader(Protocol):
    """The bytes of an object, or of a range of it, as a readable stream: ``read(n)``
    returns up to ``n`` bytes (``b""`` at the end), ``close()`` releases the file or the
    connection. Usable as falcon's ``resp.stream``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class ReaderBase:
    """What the backends' readers share: ``with reader:`` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Verifier:
    """Counts and hashes bytes as they pass; :meth:`check` compares them with what was
    announced."""

    def __init__(self, size: int | None, sha256: str | None) -> None:
        if size is not None and size < 0:
            raise ValueError("size is a byte count, 0 or more")
        if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("sha256 is 64 lowercase hex digits")
        self.expected_size = size
        self.expected_sha256 = sha256
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise IntegrityFailure(f"the source holds more than the {self.expected_size}"
                                   " bytes announced")
        self._hash.update(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def check(self) -> str:
        """The SHA-256 of what passed; :class:`IntegrityFailure` when the size or the
        hash differs from what was announced."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise IntegrityFailure(f"the source gave {self.size} bytes,"
                                   f" {self.expected_size} were announced")
        digest = self.sha256
        if self.expected_sha256 is not None and digest != self.expected_sha256:
            raise IntegrityFailure(f"the source's SHA-256 is {digest},"
                                   f" {self.expected_sha256} was announced")
        return digest


class MediaStore(abc.ABC):
    """One media store. Thread-safe: one instance serves every thread of a process.
    Every method may raise :class:`~videodrop.storage.errors.StoreUnavailable`
    (transient) or :class:`~videodrop.storage.errors.StoreRefused` besides what it
    names; ValueError for an invalid key."""

    #: ``"file"`` or ``"s3"``.
    scheme: str
    #: How long the URLs :meth:`presign` gives by default live, in seconds (≤ 60).
    presign_seconds: float = 60.0

    @abc.abstractmethod
    def put_stream(self, key: str, source: BinaryIO, *, size: int | None = None,
                   sha256: str | None = None) -> Stored:
        """Store what ``source.read()`` gives until it returns ``b""`` under ``key``
        (replacing an object there atomically). ``size`` / ``sha256``: what the caller
        expects; other bytes → :class:`IntegrityFailure` and nothing visible."""

    def put_file(self, key: str, path: Path, *, size: int | None = None,
                 sha256: str | None = None) -> Stored:
        """:meth:`put_stream` of the file at ``path`` (left in place). OSError when it
        cannot be opened."""
        with open(path, "rb") as fh:
            return self.put_stream(key, fh, size=size, sha256=sha256)

    @abc.abstractmethod
    def open(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        """The bytes ``[start, start + length)`` of the object (to its end when ``length``
        is None). The range must lie within the object (the caller parsed Range against
        :meth:`stat`'s size); ValueError otherwise. :class:`ObjectMissing`."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The object's size, ETag and mtime. :class:`ObjectMissing`."""

    def exists(self, key: str) -> bool:
        """Whether an object is under ``key``."""
        try:
            self.stat(key)
        except ObjectMissing:
            return False
        return True

    @abc.abstractmethod
    def presign(self, key: str, expires: float | None = None, *,
                content_type: str | None = None, disposition: str | None = None
                ) -> str | None:
        """A URL that lets anyone holding it GET the object (Range requests included) for
        ``expires`` seconds (the store's default, at most 60 s, when None), without other
        credentials: what ``/download/`` and ``/stream/`` redirect to; the answers carry
        ``content_type`` and ``disposition`` (a ``Content-Disposition`` value) when given.
        None from a store that has no URLs (the file store: the API serves
        :meth:`local_path` itself). Does not check that the object exists."""

    @abc.abstractmethod
    def input_url(self, key: str, expires: float) -> str:
        """Where ffprobe/ffmpeg read the object from, for a child that lives at most
        ``expires`` seconds: ``file:/abs/path`` on the file store; on s3 a presigned
        ``http:``/``https:`` URL valid for ``expires`` seconds, read with ranged GETs
        (seeks), so the runner must allow the ``http``/``https``/``tcp``(/``tls``)
        protocols for that child only (``-protocol_whitelist``) and keep its deadline
        within ``expires``. Never a full local copy."""

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """The object's file on this machine (the file store), for sendfile and
        X-Accel-Redirect; None on a store without local files."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object; True when there was one. Missing is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (``videos/<id>/``, the
        derivatives of a video); returns how many. ``""`` is refused (ValueError): no
        call empties the whole store."""

    @abc.abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every visible object whose key starts with ``prefix``, by key in byte order
        (for orphan sweeps). Temporaries and unfinished uploads are not listed."""

    @abc.abstractmethod
    def abort_stale_uploads(self, older_than: float, prefix: str = "") -> list[str]:
        """Withdraw what puts that died left under ``prefix`` (a file store's temporary
        files, S3 multipart uploads) started more than ``older_than`` seconds ago, with
        one log line each; returns their keys. A put still running is younger than any
        sensible ``older_than`` (an hour: :data:`STALE_UPLOAD_SECONDS`)."""

    def describe(self) -> str:
        """Where the store is, for logs and health (no credentials)."""
        return self.scheme

    @abc.abstractmethod
    def check(self) -> None:
        """The store answers and takes our writes (a process's start, health):
        :class:`StoreUnavailable` or :class:`StoreRefused` otherwise."""


#: The default age after which :meth:`MediaStore.abort_stale_uploads` withdraws a put.
STALE_UPLOAD_SECONDS = 3600.0

#: A store built for serving (the API: ``from_settings(..., serving=True)``) waits at most
#: this many seconds for a store that hangs before its call fails (StoreUnavailable: a
#: 503), per call: :data:`SERVING_ATTEMPTS` tries of :data:`SERVING_READ_TIMEOUT` seconds
#: and a 5 s connect each. The roles' patient client waits 4 tries of 60 s: a request
#: thread held that long is a worker's thread lost to everyone else.
SERVING_READ_TIMEOUT = 10.0
SERVING_ATTEMPTS = 2
SERVING_DEADLINE = SERVING_ATTEMPTS * (5.0 + SERVING_READ_TIMEOUT)


def read_chunks(reader: ObjectReader, chunk: int = CHUNK) -> Iterator[bytes]:
    """The reader's bytes in chunks of up to ``chunk`` bytes; closes it at the end."""
    try:
        while data := reader.read(chunk):
            yield data
    finally:
        reader.close()


#: A URL as a child (ffprobe, ffmpeg) prints it: up to a blank, a quote, or the ": " of
#: its error lines.
_URL = re.compile(r"(?:https?|tls|tcp)://[^\s'\"]*?(?=:?(?:\s|$|['\"]))")


def redact_urls(text: str) -> str:
    """``text`` with every URL replaced by ``<stored video>``: a presigned URL
    (:meth:`MediaStore.input_url`) is a credential, and a child reading one echoes it in
    its errors and logs; what a child said is stored or logged only through this."""
    return _URL.sub("<stored video>", text)
