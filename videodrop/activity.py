"""Where a recording's picture moved: stretches of the derive role's scenes activity (one
level a second, the mean absolute difference of consecutive frames, 0..255: derive/scenes.py,
packed by :func:`videodrop.derivatives.pack_activity`) at or above an origin's
``activity_threshold`` (videodrop/origins.py). docs/timeline.md, "The page".

A second whose level reaches the threshold is active, from its start to its end (the last
one cut at the recording's duration); active seconds less than :data:`JOIN` seconds apart
are one stretch (someone who stops for a moment in front of a camera is one event)."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from videodrop.derivatives import ACTIVITY_SCALE

#: Active seconds closer than this (s) are one stretch.
JOIN = 5.0


@dataclass(frozen=True)
class Stretch:
    """Seconds ``start`` to ``end`` into a recording where the picture moved; ``peak``: the
    highest level of its seconds (0..255)."""

    start: float
    end: float
    peak: float

    @property
    def seconds(self) -> float:
        return round(self.end - self.start, 3)

    def as_json(self) -> dict[str, Any]:
        return {"offset": self.start, "seconds": self.seconds, "peak": self.peak}


def stretches(packed: str, threshold: float, *, duration: float | None = None,
              join: float = JOIN) -> list[Stretch]:
    """The stretches of ``packed`` activity (base64, one byte a second) at or above
    ``threshold`` levels (> 0), in order; ``duration`` (s) cuts the last one. ``[]`` for
    activity that does not decode (a row written by another version)."""
    try:
        levels = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError):
        return []
    # byte b stands for (b / ACTIVITY_SCALE) ** 2 levels: compare in bytes
    floor = math.ceil(math.sqrt(threshold) * ACTIVITY_SCALE - 1e-9)
    end_of = len(levels) if duration is None else min(float(len(levels)), duration)
    found: list[Stretch] = []
    start = last = -1
    peak = 0
    for second, byte in enumerate(levels):
        if byte < floor or second >= end_of:
            continue
        if start >= 0 and second - (last + 1) < join:
            last, peak = second, max(peak, byte)
            continue
        if start >= 0:
            found.append(_stretch(start, last, peak, end_of))
        start = last = second
        peak = byte
    if start >= 0:
        found.append(_stretch(start, last, peak, end_of))
    return found


def _stretch(first: int, last: int, peak: int, end_of: float) -> Stretch:
    return Stretch(float(first), round(min(last + 1.0, end_of), 3),
                   round((peak / ACTIVITY_SCALE) ** 2, 3))
