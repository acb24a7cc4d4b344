"""ffmpeg children of the derive role: an argument list, the stored original as input
(derive/source.py: ``file:``, or a presigned URL of an s3 store), a deadline and
the resource limits of videodrop/children.py; what went wrong as a typed error that says
whether the derivative failed for good (:class:`Failed`) or may work later.

Each child's deadline is :class:`Deadline`'s: the base (VIDEODROP_DERIVE_TIMEOUT) for
any child; a pass that decodes every frame of the media (the scenes, the storyboard's and
the poster's full-decode fallbacks: :class:`FullDecode`) also gets an allowance per
second of media (VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND), for seconds counted no
further than the file's bytes can hold (:data:`MIN_BYTE_RATE`) nor than
:data:`MAX_MEDIA_SECONDS`: a tiny file claiming a huge duration, or a duration missing,
keeps a deadline near the base.

``Frames`` is what an analysis pass gives: the bytes of each frame (``-f rawvideo``) and
its time from ffmpeg's ``showinfo`` filter (seconds, on the timeline ffmpeg gives the
output: the input's start time removed)."""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from derive.source import Source, as_source, redacted
from videodrop.children import ChildError, ChildMissing, ChildRunner, ChildTimeout, Completed
from videodrop.derivatives import Reason
from videodrop.formats import DEMUXERS

#: Before every ffmpeg's own arguments: no prompts, no progress, log lines showinfo needs.
PREAMBLE = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "info")
_SHOWINFO = re.compile(rb"\[Parsed_showinfo_\d+ @ [^\]]+\] n:\s*\d+ pts:\s*-?\d+ "
                       rb"pts_time:(-?[\d.e+-]+)")
_FORMATS = ",".join(sorted(DEMUXERS))
#: The first video stream and nothing else, for an output of a pass.
VIDEO_ONLY = ("-map", "0:v:0", "-an", "-sn", "-dn")
# ffmpeg's words when the input ended before one frame decoded (no output format known)
_NO_FRAME = b"Cannot determine format of input stream"
_SAYS_NOTHING = {"Conversion failed!", "Error marking filters as finished"}
# ... and a decoder that could not get a frame's buffer (the address-space limit: ffmpeg
# 5.1 then says "Operation not permitted" and, at the end, that nothing was encoded)
_OUT_OF_MEMORY = (b"Cannot allocate memory", b"cannot allocate memory", b"Out of memory",
                  b"get_buffer() failed")
#: Bytes a second of video takes at the least, for the media seconds a file can hold (a
#: tenth of what a still 1080p30 H.264 picture takes: skipped frames and their index);
#: a file smaller than its duration times this gets its allowance for fewer seconds.
MIN_BYTE_RATE = 250
#: Media seconds counted at most for one pass (24 h).
MAX_MEDIA_SECONDS = 86_400.0


class Failed(Exception):
    """The derivative cannot be made from this file: ``reason`` (a Reason) and a sentence."""

    def __init__(self, reason: Reason, sentence: str) -> None:
        super().__init__(sentence)
        self.reason = reason


class Skipped(Failed):
    """Nothing to make it from (no decodable frame, no picture in any frame looked at)."""


def _input(source: Source) -> tuple[str, ...]:
    """Before every input: its protocols only (``file``; HTTP(S) for an s3 store's
    presigned URL), the demuxers of the accepted containers."""
    return ("-protocol_whitelist", source.protocols, "-format_whitelist", _FORMATS)


def seconds_held(size: int) -> float:
    """The media seconds ``size`` bytes can hold at the least (:data:`MIN_BYTE_RATE`),
    at most :data:`MAX_MEDIA_SECONDS`."""
    return min(size / MIN_BYTE_RATE, MAX_MEDIA_SECONDS)


