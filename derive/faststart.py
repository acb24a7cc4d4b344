"""A faststart copy of an MP4/MOV whose index (``moov``) is its last top-level box, made
in one pass at copy speed: ``ftyp``, then the index with every chunk offset (``stco``,
``co64``) shifted by the index's size, then the rest of the file as it is, copied by the
kernel (``os.copy_file_range``, as ``cp`` does; ``os.sendfile`` where the filesystems
refuse it). It is what ffmpeg's ``tools/qt-faststart`` does (Debian ships it), in this
process: qt-faststart copies through a 32 MiB buffer in user space, twice the CPU time of
``cp`` (docs/benchmarks.md, "Browser renditions").

ISO/IEC 14496-12 §4.2 box headers (32-bit size, type; size 1: a 64-bit size follows; 0:
to the end of the file), §8.7.5 chunk offsets (``stco``: 32-bit, ``co64``: 64-bit,
absolute file offsets).

:func:`relocate` refuses (:class:`Unfit`; the caller makes its ffmpeg remux instead) any
file it cannot move exactly: ``ftyp`` not first, ``moov`` not last, top-level boxes other
than ``mdat``/``free``/``skip``/``wide`` between them, an index larger than
:data:`MAX_MOOV` bytes, a compressed index (``cmov``), boxes that hold file offsets
besides the chunk offsets (``saio``, ``iloc``), tracks other than one video and at most
one audio (the rendition's contract: derive/rendition_check.py), a chunk offset outside
the media data (``mdat``), a 32-bit offset that the shift would take past 4 GiB
(qt-faststart rewrites those tables as ``co64``; this leaves them to ffmpeg).

The input is untrusted: every size is checked against its parent before it is used, the
index is read into memory only up to :data:`MAX_MOOV`, and the copy checks its deadline
between steps of :data:`STEP` bytes."""

from __future__ import annotations

import errno
import os
import struct
import sys
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from derive.ffmpeg import Failed
from videodrop.derivatives import Reason

__all__ = ["MAX_MOOV", "STEP", "Unfit", "relocate"]

#: The largest index moved here (bytes; a day of 30 fps video and its audio holds ~40 MB).
MAX_MOOV = 256 << 20
#: Bytes copied between two looks at the deadline and the progress.
STEP = 64 << 20
#: Top-level boxes allowed between ``ftyp`` and the final ``moov`` (copied as they are).
_BETWEEN = frozenset({b"mdat", b"free", b"skip", b"wide"})
#: Boxes that would hold file offsets this does not shift.
_OTHER_OFFSETS = (b"saio", b"iloc")
_MAX_BOXES = 100_000
# copy_file_range refused between these files: copy with sendfile instead
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}


class Unfit(Exception):
    """The file cannot be relocated exactly (the sentence says why): make the ffmpeg
    remux instead."""


def relocate(source: Path, out: Path, *, deadline: float,
             progress: Callable[[float], None] | None = None) -> None:
    """Write ``source`` with its index first to ``out`` (a new file). ``deadline``:
    seconds for the whole copy; ``progress(part)`` (0..1) after each :data:`STEP`.
    :class:`Unfit` (before anything is written, but for a copy that fails); Failed
    (``timeout``) past the deadline; OSError from the filesystems."""
    end = time.monotonic() + deadline
    with source.open("rb") as src:
        size = os.fstat(src.fileno()).st_size
        boxes = _top_level(src, size)
        ftyp, moov = boxes[0], boxes[-1]
        media = [(body, stop) for kind, body, stop in boxes if kind == b"mdat"]
        src.seek(moov[1])
        index = bytearray(src.read(moov[2] - moov[1]))
        src.seek(0)
        head = src.read(ftyp[2])
        header = _header(moov[2] - moov[1], moov[2] - _box_start(boxes))
        moved = header + _shifted(index, media, len(header) + len(index))
        with out.open("xb") as dst:
            dst.write(head)
            dst.write(moved)
            dst.flush()
            _copy(src.fileno(), dst.fileno(), ftyp[2], _box_start(boxes) - ftyp[2], end=end,
                  progress=progress)


