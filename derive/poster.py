"""The poster: one JPEG, at most :data:`LONG_SIDE` px on its long side, rotation and sample
aspect ratio applied, chosen among candidate frames so that it is never black, never a
uniform frame and never a frame of a fade-in.

One ffmpeg pass decodes keyframes only (``-skip_frame nokey``) in a window of the video
(the whole of a short one; :data:`WINDOW` seconds from a tenth of the way into a long
one), at most one per :data:`CANDIDATES`-th of the window; each candidate goes both ways
to two outputs: shrunk to :data:`PROBE_W` x :data:`PROBE_H` grey pixels (on a pipe, to be
measured) and at full size (a JPEG file). Each candidate is measured: the mean of its luma
(black: under :data:`DARK`; white: over :data:`BRIGHT`) and its standard deviation
(uniform: under :data:`FLAT`). Among the candidates that are none of these, the one with
the most contrast wins and its JPEG is the poster: frames of a fade-in or a fade-out have
less contrast than the frames they fade to, so they lose. When no keyframe qualifies (or
none decodes), the window is decoded again frame by frame at the same spacing.

Candidates measured already (``seen``: the storyboard's keyframe pass measures each
tile's frame the same way, derive/storyboard.py) spare that pass: the winner among them
(those in the window first) is decoded again at full size by a seek to its keyframe."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive import jpeg
from derive.ffmpeg import (
    VIDEO_ONLY,
    Failed,
    FFmpeg,
    Frames,
    FullDecode,
    Skipped,
    display_size,
    input_args,
)
from videodrop.derivatives import Reason

LONG_SIDE = 1280
WINDOW = 120.0  # seconds looked at in a long video
CANDIDATES = 12
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


def candidates(ffmpeg: FFmpeg, path: Path, duration: float | None, folder: Path, *,
               keyframes: bool) -> list[Candidate]:
    """The window's candidates, measured; candidate ``i``'s full-size JPEG is
    ``folder/candidate-{i:03d}.jpg``."""
    start, length = window(duration)
    spacing = (length or duration or 0.0) / CANDIDATES
    select = (f"select='isnan(prev_selected_t)+gte(t-prev_selected_t,{spacing:.3f})',"
              if spacing > 0 else "")
    count = ["-fps_mode", "passthrough", "-frames:v", str(CANDIDATES)]
    frames: Frames = ffmpeg.frames(
        [*input_args(path, keyframes=keyframes, start=start, duration=length),
         "-vf", f"{select}showinfo,scale={PROBE_W}:{PROBE_H},format=gray",
         *count, "-f", "rawvideo", "pipe:1",
         *VIDEO_ONLY, "-vf", f"{select}{display_size(LONG_SIDE)},format=yuvj420p",
         *count, "-c:v", "mjpeg", "-q:v", str(QUALITY),
         "-f", "image2", "-start_number", "0", "-y", f"file:{folder}/candidate-%03d.jpg"],
        PROBE_W * PROBE_H,
        full=None if keyframes else FullDecode(path, length or duration))
    return [measure(start + t, f) for t, f in zip(frames.times, frames.data, strict=True)]


def choose(found: Sequence[Candidate]) -> Candidate | None:
    usable = [c for c in found if c.usable]
    return max(usable, key=lambda c: c.contrast) if usable else None


def choose_seen(seen: Sequence[Candidate], duration: float | None) -> Candidate | None:
    """The best of candidates measured elsewhere: those in the window first."""
    start, length = window(duration)
    end = start + length if length is not None else math.inf
    return choose([c for c in seen if start <= c.time < end]) or choose(seen)


def make(ffmpeg: FFmpeg, path: Path, duration: float | None, out: Path, *,
         seen: Sequence[Candidate] = ()) -> dict[str, Any]:
    """Write the poster to ``out``; its facts (``time`` s, ``width``, ``height`` px,
    ``decode``: keyframes | full). ``seen``: keyframes measured already (the storyboard's
    pass), tried first. :class:`Skipped` when no frame decodes or every frame looked at
    is black or uniform; :class:`~derive.ffmpeg.Failed` when ffmpeg fails."""
    best = choose_seen(seen, duration)
    if best is not None:
        try:
            ffmpeg.run([*input_args(path, keyframes=True, start=max(0.0, best.time - 0.0005)),
                        "-frames:v", "1", "-vf", f"{display_size(LONG_SIDE)},format=yuvj420p",
                        "-c:v", "mjpeg", "-q:v", str(QUALITY), "-f", "mjpeg", "-y",
                        f"file:{out}"])
            return _facts(best, out, "keyframes")
        except Skipped:
            pass  # the seek found no keyframe: the poster's own passes below
        except Failed as exc:
            if exc.reason != Reason.FFMPEG_FAILED:  # a timeout, a limit: as it is
                raise
    folder = out.with_name(f"{out.stem}-candidates")
    folder.mkdir(exist_ok=True)
    try:
        return _from_candidates(ffmpeg, path, duration, out, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _from_candidates(ffmpeg: FFmpeg, path: Path, duration: float | None, out: Path,
                     folder: Path) -> dict[str, Any]:
    decode = "keyframes"
    try:
        found = candidates(ffmpeg, path, duration, folder, keyframes=True)
    except Skipped:  # no keyframe decodes: every frame may
        found = []
    best = choose(found)
    if best is None:
        decode = "full"
        for old in folder.iterdir():
            old.unlink()
        found = candidates(ffmpeg, path, duration, folder, keyframes=False) or found
        best = choose(found)
    if not found:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    if best is None:
        raise Skipped(Reason.NO_PICTURE, f"every frame looked at ({len(found)}) is black,"
                      " white or uniform")
    made = folder / f"candidate-{found.index(best):03d}.jpg"
    if made.is_file():
        made.replace(out)
    return _facts(best, out, decode)


def _facts(best: Candidate, out: Path, decode: str) -> dict[str, Any]:
    try:
        width, height = jpeg.size_of(out)
    except (OSError, ValueError) as exc:
        raise Failed(Reason.FFMPEG_FAILED, f"ffmpeg wrote no poster: {exc}") from exc
    return {"time": round(best.time, 3), "width": width, "height": height, "decode": decode,
            "mean_luma": round(best.mean, 1), "contrast": round(best.contrast, 1)}
