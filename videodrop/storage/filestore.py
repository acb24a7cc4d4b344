"""The ``file`` backend: objects are files under one root folder (``VIDEODROP_MEDIA_ROOT``).

A key ``a/b/c`` is the file ``<root>/a/b/c``. A put writes a temporary file beside its
destination, ``.<name>.<8 hex>.part`` (the name prober/store.py's copies use, so either
sweep removes the other's leftovers), fsyncs it, renames it into place and fsyncs the
folder: the object appears whole, durably, or not at all. Names starting with ``.`` are
never objects (they are temporaries: these parts, derive's ``.tmp-*`` scratch folders).

ETags are nginx's (``"<mtime seconds hex>-<size hex>"``), the validator the API and nginx
already send for stored files, so moving the reads onto this interface changes no client's
cache. A stored file is never rewritten in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from videodrop import logs, media
from videodrop.storage.base import (
    CHUNK,
    MediaStore,
    ObjectInfo,
    ObjectReader,
    ReaderBase,
    Stored,
    Verifier,
    check_key,
    check_prefix,
)
from videodrop.storage.errors import ObjectMissing, StorageFull, StoreUnavailable

__all__ = ["FileStore", "file_etag"]

_PART = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.part")
_TRANSIENT = {errno.EACCES, errno.EPERM, errno.EIO, errno.EROFS, errno.EBUSY, errno.ENOMEM,
              errno.ESTALE, errno.ENOTCONN}

log = logs.get("videodrop.storage")


def file_etag(st: os.stat_result) -> str:
    """The strong ETag of a stored file: ``"<mtime seconds hex>-<size hex>"`` (nginx's)."""
    return f'"{st.st_mtime_ns // 1_000_000_000:x}-{st.st_size:x}"'


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """OSError → the store's typed errors (FileNotFoundError is left to the caller)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"media store full: {what}") from exc
        if exc.errno in _TRANSIENT:
            raise StoreUnavailable(f"media store: {what}: {exc.strerror}") from exc
        raise


class _RangeReader(ReaderBase):
    """At most ``remaining`` bytes of an open file, from its current offset."""

    def __init__(self, fh: BinaryIO, remaining: int) -> None:
        self._fh = fh
        self._remaining = remaining

    def read(self, size: int = -1, /) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._fh.read(want)
        self._remaining -= len(data)
        return data

    def fileno(self) -> int:
        """The file's descriptor (for sendfile: gunicorn's ``wsgi.file_wrapper``)."""
        return self._fh.fileno()

    def close(self) -> None:
        self._fh.close()


class FileStore(MediaStore):
    """Objects as files under ``root`` (created when missing)."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def describe(self) -> str:
        return f"file://{self.root}"

    def check(self) -> None:
        with _os_errors(f"cannot create {self.root}"):
            self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"media store {self.root} is not writable")

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_stream(self, key: str, source: BinaryIO, *, size: int | None = None,
                   sha256: str | None = None) -> Stored:
        dst = self._path(key)
        verifier = Verifier(size, sha256)
        with _os_errors(f"cannot store {key}"):
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part")
            try:
                with open(tmp, "xb") as out:
                    while data := source.read(CHUNK):
                        verifier.update(data)
                        out.write(data)
                    digest = verifier.check()
                    out.flush()
                    os.fsync(out.fileno())
                os.rename(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
            media.fsync_dir(dst.parent)
            st = os.stat(dst)
        return Stored(key, st.st_size, digest, file_etag(st))

    def open(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        path = self._path(key)
        try:
            with _os_errors(f"cannot read {key}"):
                fh = open(path, "rb")  # noqa: SIM115 - the reader owns it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectMissing(key) from None
        try:
            total = os.fstat(fh.fileno()).st_size
            end = total if length is None else start + length
            if start < 0 or end < start or end > total:
                raise ValueError(f"range {start}+{length} is not within {key}'s {total} bytes")
            fh.seek(start)
        except BaseException:
            fh.close()
            raise
        return _RangeReader(fh, end - start)

    def stat(self, key: str) -> ObjectInfo:
        try:
            with _os_errors(f"cannot stat {key}"):
                st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectMissing(key) from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectMissing(key)
        return ObjectInfo(key, st.st_size, file_etag(st), st.st_mtime)

    def presign(self, key: str, expires: float | None = None, *,
                content_type: str | None = None, disposition: str | None = None
                ) -> str | None:
        check_key(key)
        return None

    def input_url(self, key: str, expires: float) -> str:
        return "file:" + str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            with _os_errors(f"cannot delete {key}"):
                path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        self._prune_empty(path.parent)
        return True

    def delete_prefix(self, prefix: str) -> int:
        if not check_prefix(prefix):
            raise ValueError("delete_prefix('') would empty the whole store")
        if prefix.endswith("/"):
            folder = self.root / prefix.rstrip("/")
            count = sum(1 for _ in self.list_objects(prefix))
            with _os_errors(f"cannot delete {prefix}"), contextlib.suppress(FileNotFoundError):
                shutil.rmtree(folder)
            self._prune_empty(folder.parent)
            return count
        return sum(1 for info in list(self.list_objects(prefix)) if self.delete(info.key))

    def _prune_empty(self, folder: Path) -> None:
        """Remove ``folder`` and its parents up to the root while they are empty."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        start = self.root / head if head else self.root
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append(ObjectInfo(key, st.st_size, file_etag(st), st.st_mtime))
        found.sort(key=lambda info: info.key.encode("utf-8", "surrogateescape"))
        return iter(found)

    def abort_stale_uploads(self, older_than: float, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        start = self.root / head if head else self.root
        now = time.time()
        removed: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                found = _PART.fullmatch(name)
                if not found:
                    continue
                path = Path(dirpath, name)
                key = str(path.with_name(found["name"]).relative_to(self.root))
                if not key.startswith(prefix):
                    continue
                try:
                    st = path.lstat()
                    if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                log.info("stale upload removed", key=key, age_s=round(now - st.st_mtime))
                removed.append(key)
        return removed

