"""Scenes and activity: shot boundaries with a thumbnail per scene, and per second how
much the picture changes, from one decoding pass.

The pass decodes every frame (the loop filter skipped: the frames are only compared),
resamples them to a constant :data:`RATE_BOUNDS`-bounded frame rate (the ``fps`` filter
from time 0, the video's own rate when the probe knows it) so that frame ``n`` is at
``n / rate`` seconds (``-fps_mode cfr -r`` instead duplicates frames at the start of some
files, and every boundary after them comes late), shrinks each to :data:`THUMB_W` x
:data:`THUMB_H` RGB pixels (letterboxed, sample aspect ratio applied) and writes them raw
to a pipe. derive/shots.py finds the boundaries (cuts and gradual transitions) and keeps
one frame per scene; the kept frames are laid out up to :data:`COLUMNS` to a row (fewer
when there are fewer scenes: :func:`layout`) in JPEG sheets by a second, small ffmpeg
child reading them from a raw file.

Facts recorded (the row's ``data``): ``rate`` (frames/s), ``duration`` (s: the video's,
the probe's; the frames' own ``frames / rate`` when it gave none), ``frames`` (those of the
pass that start before ``duration``; the last scene runs from its start to ``duration``,
which may lie up to a frame or more past ``frames / rate`` where the picture stops before
the audio), ``starts`` (first frame of each scene), ``transitions`` (``cut`` | ``gradual`` per scene
after the first), the thumbnail ``width``/``height`` (:func:`thumbnail_size`: never larger than the
picture), ``columns`` and ``rows`` and the ``sheets``, and
``activity``: per started second of ``duration`` (``ceil(duration)`` values) the mean
absolute difference between consecutive frames (0..255 levels; 0 for a second past the
last frame), packed by videodrop/derivatives.py :func:`pack_activity`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from derive import shots
from derive.ffmpeg import Failed, FFmpeg, FullDecode, Skipped, input_args
from derive.source import Source
from videodrop.derivatives import ACTIVITY_SCALE, Reason, pack_activity

THUMB_W, THUMB_H = 160, 90
FRAME_BYTES = THUMB_W * THUMB_H * 3
COLUMNS, MAX_ROWS = 10, 10
QUALITY = 5  # ffmpeg's -q:v for mjpeg
DEFAULT_RATE = 25.0  # frames/s when the probe gave none
RATE_BOUNDS = (1.0, 120.0)
SHEET = "scenes-{:02d}.jpg"
_OUTPUT_FPS = re.compile(rb"Output #0.*?Stream #0:0.*?, ([\d.]+) fps,", re.DOTALL)


def rate_of(fps: float | None) -> float:
    """The constant frame rate of the pass: the probe's ``fps`` when within
    :data:`RATE_BOUNDS`, else :data:`DEFAULT_RATE`."""
    low, high = RATE_BOUNDS
    return round(fps, 3) if fps and low <= fps <= high else DEFAULT_RATE


class _Frames:
    """Cuts ffmpeg's stdout chunks into frames for a :class:`shots.Shots`."""

    def __init__(self, found: shots.Shots) -> None:
        self.found = found
        self.pending = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.pending += chunk
        whole = len(self.pending) - len(self.pending) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            self.found.add(bytes(self.pending[i:i + FRAME_BYTES]))
        del self.pending[:whole]


def analyse(ffmpeg: FFmpeg, path: Path | Source, rate: float, duration: float | None, thumbs: Path
            ) -> tuple[shots.Shots, list[int], dict[int, int]]:
    """The pass over the ``duration`` seconds of ``path`` (its deadline grows with them):
    the detector, the scenes' first frames, and where each scene's thumbnail lies in
    ``thumbs`` (scene start → frame index in the file)."""
    where: dict[int, int] = {}
    # no further than the file's bytes can hold seconds (derive/ffmpeg.py MIN_BYTE_RATE):
    # a few kB claiming hours, its frames far apart, would have the fps filter repeat
    # them for every frame of those hours (a 21 kB file: 900,000 frames, ten minutes)
    held = FullDecode(path, duration).held()
    limit = held if duration and 0 < held < duration else None
    with thumbs.open("wb") as out:
        def keep(start: int, frame: bytes) -> None:
            where[start] = len(where)
            out.write(frame)

        found = shots.Shots(shots.lag_for(rate), keep)
        done = ffmpeg.run([
            "-skip_loop_filter", "all", *input_args(path, keyframes=False),
            "-vf", f"fps={rate:g}:start_time=0,"
                   f"scale=w='trunc(iw*sar/2)*2':h='trunc(ih/2)*2',setsar=1,"
                   f"scale={THUMB_W}:{THUMB_H}:force_original_aspect_ratio=decrease"
                   f":flags=bilinear,pad={THUMB_W}:{THUMB_H}:-1:-1,format=rgb24",
            "-fps_mode", "passthrough",
            # an output limit: as an input's, the frames past it still reach the fps
            # filter, which queues every repetition up to them (out of memory)
            *(["-t", f"{limit:.3f}"] if limit is not None else []),
            "-f", "rawvideo", "pipe:1"],
            on_stdout=_Frames(found), full=FullDecode(path, duration))
        starts = found.finish() if found.count else []
    said = _OUTPUT_FPS.search(done.stderr)
    if said and abs(float(said.group(1)) - rate) > 0.01:  # printed rounded
        raise Failed(Reason.FFMPEG_FAILED, f"ffmpeg resampled to {float(said.group(1)):g}"
                     f" fps, not {rate:g}")
    return found, starts, where


