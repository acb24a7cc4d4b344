"""Decoding frames at given times for the API: one ffprobe child lists the video stream's
packets when the video has no packet index yet (:mod:`api.frames.timeline` picks the
frame; api/frames/index.py reads the index), and the worker's decoding children
(api/frames/decoders.py, api/frames/decoder.py: long-lived, the input kept open) decode
each frame from the keyframe before it. ffprobe as every child of videodrop: an argument
list, the input and its protocols as :class:`~api.frames.source.Original` gives them
(``file:`` and the ``file`` protocol on the file store; a presigned URL and HTTP(S) for
that input only on s3), the accepted demuxers only, the deadline and resource limits of
:mod:`videodrop.children`; the decoding children likewise. A child's message is
redacted (no URL) before it becomes an error sentence.

The decoding: the demuxer jumps to the last keyframe at or before
:attr:`~api.frames.timeline.Chosen.start` (picked early enough for the frame's
references, open GOPs and B-frame reordering included; ffmpeg's own accurate seek cannot
be used: it starts decoding at the keyframe before the time asked, which in an open GOP
can be a keyframe shown *after* the frame wanted), the frames are decoded from there, and
the first one at or after :attr:`~api.frames.timeline.Chosen.seek`, a time strictly
between the frame wanted and the one before, is kept; its time is checked against the
one chosen.

Errors: :class:`FrameFailed` (ffprobe or the decoder failed, timed out or met a limit:
the sentence says which), :class:`~api.frames.timeline.PastTheEnd` and
:class:`~api.frames.timeline.NoTimestamps` from the timeline.
"""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from api.frames.decoders import DecodeFailed, Decoders, Request
from api.frames.source import Original, as_original, input_options, redacted
from api.frames.timeline import Chosen, Timeline, parse_packets
from videodrop.children import ChildError, ChildRunner, ChildTimeout, Completed

#: Image formats served (api/frames/decoder.py draws them): JPEG, PNG, and binary PPM
#: (raw RGB behind a small header, for ``.npy``).
FORMATS = ("jpeg", "png", "ppm")
#: Seconds read past the last time asked for, so that every packet presented before it
#: is read whatever the reordering of B-frames.
READ_AHEAD = 5.0
_PPM = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+255\s")