@dataclass(frozen=True)
class FullDecode:
    """What a pass that decodes every frame reads: the file (a path or a
    :class:`~derive.source.Source`) for ``seconds`` of media (the probe's duration, or the
    window a pass looks at; None: unknown)."""

    source: Path | Source
    seconds: float | None

    def held(self) -> float:
        """The media seconds counted: ``seconds``, no more than the file's bytes can hold
        (:data:`MIN_BYTE_RATE`) nor :data:`MAX_MEDIA_SECONDS`; 0 when unknown (None, NaN,
        not positive). OSError when a local file is gone."""
        if self.seconds is None or not self.seconds > 0:
            return 0.0
        return min(seconds_held(as_source(self.source).size), self.seconds)


@dataclass(frozen=True)
class Deadline:
    """Seconds an ffmpeg child may run: ``base`` (VIDEODROP_DERIVE_TIMEOUT) for any
    child, and ``per_media_second`` (VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND) more for
    each media second a full-decode pass reads (module docstring)."""

    base: float
    per_media_second: float = 0.0

    def of(self, full: FullDecode | None = None) -> float:
        """The deadline of a child (seconds); OSError when ``full``'s file is gone."""
        if full is None or full.seconds is None or not full.seconds > 0:  # NaN too
            return self.base
        return self.base + self.per_media_second * full.held()

    def longest(self, size: int) -> float:
        """The longest deadline any child reading a file of ``size`` bytes can get."""
        return self.base + self.per_media_second * seconds_held(size)


@dataclass(frozen=True)
class Frames:
    times: list[float]  # seconds, one per frame
    data: list[bytes]  # the frames' bytes, as many as times (or fewer: a cut-off pass)
    stderr: bytes = b""  # what ffmpeg logged


def input_args(path: Path | Source, *, keyframes: bool, start: float = 0.0,
               duration: float | None = None, autorotate: bool = True) -> list[str]:
    """The input of a pass over ``path``'s first video stream: keyframes only (packets
    not flagged as keyframes are dropped before they are read into a decoder, which skips
    any other non-key frame) or every frame, from ``start`` (seconds) for ``duration``.
    As for ffprobe (prober/ffprobe.py): the source's protocols only (:func:`_input`), and
    only the demuxers of the accepted containers; two decoding threads; the first output
    takes the video stream alone. A pass with a second output maps the stream again
    (:data:`VIDEO_ONLY`) with a ``-vf`` of its own (the stream is decoded once for both):
    a ``-filter_complex`` taking the stream would make ``-discard`` of no effect (ffmpeg
    5.1). ``autorotate`` False: the frames as coded (``-noautorotate``)."""
    source = as_source(path)
    args = [*_input(source), "-threads", "2"]
    if keyframes:  # the demuxer drops the other packets; the decoder skips what is left
        args += ["-discard", "nokey", "-skip_frame", "nokey"]
    if start > 0:
        args += ["-ss", f"{start:.3f}"]
    if duration is not None:
        args += ["-t", f"{duration:.3f}"]
    if not autorotate:
        args.append("-noautorotate")
    return [*args, "-i", source.url(), *VIDEO_ONLY]


def plain_input(path: Path | Source) -> list[str]:
    """``path`` as input #0, every stream: the source's protocols and the accepted
    containers' demuxers only (as :func:`input_args`)."""
    source = as_source(path)
    return [*_input(source), "-i", source.url()]


def turn(rotation: float) -> list[tuple[str, str]]:
    """The filters (name, arguments) that ffmpeg 5.1's autorotation inserts for a display
    matrix's ``rotation`` (degrees, counter-clockwise as ffprobe and PyAV give it)."""
    theta = -round(rotation)  # as fftools' get_rotation()
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return [("transpose", "clock")]
    if abs(theta - 180) < 1:
        return [("hflip", ""), ("vflip", "")]
    if abs(theta - 270) < 1:
        return [("transpose", "cclock")]
    return [("rotate", f"{theta:f}*PI/180")] if abs(theta) > 1 else []


def display_size(long_side: int) -> str:
    """Filters that apply the sample aspect ratio (square pixels) and bound the long side
    to ``long_side`` pixels without enlarging; ffmpeg applies the rotation itself."""
    return ",".join(f"{name}={arg}" for name, arg in display_filters(long_side))


