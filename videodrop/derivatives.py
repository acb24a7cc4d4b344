"""What the derive role makes from a ready video, and where the files go: the names every
role shares (the prober requests them, derive/ makes them, the API serves them).

Files of a video live in ``MEDIA_ROOT/derivatives/<source_id>/`` (one folder, removed
with the video); their names are in each row's ``data`` (relative to MEDIA_ROOT), never
built from a request."""

from __future__ import annotations

import shutil
from enum import StrEnum
from pathlib import Path

__all__ = ["DEFAULT_KINDS", "FOLDER", "KINDS", "STATES", "Reason", "folder_of", "remove_all"]

#: Kinds the derive role knows how to make, in the order one job makes them.
KINDS = ("poster", "storyboard")
#: VIDEODROP_DERIVE's default: every kind.
DEFAULT_KINDS = KINDS
STATES = ("pending", "ready", "failed", "skipped")
FOLDER = "derivatives"


class Reason(StrEnum):
    """``error_code`` of a failed or skipped derivative (beside the sentence in ``error``)."""

    NO_VIDEO_FRAMES = "no_video_frames"  # skipped: nothing decodable to make it from
    NO_PICTURE = "no_picture"  # skipped: every frame looked at is black or uniform
    TOO_SHORT = "too_short"  # skipped: no duration to spread a storyboard over
    TIMEOUT = "timeout"  # failed: ffmpeg did not finish within VIDEODROP_DERIVE_TIMEOUT
    RESOURCE_LIMIT = "resource_limit"  # failed: ffmpeg met VIDEODROP_CHILD_MEMORY or CPU time
    FFMPEG_FAILED = "ffmpeg_failed"  # failed: ffmpeg exited with an error
    MISSING_FILE = "missing_file"  # failed: the stored video is gone
    GAVE_UP = "gave_up"  # failed: as many jobs as VIDEODROP_DELIVERY_LIMIT died on it
    LEFT_OUT = "left_out"  # skipped: VIDEODROP_DERIVE of the derive role leaves it out
    INTERNAL = "internal"  # failed: a bug (the job crashed on every delivery allowed)


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"poster, storyboard"`` → ``("poster", "storyboard")`` in :data:`KINDS` order;
    ``""`` or ``"none"`` → ``()`` (the role is off). ValueError naming an unknown kind."""
    names = {k.strip().lower() for k in text.split(",") if k.strip()}
    if names == {"none"}:
        return ()
    unknown = sorted(names - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in names)


def folder_of(media_root: Path, source_id: str) -> Path:
    """The folder of one video's derivative files."""
    return media_root / FOLDER / source_id


def remove_all(media_root: Path, source_id: str) -> None:
    """Remove every derivative file of a video (a missing folder is fine)."""
    shutil.rmtree(folder_of(media_root, source_id), ignore_errors=True)