def _box_start(boxes: list[tuple[bytes, int, int]]) -> int:
    """Where the last box (the index) starts: the end of the one before it."""
    return boxes[-2][2]


def _header(body: int, whole: int) -> bytes:
    """The index's box header as it was (8 bytes, or 16 when its size took 64 bits)."""
    if whole - body == 16:
        return struct.pack(">I4sQ", 1, b"moov", whole)
    return struct.pack(">I4s", whole, b"moov")


def _top_level(src: BinaryIO, size: int) -> list[tuple[bytes, int, int]]:
    """The file's top-level boxes ``(kind, body start, end)``; :class:`Unfit` unless it is
    ``ftyp``, boxes of :data:`_BETWEEN` with at least one ``mdat``, and ``moov`` last."""
    boxes: list[tuple[bytes, int, int]] = []
    pos = 0
    while pos < size:
        if len(boxes) >= _MAX_BOXES:
            raise Unfit(f"more than {_MAX_BOXES} top-level boxes")
        src.seek(pos)
        head = src.read(16)
        kind, body, stop = _box(head, 0, len(head), pos, size)
        boxes.append((kind, body, stop))
        pos = stop
    kinds = [kind for kind, _, _ in boxes]
    if len(kinds) < 3 or kinds[0] != b"ftyp" or kinds[-1] != b"moov":
        raise Unfit("the file is not ftyp, its media data, then its index (moov) last:"
                    f" {_names(kinds)}")
    middle = set(kinds[1:-1])
    if not middle <= _BETWEEN or b"mdat" not in middle:
        raise Unfit(f"top-level boxes other than media data before the index: {_names(kinds)}")
    if boxes[-1][2] - boxes[-1][1] > MAX_MOOV:
        raise Unfit(f"an index (moov) larger than {MAX_MOOV >> 20} MiB")
    return boxes


def _box(data: bytes | bytearray, pos: int, limit: int, base: int,
         end: int) -> tuple[bytes, int, int]:
    """The box whose header is at ``data[pos:]`` (``base + pos`` in the file, its parent
    ending at ``end``): ``(kind, body start, end)`` in the file's offsets."""
    if limit - pos < 8:
        raise Unfit(f"a box header cut short at byte {base + pos}")
    length, kind = struct.unpack_from(">I4s", data, pos)
    head = 8
    if length == 1:
        if limit - pos < 16:
            raise Unfit(f"a box header cut short at byte {base + pos}")
        length, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
    elif length == 0:
        length = end - base - pos
    if length < head or base + pos + length > end:
        raise Unfit(f"a {_names([kind])} box of {length} bytes at byte {base + pos} overruns"
                    " its parent")
    return kind, base + pos + head, base + pos + length