def layout(count: int) -> tuple[int, int]:
    """The columns and rows of a sheet of ``count`` thumbnails: up to :data:`COLUMNS`
    to a row, up to :data:`MAX_ROWS` rows."""
    columns = max(1, min(COLUMNS, count))
    return columns, min(MAX_ROWS, -(-count // columns))


def thumbnail_size(shown: tuple[int, int] | None) -> tuple[int, int]:
    """The thumbnails' size (px) for a picture shown ``shown`` = (width, height) px (rotation
    and pixel shape applied; None: unknown): :data:`THUMB_W` x :data:`THUMB_H`, the frame
    letterboxed in it, unless that would blow the picture up; then the picture's own size
    (even numbers: the sheets are 4:2:0 JPEG)."""
    if not shown or min(shown) <= 0:
        return THUMB_W, THUMB_H
    width, height = shown
    if min(THUMB_W / width, THUMB_H / height) <= 1:
        return THUMB_W, THUMB_H
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _unboxed(size: tuple[int, int]) -> str:
    """Filters taking a thumbnail of ``size`` out of its letterboxed frame: none at the
    frame's own size; else the picture cropped from the middle and shrunk back to ``size``
    (the frame blew it up)."""
    width, height = size
    if size == (THUMB_W, THUMB_H):
        return ""
    grown = min(THUMB_W / width, THUMB_H / height)  # the letterboxing's scale
    box_w, box_h = min(THUMB_W, round(width * grown)), min(THUMB_H, round(height * grown))
    return f"crop={box_w}:{box_h},scale={width}:{height}:flags=area,"


def sheets(ffmpeg: FFmpeg, thumbs: Path, order: list[int], out: Path,
           size: tuple[int, int] = (THUMB_W, THUMB_H)) -> list[Path]:
    """The thumbnails of ``order`` (frame indexes in ``thumbs``), at ``size`` px
    (:func:`thumbnail_size`), tiled into sheets (:func:`layout`)."""
    ordered = out / "ordered.rgb"
    with thumbs.open("rb") as source, ordered.open("wb") as fh:
        for k in order:
            source.seek(k * FRAME_BYTES)
            fh.write(source.read(FRAME_BYTES))
    columns, rows = layout(len(order))
    ffmpeg.run(["-protocol_whitelist", "file", "-f", "rawvideo", "-pixel_format", "rgb24",
                "-video_size", f"{THUMB_W}x{THUMB_H}", "-framerate", "25",
                "-i", f"file:{ordered}",
                "-vf", f"{_unboxed(size)}tile={columns}x{rows},format=yuvj420p",
                "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(QUALITY),
                "-f", "image2", "-start_number", "0", "-y", f"file:{out}/sheet-%02d.jpg"])
    ordered.unlink()
    return sorted(out.glob("sheet-*.jpg"))


def span(count: int, rate: float, duration: float | None) -> tuple[int, float]:
    """(frames, seconds) the scenes cover: the video's ``duration`` (the probe's, s) and the
    ``count`` frames of the pass that start before it (the ``fps`` filter may emit one
    after the last picture's time, or stop short of a duration the audio or the
    container sets: the last scene then runs on to the end); without a duration, the
    frames' own ``count / rate``."""
    if not duration or duration <= 0:
        return count, count / rate
    return min(count, max(1, math.ceil(duration * rate - 1e-6))), duration


def make(ffmpeg: FFmpeg, path: Path | Source, fps: float | None, duration: float | None, out: Path,
         *, shown: tuple[int, int] | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Sheets in ``out`` and the facts (module docstring) of the video at ``path`` (the
    probe's ``fps`` and ``duration`` in seconds, either None when unknown; ``shown``: the
    size it shows at, px, for :func:`thumbnail_size`). :class:`Skipped` when no frame
    decodes; :class:`Failed` when ffmpeg fails."""
    rate = rate_of(fps)
    thumbs = out / "thumbs.rgb"
    found, starts, where = analyse(ffmpeg, path, rate, duration, thumbs)
    if not starts:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    frames, seconds = span(found.count, rate, duration)
    starts = [s for s in starts if s < frames]
    order = [where.get(s, 0) for s in starts]
    size = thumbnail_size(shown)
    made = sheets(ffmpeg, thumbs, order, out, size)
    thumbs.unlink()
    if not made:
        raise Failed(Reason.FFMPEG_FAILED, "ffmpeg wrote no scene thumbnails")
    cuts = set(found.cuts)
    columns, rows = layout(len(starts))
    return {"rate": rate, "frames": frames, "duration": round(seconds, 3),
            "starts": starts,
            "transitions": ["cut" if s in cuts else "gradual" for s in starts[1:]],
            "width": size[0], "height": size[1], "columns": columns, "rows": rows,
            # one value a started second, as far as the file's bytes can hold seconds: a
            # claimed duration of years makes no list of that length
            "activity": pack_activity(shots.activity(
                found.d1, rate, starts,
                math.ceil(round(FullDecode(path, seconds).held(), 3)))),
            "activity_scale": ACTIVITY_SCALE}, made
