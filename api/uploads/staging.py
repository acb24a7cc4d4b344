"""Where an upload's bytes live on disk before and after they are complete.

An upload is written to ``MEDIA_ROOT/.uploads/<video id>.part`` (same file system as the
store, so the final step is a ``rename``), fsynced, then renamed to the row's
``stored_path``. The temporary name derives from the row id alone, so whoever finds a row
stuck in ``uploading`` (the API's sweep) can remove its file without any other trace.
Paths only ever come from the catalog, never from a request.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from videodrop import media
from videodrop.removal import STAGING_DIR, remove_files, stage_path

__all__ = ["STAGING_DIR", "commit", "open_stage", "remove_files", "stage_path"]


def open_stage(media_root: Path, video_id: int) -> tuple[Path, int]:
    """Create the temporary file (never reusing one) and return its path and descriptor."""
    path = stage_path(media_root, video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a leftover of a crashed process that had the same row: not ours
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    return path, fd


def commit(stage: Path, media_root: Path, stored_path: str) -> Path:
    """Rename the complete upload into place and make the rename durable."""
    dst = media_root / stored_path
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.rename(stage, dst)
    media.fsync_dir(dst.parent)
    return dst
