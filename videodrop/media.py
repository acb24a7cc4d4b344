"""Media rules: which files we take, what they are called on disk, how they are served."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

_UNSAFE = re.compile(r"[^\w.\- ()+,@=]+", re.UNICODE)


def is_ignored(name: str, patterns: tuple[str, ...]) -> bool:
    """True for temporary and hidden names (dotfiles, ``*.part``, rsync's ``.x.XXXXXX``...)."""
    return _ignore_regex(patterns).match(name) is not None


@functools.lru_cache(maxsize=8)
def _ignore_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """All the patterns as one regular expression (one match per name, not one each)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or "(?!)")


def safe_filename(name: str, *, fallback: str = "video") -> str:
    """A file name safe to store: the base name only, no path parts, no control characters.

    Keeps letters of any script (a camera in Tokyo names files in Japanese); replaces
    everything else that a shell, a URL or a file system would trip on with ``_``.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base or base in {".", ".."}:
        base = fallback
    if len(base.encode()) > 200:  # leave room under NAME_MAX (255) for suffixes
        stem, dot, ext = base.rpartition(".")
        keep = stem if dot else base
        while len(keep.encode()) > 180:
            keep = keep[:-1]
        base = f"{keep}.{ext}" if dot and len(ext) <= 10 else keep
    return base


def stored_path(source_id: str, filename: str) -> str:
    """Where a video lives, relative to MEDIA_ROOT: ``videos/<source_id>/<filename>``."""
    return f"videos/{safe_filename(source_id, fallback='source')}/{safe_filename(filename)}"


def fsync_dir(folder: Path) -> None:
    """Make a rename or an unlink in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def name_from_filename(filename: str) -> str:
    """A readable default name: ``front_door-2024_05_01.mp4`` → ``front door 2024 05 01``."""
    stem = PurePosixPath(filename).stem or filename
    words = re.sub(r"[_\-.]+", " ", stem).strip()
    return words or "video"
