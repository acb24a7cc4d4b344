"""Claiming a watch-folder file: one row per name of a file (by claim key), and the file
moved from the inbox into ``MEDIA_ROOT/videos/<source_id>/<filename>`` — safely across
crashes.

A file with one name is renamed into the store. A file with more names (hard links: ``cp
-al``, ``rsync --link-dest``; the other names inside the inbox or anywhere else) is copied:
the stored file is an inode of its own, which writes through the other names cannot change.
Removing a name of such a file moves the inode's ctime under the other names, so a claim
accepts the file of its message with an unchanged size and mtime and a later ctime, and
the row's key follows it (:func:`_earlier_claim`)."""

from __future__ import annotations

import errno
import filecmp
import hashlib
import os
import secrets
import stat
from pathlib import Path

from videodrop import media
from videodrop.catalog import Catalog, Video
from videodrop.claims import ClaimKey
from videodrop.errors import StorageFull, TransientFileError
from videodrop.messages import InboxFile

_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO, errno.EROFS,
              errno.EBUSY, errno.ENOMEM}


def matches(st: os.stat_result, key: ClaimKey) -> bool:
    """``st`` is the file of ``key``, unchanged."""
    return same_content(st, key) and st.st_ctime_ns == key.ctime_ns


def same_content(st: os.stat_result, key: ClaimKey) -> bool:
    """``st`` is the inode of ``key`` with the same size and mtime, and a ctime no earlier
    (another name of it may have been removed since)."""
    return (stat.S_ISREG(st.st_mode) and st.st_dev == key.dev and st.st_ino == key.ino
            and st.st_size == key.size and st.st_mtime_ns == key.mtime_ns
            and st.st_ctime_ns >= key.ctime_ns)


def key_of(msg: InboxFile) -> ClaimKey:
    return ClaimKey(msg.dev, msg.ino, msg.size, msg.mtime_ns, msg.ctime_ns,
                    os.fsencode(msg.path))


def claim(catalog: Catalog, inbox: Path, media_root: Path, msg: InboxFile) -> Video | None:
    """The row for this name of this file, with the file in the store; None for a stale
    message (the file changed or vanished before anyone claimed it: a fresh message will
    follow). :class:`TransientFileError` while another prober claims the same name."""
    key = key_of(msg)
    src = inbox / msg.path
    with catalog.claim_lock(key) as locked:
        if not locked:
            raise TransientFileError(f"another prober is claiming {media.display(msg.path)}")
        st = _lstat(src, msg.path)
        if st is None or not same_content(st, key):
            # Not (or no longer) in the inbox as this message describes it. If someone
            # claimed it before (a redelivery, a re-publish), the row tells where it went.
            return catalog.by_claim(key)
        now = key.at(st.st_ctime_ns)
        video = (catalog.by_claim(now) or _earlier_claim(catalog, media_root, src, now)
                 or catalog.claim_inbox_file(now)[0])
        try:
            move_into_store(src, media_root / video.stored_path, now, linked=st.st_nlink > 1)
        except TransientFileError as exc:  # the row says why the file still waits
            catalog.note_waiting(video.id, str(exc))
            raise
        return video


def _earlier_claim(catalog: Catalog, media_root: Path, src: Path, key: ClaimKey
                   ) -> Video | None:
    """The row that already owns this file under an earlier ctime, with its key moved to
    ``key``: one not probed yet whose stored file is missing (a claim interrupted before
    its move), or whose stored copy has the bytes of this file (a copy interrupted before
    the inbox name was removed). None: the file is new (its inode reused)."""
    for video in catalog.earlier_claims(key):
        stored = media_root / video.stored_path
        if not stored.exists() or filecmp.cmp(src, stored, shallow=False):
            return catalog.rekey_claim(video, key.ctime_ns)
    return None


def _lstat(path: Path, shown: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TransientFileError(f"cannot stat {media.display(shown)}: {exc.strerror}") from exc


def ensure_stored(inbox: Path, media_root: Path, video: Video) -> bool:
    """True when the stored file is there; moves it in if a crash left it in the inbox."""
    dst = media_root / video.stored_path
    key = ClaimKey.of_video(video)
    src = inbox / os.fsdecode(key.path) if key is not None else None
    if dst.exists():
        if src is not None and key is not None:
            _unlink_if_same(src, key)
        return True
    if src is not None and key is not None:
        try:
            st = os.lstat(src)
            if matches(st, key):
                move_into_store(src, dst, key, linked=st.st_nlink > 1)
                return True
        except FileNotFoundError:
            pass
    return False


def move_into_store(src: Path, dst: Path, key: ClaimKey, *, linked: bool = False) -> None:
    """rename() when inbox and store share a file system and the file has no other name;
    else copy to a temporary name in the store, fsync, rename into place, make that rename
    durable, and only then remove the inbox name (the two file systems commit their journals
    independently: a power cut could otherwise keep the unlink and lose the rename)."""
    shown = media.display(src.name)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():  # a crash after the copy's rename, before the unlink
            _unlink_if_same(src, key)
            return
        if not linked:
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


def _copy_in(src: Path, dst: Path, key: ClaimKey) -> None:
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
                _send_all(fh.fileno(), out.fileno(), before.st_size)
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


def _send_all(source: int, target: int, size: int) -> None:
    """Copy ``size`` bytes from the start of ``source`` to ``target`` in the kernel."""
    offset = 0
    while offset < size:
        sent = os.sendfile(target, source, offset, size - offset)
        if sent == 0:
            raise TransientFileError("the file shrank while being copied into the store")
        offset += sent


def _unlink_if_same(src: Path, key: ClaimKey) -> None:
    try:
        if matches(os.lstat(src), key):
            src.unlink()
    except FileNotFoundError:
        pass


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
