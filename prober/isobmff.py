"""The top-level boxes of an ISO BMFF file (MP4, MOV, M4V): enough to tell a recording
cut off mid-way from a file that is not media, when ffprobe cannot open either, and
whether the index comes before the media data (what a browser needs to start at once).

ISO/IEC 14496-12 §4.2: each box starts with a 32-bit big-endian size and a 4-character
type; size 1 means a 64-bit size follows, size 0 means "to the end of the file".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from prober.inputs import ProbeInput, as_input

__all__ = ["Boxes", "top_level_boxes"]

_MAX_BOXES = 1_000_000


@dataclass(frozen=True)
class Boxes:
    kinds: list[str]  # the complete top-level boxes, in file order
    complete_end: int  # byte offset where the last complete box ends
    cut: str | None  # the box the file ends inside, None when the file ends between boxes
    size: int  # the file's size

    @property
    def moov_first(self) -> bool | None:
        """Whether the index (``moov``) comes before the media data (``mdat``): True when a
        ``moov`` precedes every ``mdat`` (a player can start from the file's head), False
        when an ``mdat`` comes first (it must fetch the index from further on), None when
        neither is among the boxes."""
        first = next((k for k in self.kinds if k in {"moov", "mdat"}), None)
        return None if first is None else first == "moov"

    @property
    def fragments(self) -> int:
        """Complete movie fragments (``moof`` boxes followed by their ``mdat``)."""
        return sum(1 for a, b in zip(self.kinds, self.kinds[1:], strict=False)
                   if (a, b) == ("moof", "mdat"))


def top_level_boxes(path: Path | ProbeInput, stop_at: frozenset[str] = frozenset()
                    ) -> Boxes | None:
    """The box list of the file at ``path`` (or of an input: each box header is one read
    at its offset, a ranged GET for an object); None when it does not start with an ISO
    BMFF box
    (``ftyp``, or a ``moov``/``mdat``/``free`` first as old QuickTime files do). With
    ``stop_at``, the list ends with the first box of one of those kinds (a prefix:
    ``complete_end`` is that box's end, ``cut`` None)."""
    kinds: list[str] = []
    source = as_input(path)
    size = source.size
    pos = 0
    while pos < size and len(kinds) < _MAX_BOXES:
        head = source.read_at(pos, 16)
        if len(head) < 8:
            return Boxes(kinds, pos, "?", size) if kinds else None
        length, raw = struct.unpack(">I4s", head[:8])
        kind = raw.decode("latin-1")
        if not kinds and kind not in {"ftyp", "moov", "mdat", "free", "wide", "skip"}:
            return None
        if length == 1:
            if len(head) < 16:
                return Boxes(kinds, pos, kind, size)
            length = struct.unpack(">Q", head[8:16])[0]
        elif length == 0:
            length = size - pos
        if length < 8 or not kind.isprintable():
            return Boxes(kinds, pos, "?", size) if kinds else None
        if pos + length > size:
            return Boxes(kinds, pos, kind, size)
        kinds.append(kind)
        pos += length
        if kind in stop_at:
            break
    return Boxes(kinds, pos, None, size)
