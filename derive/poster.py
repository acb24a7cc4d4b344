"""The poster: one JPEG, at most :data:`LONG_SIDE` px on its long side, rotation and sample
aspect ratio applied, chosen among candidate frames so that it is never black, never a
uniform frame and never a frame of a fade-in.

Candidates are keyframes of a window of the video (the whole of a short one; :data:`WINDOW`
seconds from a tenth of the way into a long one). Each candidate is measured: shrunk to
:data:`PROBE_W` x :data:`PROBE_H` grey pixels, the mean of its luma (black: under
:data:`DARK`; white: over :data:`BRIGHT`) and its standard deviation (uniform: under
:data:`FLAT`). Among the candidates that are none of these, the one with the most
contrast wins: frames of a fade-in or a fade-out have less contrast than the frames they
fade to, so they lose.

The poster's child (derive/poster_child.py, kept running between jobs by
derive/posters.py: no process start per poster) finds them in one opening of the file:

- the window's keyframes, only keyframe packets decoded, at most one per
  :data:`CANDIDATES`-th of it and one per :data:`MIN_SPACING` s (:data:`FEW_CANDIDATES`
  spread over a shorter video; of a video of unknown duration, its first
  :data:`UNTIMED_CANDIDATES` keyframes), a seek forward over a long gap between two;
- when no keyframe qualifies (or none decodes): every frame of the window's first
  :data:`FULL_SECONDS` s, at the candidates' spacing: most such passes end in
  ``no_picture``, whose reason says how far it looked.

The best frame is kept as decoded and drawn once: turned as ffmpeg's autorotation would
(derive.ffmpeg.turn), its pixels made square and its size bounded
(derive.ffmpeg.display_filters), encoded as ffmpeg's mjpeg at ``-q:v`` :data:`QUALITY`.

Candidates measured already (``seen``: the storyboard's keyframe pass measures each
tile's frame the same way, derive/storyboard.py) spare that search: the winner among them
(those in the window first) is decoded again at full size by a seek to its keyframe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive import jpeg
from derive.ffmpeg import Failed
from derive.posters import Posters
from derive.source import Source
from videodrop.derivatives import Reason

LONG_SIDE = 1280
WINDOW = 120.0  # seconds looked at in a long video
CANDIDATES = 12
PROBE_W, PROBE_H = 32, 18
DARK, BRIGHT, FLAT = 24.0, 235.0, 10.0  # luma levels (0..255) and contrast
QUALITY = 3  # ffmpeg's -q:v for mjpeg: 2 (best) .. 31
MIN_SPACING = 5.0  # seconds between keyframe candidates of a pass, at least...
FEW_CANDIDATES = 3  # ...unless that leaves a short video fewer candidates than these
UNTIMED_CANDIDATES = 4  # keyframe candidates of a video of unknown duration: its first
FULL_SECONDS = 3.0  # of the window decoded frame by frame when no keyframe qualifies
SEEK_MARGIN = 0.0005  # seconds before a measured frame's time an accurate seek starts
#: The measuring filter: the frame shrunk to PROBE_W x PROBE_H by averaging areas of it
#: (then grey, after it)
MEASURE = f"scale={PROBE_W}:{PROBE_H}:flags=area"


@dataclass(frozen=True)
class Candidate:
    time: float  # seconds on the output timeline
    mean: float  # luma, 0..255
    contrast: float  # standard deviation of luma

    @property
    def usable(self) -> bool:
        return DARK <= self.mean <= BRIGHT and self.contrast >= FLAT


def measure(time: float, frame: bytes) -> Candidate:
    n = len(frame) or 1
    mean = sum(frame) / n
    var = max(0.0, sum(b * b for b in frame) / n - mean * mean)
    return Candidate(time, mean, math.sqrt(var))


def window(duration: float | None) -> tuple[float, float | None]:
    """(start, length) in seconds of the part of the video the candidates come from."""
    if not duration or duration <= WINDOW:
        return 0.0, None
    return min(duration * 0.1, duration - WINDOW), WINDOW


def choose(found: Sequence[Candidate]) -> Candidate | None:
    usable = [c for c in found if c.usable]
    return max(usable, key=lambda c: c.contrast) if usable else None


def choose_seen(seen: Sequence[Candidate], duration: float | None) -> Candidate | None:
    """The best of candidates measured elsewhere: those in the window first."""
    start, length = window(duration)
    end = start + length if length is not None else math.inf
    return choose([c for c in seen if start <= c.time < end]) or choose(seen)


def make(posters: Posters, path: Path | Source, duration: float | None, out: Path, *,
         seen: Sequence[Candidate] = ()) -> dict[str, Any]:
    """Write the poster to ``out``; its facts (``time`` s, ``width``, ``height`` px,
    ``decode``: keyframes | full, ``mean_luma``, ``contrast``). ``seen``: keyframes
    measured already (the storyboard's pass), the best of them drawn when it decodes.
    :class:`Skipped` when no frame decodes or every frame looked at is black or uniform;
    :class:`~derive.ffmpeg.Failed` when the file cannot be read, or on a timeout or a
    limit (derive/posters.py)."""
    best = choose_seen(seen, duration)
    _, length = window(duration)
    full = min(length or duration or FULL_SECONDS, FULL_SECONDS)
    facts, data = posters.pick(path, duration, seen=None if best is None else best.time,
                               seconds=full)
    out.write_bytes(data)
    try:
        width, height = jpeg.size_of(out)
    except (OSError, ValueError) as exc:
        raise Failed(Reason.FFMPEG_FAILED, f"the poster's child drew no JPEG: {exc}") from exc
    if best is not None and facts["time"] == round(best.time, 3):
        facts = {**facts, "mean_luma": round(best.mean, 1), "contrast": round(best.contrast, 1)}
    return {"time": facts["time"], "width": width, "height": height, "decode": facts["decode"],
            "mean_luma": facts["mean_luma"], "contrast": facts["contrast"]}
