"""Moving a claimed watch-folder file from the inbox into
``MEDIA_ROOT/videos/<source_id>/<filename>``, safely across crashes. Files only: the
claim's sequence and its rows are the worker's (prober/worker.py).

A file with one name is renamed into the store. A file with more names (hard links: ``cp
-al``, ``rsync --link-dest``; the other names inside the inbox or anywhere else) is copied:
the stored file is an inode of its own, which writes through the other names cannot change.
Removing a name of such a file moves the inode's ctime under the other names, so a claim
accepts the file of its message with an unchanged size and mtime and a later ctime, and
the row's key follows it (the worker's earlier-claim step, with :func:`holds_same_bytes`)."""

from __future__ import annotations

import errno
import filecmp
import hashlib
import os
import re
import secrets
import stat
import time
from pathlib import Path

from videodrop import media
from videodrop.errors import StorageFull, TransientFileError
from videodrop.inboxpolicy import InboxPolicy, Refusal, data_extents
from videodrop.messages import InboxFile

#: A copy's temporary name beside its destination: ``.<name>.<8 hex>.part``.
_PART = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.part")
#: A temporary copy not written to for this long belongs to a copy that died (a running
#: copy writes continuously); :func:`sweep_parts` removes it.
STALE_PART_SECONDS = 3600.0

_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO, errno.EROFS,
              errno.EBUSY, errno.ENOMEM}


def matches(st: os.stat_result, key: InboxFile) -> bool:
    """``st`` is the file of ``key``, unchanged."""
    return same_content(st, key) and st.st_ctime_ns == key.ctime_ns


def same_content(st: os.stat_result, key: InboxFile) -> bool:
    """``st`` is the inode of ``key`` with the same size and mtime, and a ctime no earlier
    (another name of it may have been removed since); its device as this host sees it
    (``key.stat_dev``: a shared inbox has another device number on each host)."""
    return (stat.S_ISREG(st.st_mode) and st.st_dev == key.stat_dev and st.st_ino == key.ino
            and st.st_size == key.size and st.st_mtime_ns == key.mtime_ns
            and st.st_ctime_ns >= key.ctime_ns)


