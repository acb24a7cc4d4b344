"""The poster: one JPEG, at most :data:`LONG_SIDE` px on its long side, rotation and sample
aspect ratio applied, chosen among candidate frames so that it is never black, never a
uniform frame and never a frame of a fade-in.

Candidates are keyframes of a window of the video (the whole of a short one; :data:`WINDOW`
seconds from a tenth of the way into a long one). Each candidate is measured: shrunk to
:data:`PROBE_W` x :data:`PROBE_H` grey pixels, the mean of its luma (black: under
:data:`DARK`; white: over :data:`BRIGHT`) and its standard deviation (uniform: under
:data:`FLAT`). Among the candidates that are none of these, the one with the most
contrast wins: frames of a fade-in or a fade-out have less contrast than the frames they
fade to, so they lose. Each way of finding candidates is one ffmpeg child:

- one pass decoding keyframes only (``-discard nokey -skip_frame nokey``) over the
  window, at most one per :data:`CANDIDATES`-th of it and one per :data:`MIN_SPACING` s
  (:data:`FEW_CANDIDATES` spread over a shorter video; of a video of unknown duration,
  its first :data:`UNTIMED_CANDIDATES` keyframes);
  each candidate goes both ways to two outputs, measured (a pipe) and at full size (a
  JPEG file): the winner's JPEG is the poster;
- for a Matroska/WebM file of known duration (its demuxer keeps every packet and some
  decoders, VP9's, decode every frame: such a pass decodes the whole window) and an ASF
  (WMV) one (often a keyframe every second or less: a pass decodes every keyframe of the
  window, 158 for a 95 s sample), a seek per :data:`SEEK_SPACING` s of the window (2 to
  :data:`SEEKS`), each an input of the same ffmpeg that lands on a keyframe through the
  file's index (ASF without one: by the packets' times), measured and at full size;
- when no keyframe qualifies (or none decodes): every frame of the window's first
  :data:`FULL_SECONDS` s, at the candidates' spacing, measured only and as coded (no
  autorotation, a frame's measure does not depend on it): most such passes end in
  ``no_picture``, whose reason says how far it looked. A winner is decoded again by an
  accurate seek and turned as ffmpeg's autorotation would (derive.ffmpeg.rotation),
  which turns that one frame rather than every frame decoded.

Candidates measured already (``seen``: the storyboard's keyframe pass measures each
tile's frame the same way, derive/storyboard.py) spare those passes: the winner among them
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
    first_times,
    input_args,
    keyframe_input,
    rotation,
)
from derive.source import Source, as_source
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
SEEKS, SEEK_SPACING = 4, 5.0  # seeks in a window at most; seconds of it per seek
FULL_SECONDS = 3.0  # of the window decoded frame by frame when no keyframe qualifies
SEEK_MARGIN = 0.0005  # seconds before a measured frame's time an accurate seek starts
EBML = b"\x1a\x45\xdf\xa3"  # the first bytes of a Matroska/WebM file
ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")  # ...of an ASF (WMV) file
#: The measuring filter: the frame shrunk to PROBE_W x PROBE_H by averaging areas of it
#: (then grey, after it)
MEASURE = f"scale={PROBE_W}:{PROBE_H}:flags=area"
_JPEG = ("-c:v", "mjpeg", "-q:v", str(QUALITY))


@dataclass(frozen=True)
class Candidate:
    time: float  # seconds on the output timeline
    mean: float  # luma, 0..255
    contrast: float  # standard deviation of luma

    @property
    def usable(self) -> bool:
        return DARK <= self.mean <= BRIGHT and self.contrast >= FLAT


@dataclass(frozen=True)
class Made:
    """A candidate and where its frame at full size is: a JPEG made by its pass, or the
    first frame of ``source`` (the arguments of an input that starts at it, mapped)."""
    candidate: Candidate
    jpeg: Path | None = None
    source: tuple[str, ...] = ()
    turn: str = ""  # filters rotating it, when source does not (derive.ffmpeg.rotation)


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


def candidates(ffmpeg: FFmpeg, path: Path | Source, duration: float | None, folder: Path, *,
               keyframes: bool) -> list[Made]:
    """The window's candidates, measured. ``keyframes``: keyframes only, at most one per
    :data:`MIN_SPACING` s (less apart in a video too short for :data:`FEW_CANDIDATES` so
    spaced; the first :data:`UNTIMED_CANDIDATES` of a video of unknown duration), each
    with its full-size JPEG in ``folder``. Otherwise every
    frame of the window's first :data:`FULL_SECONDS` s at the candidates' spacing,
    measured only (most such passes prove that there is no picture; a winner is decoded
    again by an accurate seek)."""
    start, length = window(duration)
    if keyframes:
        span = length or duration or 0.0  # 0: unknown, the first keyframes
        spacing = max(span / CANDIDATES, min(MIN_SPACING, span / FEW_CANDIDATES))
    else:
        length = min(length or duration or FULL_SECONDS, FULL_SECONDS)
        spacing = length / CANDIDATES
    select = f"select='isnan(prev_selected_t)+gte(t-prev_selected_t,{spacing:.3f})',"
    most = CANDIDATES if duration or not keyframes else UNTIMED_CANDIDATES
    count = ["-fps_mode", "passthrough", "-frames:v", str(most)]
    jpegs = [*VIDEO_ONLY, "-vf", f"{select}{display_size(LONG_SIDE)},format=yuvj420p",
             *count, *_JPEG, "-f", "image2", "-start_number", "0", "-y",
             f"file:{folder}/candidate-%03d.jpg"] if keyframes else []
    # showinfo after the shrinking: its checksum of each frame costs little there
    # measured only, every frame: as coded (a frame's measure does not depend on its
    # rotation) and without the deblocking filter (nor on that, shrunk to PROBE_W px)
    fast = [] if keyframes else ["-skip_loop_filter", "all"]
    frames: Frames = ffmpeg.frames(
        [*fast, *input_args(path, keyframes=keyframes, start=start, duration=length,
                            autorotate=keyframes),
         "-vf", f"{select}{MEASURE},showinfo,format=gray",
         *count, "-f", "rawvideo", "pipe:1", *jpegs],
        PROBE_W * PROBE_H,
        full=None if keyframes else FullDecode(path, length))
    found = []
    turn = "" if keyframes else rotation(frames.stderr)
    for i, (t, frame) in enumerate(zip(frames.times, frames.data, strict=True)):
        time = start + t
        if keyframes:
            found.append(Made(measure(time, frame), jpeg=folder / f"candidate-{i:03d}.jpg"))
        else:
            found.append(Made(measure(time, frame), turn=turn, source=tuple(input_args(
                path, keyframes=False, start=max(0.0, time - SEEK_MARGIN),
                autorotate=False))))
    return found


def sought(ffmpeg: FFmpeg, path: Path | Source, duration: float, folder: Path) -> list[Made]:
    """Candidates by seeking (:func:`seeks`): one ffmpeg, one input per seek, each giving
    its first keyframe measured (``folder/seek-{i}.gray``) and at full size
    (``folder/seek-{i}.jpg``). Two seeks landing on the same keyframe give one candidate."""
    times = seeks(duration)
    # a thread for each filter graph and encoder is enough for one frame
    args: list[str] = ["-filter_threads", "1"]
    for at in times:
        args += keyframe_input(path, at)
    for i in range(len(times)):
        one = ["-map", f"{i}:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough",
               "-frames:v", "1"]
        args += [*one, "-vf", f"{MEASURE},showinfo@seek{i},format=gray", "-f", "rawvideo",
                 "-y", f"file:{folder}/seek-{i}.gray",
                 *one, "-vf", f"{display_size(LONG_SIDE)},format=yuvj420p", *_JPEG,
                 "-threads", "1", "-f", "mjpeg", "-y", f"file:{folder}/seek-{i}.jpg"]
    first = first_times(ffmpeg.run(args).stderr)
    found: dict[float, Made] = {}
    for i, at in enumerate(times):
        gray, jpeg = folder / f"seek-{i}.gray", folder / f"seek-{i}.jpg"
        frame = gray.read_bytes() if f"seek{i}" in first and gray.is_file() else b""
        if len(frame) == PROBE_W * PROBE_H:  # else that input decoded nothing
            time = round(at + first[f"seek{i}"], 3)
            found.setdefault(time, Made(measure(time, frame), jpeg=jpeg))
    return sorted(found.values(), key=lambda m: m.candidate.time)


def seeks(duration: float) -> list[float]:
    """Where to seek in the window (seconds): one per :data:`SEEK_SPACING` s of it, at
    least two and at most :data:`SEEKS`, each in the middle of its share."""
    start, length = window(duration)
    span = length if length is not None else duration
    n = max(2, min(SEEKS, math.ceil(span / SEEK_SPACING)))
    return [start + span * (i + 0.5) / n for i in range(n)]


def by_seeking(path: Path | Source, duration: float | None) -> bool:
    """Whether the candidates are found by seeking rather than by one pass over the
    window: a Matroska/WebM file (its demuxer reads every packet, ``-discard nokey`` is of
    no effect, and decoders such as VP9's decode every frame of the window) or an ASF
    file (every keyframe of the window decoded, often one a second or more) whose
    duration is known."""
    if not duration or duration <= 0:
        return False
    head = as_source(path).head(16)
    return head.startswith(EBML) or head.startswith(ASF)


def choose(found: Sequence[Candidate]) -> Candidate | None:
    usable = [c for c in found if c.usable]
    return max(usable, key=lambda c: c.contrast) if usable else None


def choose_seen(seen: Sequence[Candidate], duration: float | None) -> Candidate | None:
    """The best of candidates measured elsewhere: those in the window first."""
    start, length = window(duration)
    end = start + length if length is not None else math.inf
    return choose([c for c in seen if start <= c.time < end]) or choose(seen)


def make(ffmpeg: FFmpeg, path: Path | Source, duration: float | None, out: Path, *,
         seen: Sequence[Candidate] = ()) -> dict[str, Any]:
    """Write the poster to ``out``; its facts (``time`` s, ``width``, ``height`` px,
    ``decode``: keyframes | full). ``seen``: keyframes measured already (the storyboard's
    pass), tried first. :class:`Skipped` when no frame decodes or every frame looked at
    is black or uniform; :class:`~derive.ffmpeg.Failed` when ffmpeg fails."""
    best = choose_seen(seen, duration)
    if best is not None:
        try:
            _encode(ffmpeg, input_args(path, keyframes=True,
                                       start=max(0.0, best.time - SEEK_MARGIN)), out)
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


def _from_candidates(ffmpeg: FFmpeg, path: Path | Source, duration: float | None, out: Path,
                     folder: Path) -> dict[str, Any]:
    decode = "keyframes"
    found: list[Made] = []
    if duration and by_seeking(path, duration):
        try:
            found = sought(ffmpeg, path, duration, folder)
        except Failed as exc:  # an input the seek could not open: one pass, as elsewhere
            if exc.reason not in (Reason.FFMPEG_FAILED, Reason.NO_VIDEO_FRAMES):
                raise
    if not found:
        try:
            found = candidates(ffmpeg, path, duration, folder, keyframes=True)
        except Skipped:  # no keyframe decodes: every frame may
            found = []
    best = choose([m.candidate for m in found])
    if best is None:
        decode = "full"
        for old in folder.iterdir():
            old.unlink()
        found = candidates(ffmpeg, path, duration, folder, keyframes=False) or found
        best = choose([m.candidate for m in found])
    if not found:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    if best is None:
        raise Skipped(Reason.NO_PICTURE, f"every frame looked at ({len(found)}: keyframes,"
                      f" then every frame of the first {FULL_SECONDS:g} s) is black,"
                      " white or uniform")
    made = next(m for m in found if m.candidate is best)
    if made.jpeg is not None and made.jpeg.is_file():
        made.jpeg.replace(out)
    elif made.source:
        _encode(ffmpeg, made.source, out, made.turn)
    return _facts(best, out, decode)


def _encode(ffmpeg: FFmpeg, source: Sequence[str], out: Path, turn: str = "") -> None:
    """The first frame of ``source`` (an input and its mapping) as the poster's JPEG,
    rotated by the filters ``turn`` first."""
    ffmpeg.run([*source, "-frames:v", "1", "-fps_mode", "passthrough",
                "-vf", f"{turn}{display_size(LONG_SIDE)},format=yuvj420p", *_JPEG,
                "-f", "mjpeg", "-y", f"file:{out}"])


def _facts(best: Candidate, out: Path, decode: str) -> dict[str, Any]:
    try:
        width, height = jpeg.size_of(out)
    except (OSError, ValueError) as exc:
        raise Failed(Reason.FFMPEG_FAILED, f"ffmpeg wrote no poster: {exc}") from exc
    return {"time": round(best.time, 3), "width": width, "height": height, "decode": decode,
            "mean_luma": round(best.mean, 1), "contrast": round(best.contrast, 1)}