class FrameFailed(Exception):
    """A child failed: ``reason`` (``timeout``, ``resource_limit``, ``decode_failed``,
    ``too_large``: a child writing a file reached its runner's file-size limit)."""

    def __init__(self, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.reason = reason


@dataclass(frozen=True)
class Picture:
    """One frame, encoded (``data``) as ``format`` asked; ``chosen``: which frame."""

    chosen: Chosen
    data: bytes


@dataclass(frozen=True)
class Shape:
    """How frames are drawn: ``width`` px at most (the height follows the aspect ratio;
    never enlarged), ``raw``: as coded (no rotation, no sample aspect ratio applied)."""

    width: int
    raw: bool = False


class Frames:
    """Frames of the stored original ``source`` (a local file's path, or an
    :class:`~api.frames.source.Original`: ``path`` is its local file, None on s3), every
    child under ``runner`` with ``ffmpeg`` and ``ffprobe`` (binaries), pictures from
    ``decoders`` (None: this one draws none), and all of them done by ``deadline``
    (``time.monotonic``)."""

    def __init__(self, source: Path | Original, *, ffmpeg: str, ffprobe: str,
                 runner: ChildRunner, deadline: float, decoders: Decoders | None = None
                 ) -> None:
        self.source = as_original(source)
        self.path = self.source.path
        self.decoders = decoders
        self.ffmpeg = ffmpeg
        self.ffprobe = ffprobe
        self.runner = runner
        self.deadline = deadline

    def timeline(self, last: float) -> Timeline:
        """The frames' times up to ``last`` seconds (and a little beyond), or to the end
        of the stream when there is none after ``last``."""
        done = self._probe(f"%+{last + READ_AHEAD:.6f}")
        line = parse_packets(done.stdout.decode("ascii", "replace"), complete=False)
        if line.times and line.times[-1] > last:
            return line
        done = self._probe(None)  # read it all: its end is the end of the stream
        return parse_packets(done.stdout.decode("ascii", "replace"), complete=True)

    def _probe(self, interval: str | None) -> Completed:
        reading = ["-read_intervals", interval] if interval else []
        args = [self.ffprobe, "-v", "error", *input_options(self.source.protocols),
                "-select_streams", "v:0",
                "-show_entries", "format=start_time:stream=time_base:packet=pts,dts,duration,flags",
                "-of", "csv", *reading, self.input_url()]
        return self._run(args, "ffprobe")

    def input_url(self) -> str:
        """The original's URL for a child started now (``file:`` on the file store; a
        presigned URL outliving the deadline on s3)."""
        return self.source.url(2 * max(0.0, self.deadline - time.monotonic()))

    def input(self) -> list[str]:
        """The original as an ffmpeg input: its options (protocols for this input only,
        the accepted demuxers) and ``-i``."""
        return [*input_options(self.source.protocols), "-i", self.input_url()]

    def picture(self, chosen: Chosen, shape: Shape, fmt: str, then: Chosen | None = None
                ) -> Picture:
        """The frame ``chosen``, drawn as ``shape`` says, in ``fmt`` (:data:`FORMATS`);
        ``then``: the frame asked next, if known (when it can be decoded going on from
        this one, the decoding child keeps its decoder going for it)."""
        assert self.decoders is not None, "these Frames draw no picture"
        seek = chosen.seek if chosen.index > 0 else -1e9  # the first frame decoded
        ahead = then is not None and then.start <= chosen.time < then.seek
        request = Request(self.source, chosen.start, seek, shape.width, shape.raw, fmt,
                          time=chosen.time, ahead=ahead)
        try:
            got, data = self.decoders.picture(request, self.deadline)
        except DecodeFailed as exc:
            raise FrameFailed(exc.reason, f"decoding: {exc}") from exc
        except (ChildError, OSError) as exc:
            raise FrameFailed("decode_failed",
                              f"the decoder could not run: {redacted(str(exc))}") from exc
        if not data:
            raise FrameFailed("decode_failed", "no frame was decoded at this time")
        if abs(got - chosen.time) > max(1e-3, (chosen.time - chosen.seek) / 2):
            raise FrameFailed("decode_failed", f"the frame decoded is at {got:.6f} s,"
                                               f" not the one at {chosen.time:.6f} s")
        return Picture(chosen, data)

    def _run(self, args: list[str], name: str) -> Completed:
        left = self.deadline - time.monotonic()
        try:
            done = self.runner(args, left)
        except ChildTimeout as exc:
            raise FrameFailed("timeout", f"{name} did not finish in time") from exc
        except ChildError as exc:
            raise FrameFailed("decode_failed",
                              f"{name} could not run: {redacted(str(exc))}") from exc
        if done.returncode == -signal.SIGXFSZ:
            raise FrameFailed("too_large", f"{name}'s output reached its size limit")
        if done.returncode in (-signal.SIGKILL, -signal.SIGXCPU):
            raise FrameFailed("resource_limit", f"{name} was stopped by a resource limit")
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise FrameFailed("decode_failed", f"{name} exited with {done.returncode}: "
                                               + (redacted(lines[-1])[:200] if lines
                                                  else "no message"))
        return done


def ppm_pixels(data: bytes) -> tuple[int, int, bytes]:
    """(height, width, the rgb24 bytes) of a binary PPM (P6, 8 bits) as ffmpeg writes it."""
    head = _PPM.match(data)
    if head is None:
        raise FrameFailed("decode_failed", "ffmpeg wrote no PPM picture")
    width, height = int(head.group(1)), int(head.group(2))
    pixels = data[head.end():head.end() + width * height * 3]
    if len(pixels) != width * height * 3:
        raise FrameFailed("decode_failed", "ffmpeg's PPM picture is cut short")
    return height, width, pixels
