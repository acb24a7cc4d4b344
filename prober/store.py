"""Claiming a watch-folder file: one row per file (by claim key), and the file moved from
the inbox into ``MEDIA_ROOT/videos/<source_id>/<filename>`` — safely across crashes."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat
from pathlib import Path

from videodrop import media
from videodrop.catalog import Catalog, ClaimKey, Video
from videodrop.errors import StorageFull, TransientFileError
from videodrop.messages import InboxFile

_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO, errno.EROFS,
              errno.EBUSY, errno.ENOMEM}


def matches(st: os.stat_result, key: ClaimKey) -> bool:
    return (stat.S_ISREG(st.st_mode) and st.st_dev == key.dev and st.st_ino == key.ino
            and st.st_size == key.size and st.st_mtime_ns == key.mtime_ns
            and st.st_ctime_ns == key.ctime_ns)


def key_of(msg: InboxFile) -> ClaimKey:
    return ClaimKey(msg.dev, msg.ino, msg.size, msg.mtime_ns, msg.ctime_ns)


def claim(catalog: Catalog, inbox: Path, media_root: Path, msg: InboxFile) -> Video | None:
    """The row for this file, with the file in the store; None for a stale message (the
    file changed or vanished before anyone claimed it: a fresh message will follow)."""
    key = key_of(msg)
    src = inbox / msg.path
    try:
        st: os.stat_result | None = os.lstat(src)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise TransientFileError(f"cannot stat {msg.path}: {exc.strerror}") from exc
    if st is not None and matches(st, key):
        video, _inserted = catalog.claim_inbox_file(key, origin_path=msg.path)
        try:
            move_into_store(src, media_root / video.stored_path, key)
        except TransientFileError as exc:  # the row says why the file still waits
            catalog.note_waiting(video.id, str(exc))
            raise
        return video
    # Not (or no longer) in the inbox as this message describes it. If someone claimed
    # it before (a redelivery, a re-publish), the row tells where the file went.
    return catalog.by_claim(key)


def ensure_stored(inbox: Path, media_root: Path, video: Video) -> bool:
    """True when the stored file is there; moves it in if a crash left it in the inbox."""
    dst = media_root / video.stored_path
    key = ClaimKey.of_video(video)
    if dst.exists():
        if video.origin_path and key is not None:
            _unlink_if_same(inbox / video.origin_path, key)
        return True
    if video.origin_path and key is not None:
        src = inbox / video.origin_path
        try:
            if matches(os.lstat(src), key):
                move_into_store(src, dst, key)
                return True
        except FileNotFoundError:
            pass
    return False


def move_into_store(src: Path, dst: Path, key: ClaimKey) -> None:
    """rename() when inbox and store share a file system; else copy to a temporary name
    in the store, fsync, rename into place, make that rename durable, and only then remove
    the inbox copy (the two file systems commit their journals independently: a power cut
    could otherwise keep the unlink and lose the rename)."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():  # a crash after the copy's rename, before the unlink
            _unlink_if_same(src, key)
            return
        try:
            os.rename(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part")
            try:
                shutil.copyfile(src, tmp)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.rename(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
            media.fsync_dir(dst.parent)
            _unlink_if_same(src, key)
            return
        media.fsync_dir(dst.parent)
    except FileNotFoundError:
        if not dst.exists():
            raise TransientFileError(f"{src.name} vanished while being moved") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"media store full: {src.name} waits in the inbox") from exc
        if exc.errno in _TRANSIENT:
            raise TransientFileError(f"cannot move {src.name} into the store: "
                                     f"{exc.strerror}") from exc
        raise


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
