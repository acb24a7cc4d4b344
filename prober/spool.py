"""The spool of a prober on a store without local files (s3): where a claimed inbox file
waits, on the inbox's own file system, until its object is stored and its row recorded.

``INBOX/.videodrop-spool/<key>`` (:data:`videodrop.inboxpolicy.SPOOL`: never listed,
taken or pruned by the ingest, whatever the ignore patterns say) holds the file of the row
whose ``stored_path`` is ``<key>``. The claim moves the inbox file there exactly as it
moves it into a file store (prober/store.py: a rename, or a copy for a file with other
names), so the claim's promises hold unchanged; the probe reads it there (no extra copy);
then, in this order:

1. :func:`put_spooled`: ``put_file(key, size=)`` makes the object durable and verified
   (size, and the store's CRC32 of each part), beside the probe; the SHA-256 of the bytes
   it sent is what the row records (a put of a row that has one checks it);
2. the row turns ``ready`` (or ``failed``) in one transaction;
3. :func:`discard` removes the spool file.

A prober killed at any point leaves the spool file (and the row ``processing``, or
``ready`` after 2): the message comes back, the row names the spool file, and the steps
run again from the first that is not done. An upload a killed put left (an S3 multipart
upload) is aborted before the key is put again (:func:`put_spooled`), and at start by
:func:`sweep` once stale.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prober import store
from videodrop import media
from videodrop.errors import TransientFileError
from videodrop.inboxpolicy import SPOOL
from videodrop.storage import STALE_UPLOAD_SECONDS, IntegrityFailure, MediaStore, Stored

__all__ = ["discard", "put_spooled", "spool_root", "sweep"]


def spool_root(inbox: Path) -> Path:
    """The spool folder of ``inbox`` (created when missing)."""
    root = inbox / SPOOL
    root.mkdir(mode=0o750, parents=True, exist_ok=True)
    return root


def put_spooled(media_store: MediaStore, key: str, path: Path, *, size: int,
                sha256: str | None, retried: bool, log: Any) -> Stored:
    """Store the spool file ``path`` as the object ``key``, verified against ``size`` and
    ``sha256`` (what the row records; None while the row has none yet: the put's own hash
    of what it sent is then the row's, in :attr:`Stored.sha256`). ``retried``: an earlier
    attempt on this row may have died mid-put: its unfinished upload of ``key`` is aborted
    first (the caller holds the row's processing lock, so no live put of ``key`` is
    running). A file that no longer has those bytes (written to after its claim) is a
    :class:`TransientFileError`: the next attempt hashes it again."""
    if retried:
        aborted = media_store.abort_stale_uploads(0, prefix=key)
        if aborted:
            log.info("unfinished put of an earlier attempt aborted", key=key,
                     uploads=len(aborted))
    try:
        return media_store.put_file(key, path, size=size, sha256=sha256)
    except IntegrityFailure as exc:
        raise TransientFileError(f"{media.display(path.name)} changed after it was hashed:"
                                 f" {exc}") from exc


def discard(root: Path, path: Path) -> None:
    """Remove the spool file ``path`` (missing is fine) and its folders up to ``root``
    while they are empty."""
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    with contextlib.suppress(OSError):
        media.fsync_dir(folder)


def sweep(media_store: MediaStore, root: Path, log: Any,
          named: Callable[[list[str]], set[str]] | None = None) -> None:
    """At a prober's start: remove the spool's temporary copies (a claim's copy that died,
    older than :data:`store.STALE_PART_SECONDS`), the spool files no row names
    (``named(keys)``: those of the keys a row names; see :func:`sweep_orphans`) and abort
    the store's unfinished uploads of originals started more than
    :data:`STALE_UPLOAD_SECONDS` ago (one log line each, the store's). Failures are
    logged, not raised: the next start tries again."""
    if named is not None:
        try:
            sweep_orphans(media_store, root, log, named)
        except Exception as exc:  # (the catalog's or the store's errors: next start)
            log.warning("orphan spool files: sweep failed", error=str(exc))
    try:
        removed = store.sweep_parts(root)
        log.info("stale copies removed", count=len(removed), where="spool",
                 older_than_s=store.STALE_PART_SECONDS,
                 paths=[os.fspath(p.relative_to(root)) for p in removed[:20]])
    except OSError as exc:
        log.warning("stale copies: sweep failed", error=str(exc))
    try:
        aborted = media_store.abort_stale_uploads(STALE_UPLOAD_SECONDS, prefix="videos/")
        log.info("stale uploads aborted", count=len(aborted),
                 older_than_s=STALE_UPLOAD_SECONDS, keys=aborted[:20])
    except Exception as exc:  # (the store's errors: the next start sweeps again)
        log.warning("stale uploads: sweep failed", error=str(exc))


def sweep_orphans(media_store: MediaStore, root: Path, log: Any,
                  named: Callable[[list[str]], set[str]]) -> list[str]:
    """Remove the spool files that no row names (their keys, returned): a row deleted (the
    API's DELETE, which cannot see this inbox) while its prober was dead mid-probe. A
    claim commits its row before it moves the file into the spool, so a file here that no
    row names is no live claim's; its key's unfinished put is aborted too, and an object
    there (a put completed just before the kill, after the DELETE) deleted."""
    found = {os.fspath(p.relative_to(root)): p for p in root.rglob("*")
             if p.is_file() and not p.name.startswith(".")}
    if not found:
        return []
    keys = sorted(set(found) - named(sorted(found)))
    for key in keys:
        media_store.abort_stale_uploads(0, prefix=key)
        media_store.delete(key)
        discard(root, found[key])
        log.info("orphan spool file removed: its row was deleted", key=key)
    return keys