def display_filters(long_side: int) -> list[tuple[str, str]]:
    """:func:`display_size` as (name, arguments) pairs, for a filter graph built by PyAV."""
    return [("scale", "w='trunc(iw*sar/2)*2':h='trunc(ih/2)*2'"), ("setsar", "1"),
            ("scale", f"w='min({long_side},iw)':h='min({long_side},ih)'"
                      ":force_original_aspect_ratio=decrease:force_divisible_by=2")]


class FFmpeg:
    """Runs ffmpeg (``binary``) under ``runner``, each child within ``deadline`` (a
    :class:`Deadline`, or seconds for every child alike)."""

    def __init__(self, binary: str, runner: ChildRunner, deadline: Deadline | float) -> None:
        self.binary = binary
        self.runner = runner
        self.deadline = deadline if isinstance(deadline, Deadline) else Deadline(deadline)

    def run(self, args: Sequence[str], *, on_stdout: Callable[[bytes], None] | None = None,
            full: FullDecode | None = None) -> Completed:
        """One child; :class:`Failed` when it timed out, met a limit or exited non-zero.
        :class:`ChildMissing` (transient: ffmpeg reinstalled) when it cannot be run.
        ``on_stdout`` gets stdout chunk by chunk (then ``stdout`` is empty). ``full``: the
        child decodes every frame of that media (its deadline grows with it)."""
        try:
            done = self.runner([self.binary, *PREAMBLE, *args], self.deadline.of(full),
                               on_stdout=on_stdout)
        except ChildTimeout as exc:
            raise Failed(Reason.TIMEOUT, f"ffmpeg timed out after {exc.timeout:g} s") from exc
        except ChildMissing:
            raise
        except ChildError as exc:
            raise Failed(Reason.FFMPEG_FAILED, f"ffmpeg could not run: {exc}") from exc
        if done.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or any(
                m in done.stderr for m in _OUT_OF_MEMORY):
            raise Failed(Reason.RESOURCE_LIMIT, "ffmpeg was stopped by a resource limit"
                         f" (exit {done.returncode}; VIDEODROP_CHILD_MEMORY or CPU time)")
        if done.returncode != 0 and _NO_FRAME in done.stderr:
            raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
        if done.returncode != 0:
            raise Failed(Reason.FFMPEG_FAILED,
                         f"ffmpeg exited with {done.returncode}: {last_error(done.stderr)}")
        return done

    def frames(self, args: Sequence[str], frame_bytes: int, *,
               full: FullDecode | None = None) -> Frames:
        """An analysis pass: ``args`` end in a filter chain with ``showinfo`` and raw
        frames of ``frame_bytes`` bytes each on ``pipe:1``; ``full`` as for :meth:`run`."""
        done = self.run(args, full=full)
        times = showinfo_times(done.stderr)
        data = [done.stdout[i:i + frame_bytes]
                for i in range(0, len(done.stdout) - frame_bytes + 1, frame_bytes)]
        n = min(len(times), len(data))
        return Frames(times[:n], data[:n], done.stderr)


def showinfo_times(stderr: bytes) -> list[float]:
    """The frame times ``showinfo`` logged, in order (seconds)."""
    return [float(m.group(1)) for m in _SHOWINFO.finditer(stderr)]


def last_error(stderr: bytes) -> str:
    """The last line ffmpeg logged that says something (not a frame's ``showinfo``, not
    its closing "Conversion failed!"), for a reason; URLs redacted (a presigned URL is a
    credential: derive/source.py)."""
    lines = [ln.strip() for ln in redacted(stderr.decode("utf-8", "replace")).splitlines()
             if ln.strip() and "showinfo" not in ln
             and ln.strip() not in _SAYS_NOTHING]
    return (lines[-1] if lines else "no message")[:300]


def version(binary: str, runner: ChildRunner) -> str:
    """``ffmpeg -version``'s first line; :class:`ChildMissing` when it cannot be run."""
    done = runner([binary, "-hide_banner", "-version"], 10)
    first = done.stdout.decode("utf-8", "replace").splitlines()
    return first[0] if first else "unknown"
