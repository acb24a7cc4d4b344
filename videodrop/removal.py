"""Removing a video's files: the one code path of every removal (the admin ``DELETE
/api/videos/{id}``, retention's passes, an interrupted upload's clean-up).

The caller has already made the row say the files are gone (deleted it, or marked it
``expired``) and committed: no link serves a file from then on, so removing them cannot
take a file from under a row that still claims it. Missing files are fine (a second call,
or a pass finishing what a crashed one began, removes nothing and does not fail).
Paths only ever come from the catalog, never from a request.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from videodrop import derivatives
from videodrop.catalog import Video
from videodrop.storage import FileStore, MediaStore

#: An upload's bytes before they are complete: ``MEDIA_ROOT/.uploads/<video id>.part``.
STAGING_DIR = ".uploads"


def stage_path(media_root: Path, video_id: int) -> Path:
    """Where the upload of row ``video_id`` is written until it is complete."""
    return media_root / STAGING_DIR / f"{video_id}.part"


def remove_files(media_root: Path, video: Video, *, stored: bool = True) -> None:
    """Remove an upload's temporary file and (with ``stored``) its stored file, then the
    ``videos/<source_id>/`` folder if that leaves it empty. Missing files are fine."""
    with contextlib.suppress(FileNotFoundError):
        stage_path(media_root, video.id).unlink()
    if not stored:
        return
    dst = media_root / video.stored_path
    with contextlib.suppress(FileNotFoundError):
        dst.unlink()
    with contextlib.suppress(OSError):  # not empty, or already gone
        dst.parent.rmdir()


def remove_video(media: MediaStore | Path, video: Video) -> None:
    """Remove every file of ``video`` (a row already deleted or expired, see the module
    docstring) from ``media`` (a store, or the file store's folder): the stored original,
    an upload's temporary file, the derivatives' folder (on an object store: the original's
    object and every object under the derivatives' prefix)."""
    if isinstance(media, MediaStore) and not isinstance(media, FileStore):
        media.delete(video.stored_path)
        media.delete_prefix(derivatives.key_prefix(video.source_id))
        return
    root = media.root if isinstance(media, FileStore) else media
    remove_files(root, video)
    derivatives.remove_all(root, video.source_id)


__all__ = ["STAGING_DIR", "remove_files", "remove_video", "stage_path"]
