"""Media rules: which files we take, what they are called on disk, how they are served."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from videodrop import formats

_UNSAFE = re.compile(r"[^\w.\- ()+,@=]+", re.UNICODE)
#: The longest name a file system holds (NAME_MAX), in UTF-8 bytes: a stored or recorded
#: file name never exceeds it, so every header that carries one (Content-Disposition,
#: X-Accel-Redirect) fits a proxy's default 4 KiB header buffer.
NAME_BYTES = 255
_STORED_NAME_BYTES = 200  # room under NAME_MAX for an upload's ".part" and the like
_LONGEST_EXTENSION = 10
#: A source_id that is its own folder name: what ``safe_filename`` leaves unchanged, in
#: lower case (a store on a case-insensitive file system, vfat or SMB, holds ``A`` and
#: ``a`` in one folder).
_PLAIN_SOURCE_ID = re.compile(r"[a-z0-9](?:[a-z0-9_.\-]{0,126}[a-z0-9_\-])?")
#: What an escaped folder keeps as it is; all else is ``%XX`` (upper-case hex digits).
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _windows_1252() -> tuple[str, ...]:
    """Windows-1252 as the WHATWG Encoding Standard decodes it: its five unassigned bytes
    (0x81, 0x8D, 0x8F, 0x90, 0x9D) as the Latin-1 code points of the same value."""
    table = []
    for byte in range(256):
        try:
            table.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            table.append(chr(byte))
    return tuple(table)


_WINDOWS_1252 = _windows_1252()


def decode_name(raw: bytes) -> str:
    """A file or folder name as bytes → text to show and record: UTF-8 when the bytes are
    UTF-8, else Windows-1252 (what FTP and SMB servers write for Windows clients, e.g.
    ``b"Caf\xe9.mp4"`` → ``"Café.mp4"``). Every byte sequence decodes; it never raises.
    The mapping is not reversible: keep the bytes where they matter (``origin_path``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(map(_WINDOWS_1252.__getitem__, raw))


def display(name: str) -> str:
    """A name as the OS gave it to Python (undecodable bytes as surrogate escapes, PEP 383)
    → text that PostgreSQL, JSON and logs accept (:func:`decode_name` of its bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return decode_name(os.fsencode(name))
    return name


def client_basename(name: str) -> str:
    """A file name sent by a client, without the client's folders (RFC 7578 §4.2):
    ``C:\\Users\\bob\\holiday.mp4`` and ``/home/bob/holiday.mp4`` → ``holiday.mp4``."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def bounded(name: str, limit: int = NAME_BYTES) -> str:
    """``name`` cut to at most ``limit`` UTF-8 bytes, between characters, keeping its
    extension (of up to 10 characters): ``"x" * 400 + ".mp4"`` → 251 x's + ``".mp4"``."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > _LONGEST_EXTENSION:
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    room = limit - len(tail.encode())
    cut = stem.encode()[:room].decode("utf-8", errors="ignore")
    return cut + tail


def has_extension(name: str, extensions: frozenset[str]) -> bool:
    """True when ``name`` ends in one of ``extensions`` (lower case, no dot); ``"*"`` among
    them accepts every name."""
    return "*" in extensions or formats.extension_of(name) in extensions


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
    A name that is nothing but an extension keeps it behind ``fallback``: ``.mp4`` →
    ``video.mp4`` (what :func:`videodrop.formats.extension_of` reads in it too).
    """
    base = unicodedata.normalize("NFC", client_basename(name))
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" ")
    stem, dot, ext = base.rpartition(".")
    if dot and ext:  # leading dots and spaces go, the extension stays
        stem = stem.lstrip(" .") or fallback
        return bounded(f"{stem}.{ext}", _STORED_NAME_BYTES)
    return bounded(base.strip(" .") or fallback, _STORED_NAME_BYTES)


def source_folder(source_id: str) -> str:
    """The folder of a source_id under ``videos/``, one per id: the id itself when it is a
    plain name (lower-case letters, digits, ``_ . -``, not ending in ``.``), which is what
    every such id always had. Any other id (``A``, ``a.``, spaces, other scripts) is spelled
    with ``%XX`` escapes (``a.`` → ``a%2E``, ``Cam1`` → ``%43am1``), or, beyond 200 bytes,
    as ``~`` and the SHA-256 of the id: neither form can be a plain id, nor a folder made
    before (``%`` and ``~`` were never kept in one), so distinct ids never share a folder,
    not even on a case-insensitive store (no two folders differ by case alone)."""
    if _PLAIN_SOURCE_ID.fullmatch(source_id):
        return source_id
    escaped = "".join(ch if ch in _KEPT else
                      "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
                      for ch in source_id)
    return escaped if len(escaped) <= _STORED_NAME_BYTES else hashed_folder(source_id)


def hashed_folder(source_id: str) -> str:
    """``~`` and the SHA-256 of the id: the folder of a source_id too long to spell, and of
    one whose plain folder is held by a row made before folders were kept apart."""
    return "~" + hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()


def stored_path(source_id: str, filename: str, *, folder: str | None = None) -> str:
    """Where a video lives, relative to MEDIA_ROOT: ``videos/<folder>/<filename>``, the
    folder being :func:`source_folder` of the id unless given."""
    return f"videos/{folder or source_folder(source_id)}/{safe_filename(filename)}"


def fsync_dir(folder: Path) -> None:
    """Make a rename or an unlink in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def name_from_filename(filename: str) -> str:
    """A readable default name: separators become spaces, except a single ``-`` or ``.``
    between digits, which keeps dates, times and versions readable:
    ``Front_door-2026-11-30.mp4`` → ``Front door 2026-11-30``, ``cam_12.30.mp4`` →
    ``cam 12.30``; ``.mp4`` (an extension only) → ``video``. Control characters (a
    newline, ``\x01``) become spaces: the name is shown on one line."""
    base = PurePosixPath(filename).name or filename
    stem, dot, _ext = base.rpartition(".")
    stem = "".join(" " if unicodedata.category(c) == "Cc" else c for c in (stem if dot else base))
    words = re.sub(r"[_\-.]+", _separator, stem).strip()
    return re.sub(r"\s+", " ", words) or "video"


def _separator(found: re.Match[str]) -> str:
    text, start, end = found.string, found.start(), found.end()
    between_digits = start > 0 and end < len(text) and text[start - 1].isdigit() \
        and text[end].isdigit()
    return found.group() if between_digits and found.group() in {"-", "."} else " "