class Refused(Exception):
    """The inbox policy refuses the file of a message at claim: it stays in the inbox and
    gets no row (a row an earlier, interrupted claim made is marked ``failed``,
    ``error_code`` ``refused``)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def settled_stat(inbox: Path, msg: InboxFile) -> os.stat_result | None:
    """The ``lstat`` of the message's file when it is still in the inbox as the message
    describes it (:func:`same_content`); None when it is gone or another file.
    :class:`TransientFileError` when it cannot be looked at."""
    st = _lstat(inbox / msg.path, msg.path)
    return st if st is not None and same_content(st, msg) else None


def refusal_of(policy: InboxPolicy, src: Path, key: InboxFile) -> Refusal | None:
    """The inbox policy on the file of ``key`` at ``src`` as it is now: its name, then its
    size and holes (read from one descriptor of that very inode)."""
    refusal = policy.by_name(src.name)
    if refusal is not None:
        return refusal
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TransientFileError(f"{media.display(src.name)} vanished") from None
    except OSError as exc:
        raise TransientFileError(f"cannot open {media.display(src.name)}: "
                                 f"{exc.strerror}") from exc
    try:
        if not same_content(os.fstat(fd), key):
            raise TransientFileError(f"{media.display(src.name)} changed during its claim")
        return policy.by_file(fd)
    finally:
        os.close(fd)


def held_by_another(src: Path, dst: Path) -> bool:
    """``dst`` exists and is not the file at ``src`` (same inode, or same size and bytes):
    on a case-insensitive store ``videos/A/x.mp4`` is ``videos/a/x.mp4``."""
    try:
        there = os.stat(dst)
    except FileNotFoundError:
        return False
    return not _same_file(src, there, dst)


def _same_file(src: Path, there: os.stat_result, dst: Path) -> bool:
    """The file at ``src`` is ``dst`` (``there`` its stat): one inode, or the same size and
    the same bytes (a finished copy). False when ``src`` is gone."""
    try:
        here = os.stat(src)
    except FileNotFoundError:
        return False
    if os.path.samestat(here, there):
        return True
    return here.st_size == there.st_size and filecmp.cmp(src, dst, shallow=False)


def holds_same_bytes(src: Path, stored: Path) -> bool:
    """``stored`` is missing (a claim interrupted before its move) or has the bytes of
    ``src`` (a copy interrupted before the inbox name was removed)."""
    return not stored.exists() or filecmp.cmp(src, stored, shallow=False)


def _lstat(path: Path, shown: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TransientFileError(f"cannot stat {media.display(shown)}: {exc.strerror}") from exc


def ensure_stored(inbox: Path, dst: Path, key: InboxFile | None) -> bool:
    """True when the stored file ``dst`` is there; moves the inbox file of ``key`` (a
    watch-folder file's claim; None for an upload) in when a crash left it in the inbox.
    OSError (a move failing) and :class:`TransientFileError` propagate."""
    src = inbox / key.path if key is not None else None
    if dst.exists():
        if src is not None and key is not None:
            _unlink_if_same(src, key, dst)
        return True
    if src is not None and key is not None:
        try:
            st = os.lstat(src)
            if matches(st, key):
                move_into_store(src, dst, key, other_names=st.st_nlink > 1)
                return True
        except FileNotFoundError:
            pass
    return False


def move_into_store(src: Path, dst: Path, key: InboxFile, *, other_names: bool = False
                    ) -> None:
    """rename() when inbox and store share a file system and the file has no other name
    (``other_names`` False: a link count of 1); else copy to a temporary name in the store,
    fsync, rename into place, make that rename durable, and only then remove the inbox name
    (the two file systems commit their journals independently: a power cut could otherwise
    keep the unlink and lose the rename). :class:`StorageFull` when the store is full,
    :class:`TransientFileError` when the file vanished, changed or cannot be moved now."""
    shown = media.display(src.name)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():  # a crash after the copy's rename, before the unlink?
            if not _unlink_if_same(src, key, dst):
                raise TransientFileError(f"{media.display(dst.name)} in the store is another"
                                         f" file: {shown} waits in the inbox")
            return
        if not other_names:
            try:
                os.rename(src, dst)
                media.fsync_dir(dst.parent)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        _copy_in(src, dst, key)
    except FileNotFoundError:
        if not dst.exists():
            raise TransientFileError(f"{shown} vanished while being moved") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"media store full: {shown} waits in the inbox") from exc
        if exc.errno in _TRANSIENT:
            raise TransientFileError(f"cannot move {shown} into the store: "
                                     f"{exc.strerror}") from exc
        raise


def _copy_in(src: Path, dst: Path, key: InboxFile) -> None:
    """Copy the inode of ``key`` under ``src`` to ``dst``, then remove the name ``src``.

    The copy reads one open descriptor: while it is open the inode cannot be freed and its
    number reused, so ``src`` still naming that inode afterwards is the same file, whose
    size and mtime, unchanged across the copy, say that no other name wrote to it meanwhile.
    """
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part")
    # O_NOFOLLOW | O_NONBLOCK: a link or a FIFO put in its place must not be followed or block
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fh.fileno())
        if not same_content(before, key):
            raise TransientFileError(f"{media.display(src.name)} changed before its copy")
        try:
            with open(tmp, "wb") as out:
                _copy_data(fh.fileno(), out.fileno(), before.st_size)
                os.fsync(out.fileno())
            after = os.fstat(fh.fileno())
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise TransientFileError(f"{media.display(src.name)} was written to while "
                                         "being copied into the store")
            os.rename(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        media.fsync_dir(dst.parent)
        try:
            now = os.lstat(src)
        except FileNotFoundError:
            return
        if (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino):
            src.unlink()


def _copy_data(source: int, target: int, size: int) -> None:
    """Copy the first ``size`` bytes of ``source`` to the empty ``target`` in the kernel,
    holes left as holes: no more is written than ``source`` holds as data."""
    for start, length in data_extents(source, size):
        os.lseek(target, start, os.SEEK_SET)
        offset, end = start, start + length
        while offset < end:
            sent = os.sendfile(target, source, offset, end - offset)
            if sent == 0:
                raise TransientFileError("the file shrank while being copied into the store")
            offset += sent
    os.ftruncate(target, size)


def _unlink_if_same(src: Path, key: InboxFile, dst: Path) -> bool:
    """Remove the inbox name ``src`` of ``key`` when ``dst`` holds its file (a move or a
    copy that finished); True when nothing of it is left in the inbox to store."""
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        return True
    if not matches(st, key):
        return True  # not this claim's file any more: not ours to store or remove
    if not _same_file(src, os.stat(dst), dst):
        return False
    src.unlink()
    return True


def remove_parts(dst: Path) -> int:
    """Remove the temporary copies of ``dst`` beside it (``.<name>.<hex>.part``) that a
    prober left when it died mid-copy; the caller holds the claim of ``dst``. Returns how
    many were removed."""
    removed = 0
    try:
        entries = list(os.scandir(dst.parent))
    except FileNotFoundError:
        return 0
    for entry in entries:
        found = _PART.fullmatch(entry.name)
        if found and found["name"] == dst.name and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
    return removed


def sweep_parts(media_root: Path, older_than: float = STALE_PART_SECONDS,
                now: float | None = None) -> list[Path]:
    """Remove temporary copies under ``media_root/videos/*/`` not modified for
    ``older_than`` seconds (a prober died mid-copy; its video may be gone since). Returns
    what was removed."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        folders = [e for e in os.scandir(media_root / "videos") if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return removed
    for folder in folders:
        try:
            entries = list(os.scandir(folder.path))
        except OSError:
            continue
        for entry in entries:
            if not _PART.fullmatch(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except FileNotFoundError:
                continue
    return removed


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at ``path`` as 64 lowercase hex digits (read 1 MiB at a
    time). OSError when it cannot be read."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
