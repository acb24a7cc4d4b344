"""The poster: one JPEG, at most :data:`LONG_SIDE` px on its long side, rotation and sample
aspect ratio applied, chosen among candidate frames so that it is never black, never a
uniform frame and never a frame of a fade-in.

Two ffmpeg passes. The first decodes keyframes only (``-skip_frame nokey``) in a window of
the video (the whole of a short one; :data:`WINDOW` seconds from a tenth of the way into
a long one), at most one per :data:`CANDIDATES`-th of the window, each shrunk to
:data:`PROBE_W` x :data:`PROBE_H` grey pixels. Each candidate is measured: the mean of its
luma (black: under :data:`DARK`; white: over :data:`BRIGHT`) and its standard deviation
(uniform: under :data:`FLAT`). Among the candidates that are none of these, the one with
the most contrast wins: frames of a fade-in or a fade-out have less contrast than the
frames they fade to, so they lose. When no keyframe qualifies (or none decodes), the
window is decoded again frame by frame at the same spacing. The second pass decodes the
winner again at full size (a seek to its keyframe) and encodes the JPEG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive import jpeg
from derive.ffmpeg import Failed, FFmpeg, Frames, Skipped, display_size, input_args
from videodrop.derivatives import Reason

LONG_SIDE = 1280
WINDOW = 120.0  # seconds looked at in a long video
CANDIDATES = 40
PROBE_W, PROBE_H = 32, 18
DARK, BRIGHT, FLAT = 24.0, 235.0, 10.0  # luma levels (0..255) and contrast
QUALITY = 3  # ffmpeg's -q:v for mjpeg: 2 (best) .. 31


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


def candidates(ffmpeg: FFmpeg, path: Path, duration: float | None, *,
               keyframes: bool) -> list[Candidate]:
    start, length = window(duration)
    spacing = (length or duration or 0.0) / CANDIDATES
    select = (f"select='isnan(prev_selected_t)+gte(t-prev_selected_t,{spacing:.3f})',"
              if spacing > 0 else "")
    frames: Frames = ffmpeg.frames(
        [*input_args(path, keyframes=keyframes, start=start, duration=length),
         "-vf", f"{select}showinfo,scale={PROBE_W}:{PROBE_H},format=gray",
         "-fps_mode", "passthrough", "-frames:v", str(CANDIDATES),
         "-f", "rawvideo", "pipe:1"],
        PROBE_W * PROBE_H)
    return [measure(start + t, f) for t, f in zip(frames.times, frames.data, strict=True)]


def choose(found: list[Candidate]) -> Candidate | None:
    usable = [c for c in found if c.usable]
    return max(usable, key=lambda c: c.contrast) if usable else None


def make(ffmpeg: FFmpeg, path: Path, duration: float | None, out: Path) -> dict[str, Any]:
    """Write the poster to ``out``; its facts (``time`` s, ``width``, ``height`` px,
    ``decode``: keyframes | full). :class:`Skipped` when no frame decodes or every frame
    looked at is black or uniform; :class:`~derive.ffmpeg.Failed` when ffmpeg fails."""
    decode = "keyframes"
    try:
        found = candidates(ffmpeg, path, duration, keyframes=True)
    except Skipped:  # no keyframe decodes: every frame may
        found = []
    best = choose(found)
    if best is None:
        decode = "full"
        found = candidates(ffmpeg, path, duration, keyframes=False) or found
        best = choose(found)
    if not found:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    if best is None:
        raise Skipped(Reason.NO_PICTURE, f"every frame looked at ({len(found)}) is black,"
                      " white or uniform")
    ffmpeg.run([*input_args(path, keyframes=False, start=max(0.0, best.time - 0.0005)),
                "-frames:v", "1",
                "-vf", f"{display_size(LONG_SIDE)},format=yuvj420p",
                "-c:v", "mjpeg", "-q:v", str(QUALITY), "-f", "mjpeg", "-y", f"file:{out}"])
    try:
        width, height = jpeg.size_of(out)
    except (OSError, ValueError) as exc:
        raise Failed(Reason.FFMPEG_FAILED, f"ffmpeg wrote no poster: {exc}") from exc
    return {"time": round(best.time, 3), "width": width, "height": height, "decode": decode,
            "mean_luma": round(best.mean, 1), "contrast": round(best.contrast, 1)}
