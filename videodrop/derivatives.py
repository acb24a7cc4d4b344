"""What the derive role makes from a ready video, and where the files go: the names every
role shares (the prober requests them, derive/ makes them, the API serves them).

Files of a video live under the store key ``derivatives/<source_id>/`` (:func:`key_prefix`;
on the file store the folder ``MEDIA_ROOT/derivatives/<source_id>/``, removed with the
video); their keys are in each row's ``data`` (relative to MEDIA_ROOT: the store's keys),
never built from a request."""

from __future__ import annotations

import base64
import math
import shutil
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

__all__ = ["ACTIVITY_SCALE", "DEFAULT_KINDS", "FOLDER", "KINDS", "STATES", "Reason",
           "folder_of", "key_prefix", "pack_activity", "remove_all", "unpack_activity",
           "version_of"]

#: Kinds the derive role knows how to make, in the order one job makes them.
KINDS = ("packets", "poster", "storyboard", "scenes", "rendition", "hevc")
#: VIDEODROP_DERIVE's default: every kind.
DEFAULT_KINDS = KINDS
STATES = ("pending", "ready", "failed", "skipped")
FOLDER = "derivatives"
#: The scenes' activity, one byte a second on a square-root scale: byte ``b`` stands for
#: ``(b / ACTIVITY_SCALE) ** 2`` levels (fine steps near stillness, up to 254 levels).
ACTIVITY_SCALE = 16


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
    # the rendition (derive/rendition.py, docs/playback.md)
    NOT_NEEDED = "not_needed"  # skipped: the original plays (VIDEODROP_RENDITIONS=auto)
    RENDITIONS_OFF = "renditions_off"  # skipped: VIDEODROP_RENDITIONS=off
    TRANSCODE_OFF = "transcode_off"  # skipped: it needs a transcode; VIDEODROP_TRANSCODE=off
    ON_VIEW = "on_view"  # skipped until someone asks to watch it (VIDEODROP_TRANSCODE=on-view)
    NO_PATH = "no_path"  # skipped: the verdict names no path (an unknown fact)
    NOT_PLAYABLE = "not_playable"  # failed: the output does not pass its checks


def version_of(completed_at: datetime | None) -> int | None:
    """A made derivative's version: when it was last made (its row's ``completed_at``), in
    microseconds since 1970 UTC, what the catalog's JSON of a video's derivatives says as
    ``version`` (videodrop/catalog/rows.py); a remake makes a new one. None before the
    first make."""
    if completed_at is None:
        return None
    return (completed_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"storyboard, poster"`` → ``("poster", "storyboard")`` in :data:`KINDS` order;
    ``""`` or ``"none"`` → ``()`` (the role is off). ValueError naming an unknown kind."""
    names = {k.strip().lower() for k in text.split(",") if k.strip()}
    if names == {"none"}:
        return ()
    unknown = sorted(names - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in names)


def key_prefix(source_id: str) -> str:
    """The store keys' beginning of one video's derivatives: ``derivatives/<source_id>/``."""
    return f"{FOLDER}/{source_id}/"


def folder_of(media_root: Path, source_id: str) -> Path:
    """The folder of one video's derivative files."""
    return media_root / FOLDER / source_id


def remove_all(media_root: Path, source_id: str) -> None:
    """Remove every derivative file of a video (a missing folder is fine)."""
    shutil.rmtree(folder_of(media_root, source_id), ignore_errors=True)


def pack_activity(levels: list[float]) -> str:
    """Per-second activity (levels, 0..255) as base64 of one byte a second
    (:data:`ACTIVITY_SCALE`)."""
    return base64.b64encode(bytes(min(255, round(math.sqrt(max(0.0, a)) * ACTIVITY_SCALE))
                                  for a in levels)).decode("ascii")


def unpack_activity(packed: str) -> list[float]:
    """:func:`pack_activity`'s levels back, to 3 decimals."""
    return [round((b / ACTIVITY_SCALE) ** 2, 3) for b in base64.b64decode(packed)]