def _children(index: bytearray, body: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The boxes inside ``index[body:end]`` (offsets in ``index``)."""
    pos = body
    while pos < end:
        kind, start, stop = _box(index, pos, end, 0, end)
        yield kind, start, stop
        pos = stop


def _shifted(index: bytearray, media: list[tuple[int, int]], shift: int) -> bytearray:
    """``index`` (the ``moov`` box's body) with its tracks' chunk offsets moved by
    ``shift`` bytes; :class:`Unfit` (module docstring) when it cannot be moved exactly."""
    for kind in _OTHER_OFFSETS:
        if kind in index:  # (a match inside a table only costs the ffmpeg remux)
            raise Unfit(f"the index may hold {kind.decode()} offsets")
    handlers: list[bytes] = []
    for kind, body, stop in _children(index, 0, len(index)):
        if kind == b"cmov":
            raise Unfit("a compressed index (cmov)")
        if kind == b"trak":
            handlers.append(_track(index, body, stop, media, shift))
    videos, audios = handlers.count(b"vide"), handlers.count(b"soun")
    if videos != 1 or audios > 1 or len(handlers) != videos + audios:
        raise Unfit(f"tracks other than one video and at most one audio: {_names(handlers)}")
    return index


def _track(index: bytearray, body: int, stop: int, media: list[tuple[int, int]],
           shift: int) -> bytes:
    """Shift the chunk offsets of the ``trak`` at ``index[body:stop]``; its handler type
    (``vide``, ``soun``…)."""
    handler = b""
    tables = 0
    for kind, start, end in _children(index, body, stop):
        if kind != b"mdia":
            continue
        for sub, s_start, s_end in _children(index, start, end):
            if sub == b"hdlr" and s_end - s_start >= 12:
                handler = bytes(index[s_start + 8:s_start + 12])
            if sub != b"minf":
                continue
            for part, p_start, p_end in _children(index, s_start, s_end):
                if part != b"stbl":
                    continue
                for table, t_start, t_end in _children(index, p_start, p_end):
                    if table in (b"stco", b"co64"):
                        _patch(index, table, t_start, t_end, media=media, shift=shift)
                        tables += 1
    if tables != 1:
        raise Unfit(f"a {_names([handler])} track with {tables} chunk offset tables")
    return handler


def _patch(index: bytearray, table: bytes, start: int, end: int, *,
           media: list[tuple[int, int]], shift: int) -> None:
    """Add ``shift`` to every entry of the ``stco``/``co64`` body at ``index[start:end]``
    (version and flags, entry count, entries), each of which must lie in ``media``."""
    width = 4 if table == b"stco" else 8
    if end - start < 8:
        raise Unfit(f"an {table.decode()} box too short")
    count = struct.unpack_from(">I", index, start + 4)[0]
    if 8 + count * width > end - start:
        raise Unfit(f"an {table.decode()} box claims {count} entries it does not hold")
    offsets = array("I" if width == 4 else "Q")
    assert offsets.itemsize == width
    offsets.frombytes(bytes(index[start + 8:start + 8 + count * width]))
    if sys.byteorder == "little":
        offsets.byteswap()
    if offsets and not _inside(offsets, media):
        raise Unfit("a chunk offset points outside the media data (mdat)")
    if offsets and width == 4 and max(offsets) + shift > 0xFFFFFFFF:
        raise Unfit("a 32-bit chunk offset would pass 4 GiB (it needs co64)")
    moved = array(offsets.typecode, (value + shift for value in offsets))
    if sys.byteorder == "little":
        moved.byteswap()
    index[start + 8:start + 8 + count * width] = moved.tobytes()


def _inside(offsets: array[int], media: list[tuple[int, int]]) -> bool:
    """Whether every offset lies in one of the ``(start, end)`` spans (sorted)."""
    if len(media) == 1:
        low, high = media[0]
        return low <= min(offsets) and max(offsets) < high
    starts = [start for start, _ in media]
    for value in offsets:
        i = bisect_right(starts, value) - 1
        if i < 0 or value >= media[i][1]:
            return False
    return True


def _copy(src: int, dst: int, offset: int, count: int, *, end: float,
          progress: Callable[[float], None] | None) -> None:
    """Copy ``count`` bytes of ``src`` from ``offset`` to ``dst``'s position, by steps of
    :data:`STEP`; Failed (``timeout``) when ``end`` (``time.monotonic``) passes."""
    done = 0
    ranged = True
    while done < count:
        if time.monotonic() > end:
            raise Failed(Reason.TIMEOUT, "the index relocation timed out")
        step = min(STEP, count - done)
        if ranged:
            try:
                moved = os.copy_file_range(src, dst, step, offset + done)
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                ranged = False
                continue
        else:
            moved = os.sendfile(dst, src, offset + done, step)
        if moved == 0:
            raise Unfit("the file ended before its index")
        done += moved
        if progress is not None:
            progress(done / count)


def _names(kinds: list[bytes]) -> str:
    return ", ".join(k.decode("latin-1") for k in kinds) or "none"
