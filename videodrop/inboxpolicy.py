"""The inbox policy: which files of the inbox become videos. One implementation, applied
twice: by the ingest before anything is published, and by the prober when it claims a file
(a message queued under a wider policy, or a file that changed after the ingest saw it).
A refused file stays where it is, is logged ``refused`` with the reason, is counted
(``videodrop_ingest_files_refused_total{reason}`` / ``videodrop_prober_files_refused_total
{reason}``), and never becomes a row.

By name (before a file is even tracked): hidden and temporary names are passed over in
silence (``VIDEODROP_IGNORE_PATTERNS``: the writer renames them when done); a name whose
extension is not in ``VIDEODROP_INBOX_EXTENSIONS`` (default: every extension of
``videodrop/formats.py``) is refused. By size, once the file has settled: an empty file,
one over ``VIDEODROP_INBOX_MAX_FILE_SIZE`` when that is set, and a sparse one.

Sparse (``truncate -s 30G``, ``fallocate --dig-holes``): a file of at least
:data:`SPARSE_MIN_SIZE` bytes of which less than 1/:data:`SPARSE_RATIO` is really there, by
both measures: its allocated blocks (``st_blocks * 512``) and its data extents
(``SEEK_DATA``/``SEEK_HOLE``). Hashing and copying such a file costs its whole size for
bytes that are not there. The two measures together keep real files: a compressing file
system (btrfs, ZFS) allocates less than the size but reports data, not holes; one that
reports no blocks at all (some FUSE and network mounts) has no ``SEEK_HOLE`` either, so the
whole file counts as data; small files (inline data, tails packed into metadata) are below
the minimum size. Space reserved with ``fallocate`` counts as allocated.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from videodrop import formats, media
from videodrop.settings import Settings

#: The ingest's lock in the inbox folder (``ingest/lock.py``): never a file to take, list
#: or remove, whatever ``VIDEODROP_IGNORE_PATTERNS`` says.
INGEST_LOCK = ".videodrop-ingest.lock"
#: The prober's spool in the inbox on an s3 store (prober/spool.py): claimed files wait
#: there, on the inbox's file system, until their object is stored.
SPOOL = ".videodrop-spool"
#: The inbox's identity (videodrop/inboxid.py), and the prefix of its temporary names.
INBOX_ID = ".videodrop-inbox-id"
#: Files below this many bytes are never called sparse.
SPARSE_MIN_SIZE = 1 << 20
#: Sparse: less than 1/SPARSE_RATIO of the size allocated, and as data extents.
SPARSE_RATIO = 8


@dataclass(frozen=True)
class Refusal:
    """Why a file is not taken: ``code`` (a label of the metric, one of
    ``videodrop.metrics.REFUSAL_REASONS``) and ``reason`` (a sentence for the log)."""

    code: str
    reason: str


@dataclass(frozen=True)
class InboxPolicy:
    ignore: tuple[str, ...] = ()
    extensions: frozenset[str] = formats.EXTENSIONS
    max_size: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> InboxPolicy:
        return cls(settings.ignore_patterns, settings.inbox_extensions,
                   settings.inbox_max_file_size)

    def ignored(self, name: str) -> bool:
        """A hidden or temporary name: not a file yet, passed over without a word (and the
        ingest's own lock, :data:`INGEST_LOCK`, the prober's spool, :data:`SPOOL`, and the
        inbox's identity, :data:`INBOX_ID`, whatever the ignore patterns say)."""
        return (name in (INGEST_LOCK, SPOOL) or name.startswith(INBOX_ID)
                or media.is_ignored(name, self.ignore))

    def by_name(self, name: str) -> Refusal | None:
        if media.has_extension(name, self.extensions):
            return None
        extension = formats.extension_of(name)
        return Refusal("extension", (f"not a video: .{extension}" if extension else
                                     "not a video: no extension")
                       + " is not one of VIDEODROP_INBOX_EXTENSIONS")

    def by_size(self, size: int) -> Refusal | None:
        """For a settled file of ``size`` bytes."""
        if size == 0:
            return Refusal("empty", "empty file")
        if self.max_size is not None and size > self.max_size:
            return Refusal("too_large", f"{size} bytes, over VIDEODROP_INBOX_MAX_FILE_SIZE"
                                        f" ({self.max_size} bytes)")
        return None

    def by_file(self, fd: int) -> Refusal | None:
        """For the settled regular file open as ``fd`` (read-only): its size, then whether
        it is sparse. Reads no data; OSError from ``fstat``/``lseek`` propagates."""
        st = os.fstat(fd)
        return self.by_size(st.st_size) or sparse(fd, st)

    def by_path(self, path: str | os.PathLike[str]) -> Refusal | None:
        """:meth:`by_file` of the regular file at ``path``, opened without following a link
        or blocking on a FIFO; None when it cannot be opened (whoever reads it next says
        why) or is not a regular file any more."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self.by_file(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            return None
        finally:
            os.close(fd)


def may_be_sparse(size: int, blocks: int) -> bool:
    """Whether a file of ``size`` bytes and ``blocks`` 512-byte blocks allocated is worth
    opening to ask for its holes: False for every file :func:`sparse` would accept anyway."""
    return size >= SPARSE_MIN_SIZE and blocks * 512 * SPARSE_RATIO < size


def sparse(fd: int, st: os.stat_result) -> Refusal | None:
    """A ``sparse`` refusal when the file open as ``fd`` (``st`` its fstat) is sparse by the
    rule of this module's docstring, else None."""
    size, allocated = st.st_size, st.st_blocks * 512
    if not stat.S_ISREG(st.st_mode) or not may_be_sparse(size, st.st_blocks):
        return None
    data = data_bytes(fd, size, enough=-(-size // SPARSE_RATIO))
    if data * SPARSE_RATIO >= size:
        return None
    return Refusal("sparse", f"sparse file: {size} bytes, of which {allocated} allocated and"
                             f" {data} in data extents (under 1/{SPARSE_RATIO})")


def data_bytes(fd: int, size: int, *, enough: int | None = None) -> int:
    """Bytes of the first ``size`` bytes of ``fd`` in data extents; counting stops once
    ``enough`` is reached (the count is then at least ``enough``)."""
    total = 0
    for _start, length in data_extents(fd, size):
        total += length
        if enough is not None and total >= enough:
            break
    return total


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The (offset, length) data extents of the first ``size`` bytes of ``fd`` in order, by
    ``SEEK_DATA``/``SEEK_HOLE``; one extent of the whole file where the file system cannot
    tell (Linux then reports all data itself; EINVAL/EOPNOTSUPP are taken the same way).
    Moves the file offset of ``fd``."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole from offset to the end
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP) and offset == 0:
                yield 0, size
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end - start
        offset = end
