"""Clips of a video: which frames a cut holds (read from the timeline of
:mod:`api.frames.timeline`), and the ffmpeg that writes them as an MP4 file.

Times are the timeline's (seconds, the container's start removed). A :class:`Span` is
the frames a clip holds, consecutive in presentation order.

* ``copy`` (:func:`copy_span`, :meth:`Cutter.copy`): whole GOPs, stream copy. The clip
  starts at the last keyframe shown at or before ``start`` (the first keyframe when
  ``start`` is before it) and ends where the first keyframe at or after ``end`` starts (the
  stream's end when there is none). ffmpeg seeks to that keyframe, drops every packet
  shown before it (an earlier keyframe a demuxer landed on; an open GOP's leading frames)
  and copies the packets decoded before the keyframe that ends the span. For a source in
  :data:`DURATIONS_KEPT`, a decoding child of the clip endpoint does the same with the
  same options and no process started (api/frames/remux.py), ffmpeg when it cannot. The
  file ffmpeg wrote from another container is then listed (ffprobe, no decoding) and the
  frames it shows counted: a container that keeps no packet durations (Matroska) leaves
  the last frame without one, which an MP4 edit list then hides; the span is shortened to
  what is shown. (Not for the containers of :data:`DURATIONS_KEPT`, whose every sample
  has a duration.)
* ``exact`` (:func:`exact_span`, :meth:`Cutter.exact`): exactly the frames whose time is
  in ``[start, end)``, re-encoded (H.264, and AAC for the audio): decoding starts at the
  keyframe the frame endpoint would seek to for the first frame (its references, open
  GOPs included), ``select`` keeps the frames from a time between the first frame and the
  one before it, and ``-frames:v`` stops after the last. Each frame keeps its duration
  (``-fps_mode passthrough``, the input stream's time base), the last one until the span's
  end (:func:`lasting`). An odd width or height is
  padded to even (4:2:0) with a black column or row at the right or the bottom.

The audio (the first audio stream, if any) covers the same span: copied by ``copy``
when MP4 carries its codec, else encoded to AAC; trimmed by ``exact``. Errors:
:class:`~api.frames.extract.FrameFailed` (``too_large`` when the file reaches the
runner's size limit), :class:`~api.frames.timeline.PastTheEnd`, :class:`NoFrames`,
:class:`NoKeyframe`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from api.frames.decoders import CopyRequest, DecodeFailed
from api.frames.extract import FrameFailed, Frames
from api.frames.timeline import MARGIN, ROUNDING, Chosen, PastTheEnd, Timeline
from videodrop.children import ChildError

__all__ = ["AAC", "DURATIONS_KEPT", "MP4_AUDIO", "MP4_OUTPUT", "MP4_VIDEO", "Cutter", "NoFrames",
           "NoKeyframe", "Span", "copy_span", "exact_span", "lasting"]

#: Containers (``file_info.format``) that store every sample's duration (ISO BMFF's
#: ``stts``): a copy of theirs shows every frame copied, so the clip is not listed again.
DURATIONS_KEPT = frozenset({"mp4", "m4v", "mov", "3gp"})
#: Audio codecs a ``copy`` clip keeps as they are (MP4 carries them); others become AAC.
MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"})
#: Video codecs (``file_info.codec``) ffmpeg's MP4 muxer carries, which ``copy`` can cut;
#: others (VP8, VP6, WMV, Theora…) only ``exact``.
MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg1video", "mpeg2video",
                       "mjpeg"})
_VIDEO = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p")
#: The audio of an ``exact`` clip (and of a ``copy`` one whose codec MP4 cannot carry).
AAC = ("-c:a", "aac", "-b:a", "160k")
#: Where a copied clip's first keyframe lands (seconds after 0): never before 0 whatever
#: the rounding of timestamps to microseconds, so it is never dropped as shown before it.
_LANDING = MARGIN / 2
#: 4:2:0 needs an even width and height: an odd one gets one black column (row) at the
#: right (bottom), every pixel of the source kept at its place.
_EVEN = "pad=w=ceil(iw/2)*2:h=ceil(ih/2)*2:x=0:y=0"
#: Every clip's output options: its streams only, an MP4 with its index first.
MP4_OUTPUT = ("-sn", "-dn", "-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4", "-y")


def lasting(span: Span) -> tuple[str, str]:
    """The output option that makes the last frame of an ``exact`` clip of ``span`` last
    until the span's end (``span.end``, the next frame's time or the stream's end): every
    video packet is given the time from its own to the end as its duration. The MP4 muxer
    keeps durations only for the end of the clip: the edit list ends at the latest packet
    time plus duration, and the last sample of ``stts`` lasts what its packet says (the
    others, until the next one's decoding time). Without it the last frame lasted what a
    packet said that was not its own (libx264 gives a frame's duration to the packet it
    outputs then, B-frames reordered) or 1 tick (MPEG-TS, which the stitched pieces are
    joined from, carries no durations). ``pts`` and ``dts`` are named: ffmpeg 5.1's
    ``setts`` sets both to its ``ts`` (the ``dts``) otherwise."""
    length = span.end - span.start
    return "-bsf:v", f"setts=pts=PTS:dts=DTS:duration=round({length:.6f}/TB)+STARTPTS-PTS"


class NoFrames(ValueError):
    """No frame's time is in ``[start, end)``."""


class NoKeyframe(ValueError):
    """``copy`` has no keyframe to cut at before ``end`` (or after it, in what was read)."""


@dataclass(frozen=True)
class Span:
    """The frames of a clip: ``count`` frames from index ``first``; ``start``: the first
    one's time, ``end``: the end of the last (the next frame's time, or the stream's end),
    seconds; ``cut``: ``copy``, the decoding time of the keyframe that ends the span
    (None: the stream's end)."""

    first: int
    count: int
    start: float
    end: float
    cut: float | None = None


def _time_of(line: Timeline, index: int) -> float:
    """The time of frame ``index``, or the stream's end when it is one past the last."""
    if index < len(line.times):
        return line.times[index]
    if line.end is None:
        raise ValueError("the packets read do not reach the end of the clip")
    return line.end


def _check_start(line: Timeline, start: float) -> None:
    if not line.times:
        raise NoFrames("the stream holds no frame")
    if line.end is not None and start >= line.end:
        raise PastTheEnd(start, line.end)


def exact_span(line: Timeline, start: float, end: float) -> Span:
    """The frames whose time is in ``[start, end)`` (seconds, ``start < end``; a bound
    within :data:`~api.frames.timeline.ROUNDING` of a frame's time is that time: a frame's
    time written with 6 decimals as ``start`` takes it, as ``end`` leaves it out)."""
    _check_start(line, start)
    first = bisect.bisect_left(line.times, start - ROUNDING)
    stop = bisect.bisect_left(line.times, end - ROUNDING)
    if stop <= first:
        raise NoFrames(f"no frame's time is in [{start:g}, {end:g}) s")
    return Span(first, stop - first, line.times[first], _time_of(line, stop))


def copy_span(line: Timeline, start: float, end: float) -> Span:
    """Whole GOPs from the last keyframe at or before ``start`` to the first at or after
    ``end`` (module docstring); :class:`NoKeyframe` when the stream has none before ``end``
    or the packets read hold none after it and do not reach the stream's end. A bound
    within :data:`~api.frames.timeline.ROUNDING` of a keyframe's time is that time (a
    keyframe's time written with 6 decimals starts the clip at it, or ends it there)."""
    _check_start(line, start)
    keys = line.keys
    a = max(0, bisect.bisect_right(keys, start + ROUNDING) - 1)
    b = bisect.bisect_left(keys, end - ROUNDING)
    if not keys or b <= a:
        raise NoKeyframe(f"no keyframe before {end:g} s to cut at: ask mode=exact")
    first = bisect.bisect_left(line.times, keys[a])
    cut = None
    if b < len(keys):
        stop = bisect.bisect_left(line.times, keys[b])
        cut = line.key_decoded[b]
    elif line.end is not None:
        stop = len(line.times)
    else:
        raise NoKeyframe(f"no keyframe after {end:g} s in the packets read")
    return Span(first, stop - first, line.times[first], _time_of(line, stop), cut)


class Cutter(Frames):
    """:class:`~api.frames.extract.Frames` that also writes clips (MP4) to a path."""

    def _ffmpeg(self, *args: str) -> list[str]:
        """ffmpeg's arguments: ``args`` hold each input of the original as
        :meth:`~api.frames.extract.Frames.input` gives it (its protocols with it)."""
        return [self.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
                *args]

    def copy_times(self, span: Span) -> tuple[float | None, float, float | None, float]:
        """The input options that read ``span`` (whole GOPs from :func:`copy_span`) by
        stream copy, seconds: (the seek, None: none; the offset; the video's duration,
        None: to the end; the audio's duration). A time t of the timeline lands at ``t -
        span.start + _LANDING`` (packets before the keyframe are dropped, with
        ``-copypriorss 0``, as shown before it); the video stops before the packet of the
        keyframe decoded at ``span.cut``, the audio at the span's end."""
        origin = span.start
        seek = origin + MARGIN if span.first > 0 else None
        offset = _LANDING + (MARGIN if seek is not None else -origin)
        # the ending keyframe's decoding time lands at cut - origin + _LANDING, give or
        # take the rounding to the stream's time base (1 ms in Matroska): stop before
        until = None if span.cut is None else span.cut - origin
        return seek, offset, until, span.end - origin + _LANDING

    def copy_input(self, span: Span) -> tuple[list[str], list[str], list[str]]:
        """:meth:`copy_times` as ffmpeg's input options: (the seek, the offset, the
        video's duration)."""
        seek, offset, until, _ = self.copy_times(span)
        return ([] if seek is None else ["-ss", f"{seek:.6f}"], ["-itsoffset", f"{offset:.6f}"],
                [] if until is None else ["-t", f"{until:.6f}"])

    def encode_input(self, span: Span, chosen: Chosen) -> tuple[list[str], list[str]]:
        """(the input options, the filters) that decode exactly the frames of ``span``
        (their first at time 0): decoding starts where ``chosen`` (the timeline's
        :class:`~api.frames.timeline.Chosen` of the span's first frame) says, ``select``
        keeps the frames from its ``seek`` on; stop after ``-frames:v span.count``."""
        origin = chosen.start
        seek = ["-noaccurate_seek", "-ss", f"{origin:.6f}"] if origin > 0 else []
        picks = [f"select='gte(t,{chosen.seek - origin:.6f})'"] if span.first > 0 else []
        return seek, [*picks, "setpts=PTS-STARTPTS"]

    def copy(self, line: Timeline, span: Span, out: Path, audio: str | None, *,
             container: str | None) -> Span:
        """Write ``span`` (from :func:`copy_span` of ``line``) to ``out`` by stream copy;
        ``audio``: the first audio stream's codec (None: no audio); ``container``: the
        source's (``file_info.format``). The span the file shows: its first ``count``
        frames or fewer (counted unless the source is in :data:`DURATIONS_KEPT`). Written
        by a decoding child (:meth:`remuxed`), else by ffmpeg (:meth:`copied_by_ffmpeg`):
        the same packets and timestamps either way."""
        if self.remuxed(span, out, audio, container):
            return span
        self.copied_by_ffmpeg(span, out, audio)
        if container in DURATIONS_KEPT:
            return span
        shown = self.shown(out)
        if shown == span.count:
            return span
        if not 0 < shown < span.count:
            raise FrameFailed("decode_failed", f"the stream copy shows {shown} frames, not"
                                               f" the {span.count} of the span")
        return Span(span.first, shown, span.start, _time_of(line, span.first + shown))

    def remuxed(self, span: Span, out: Path, audio: str | None, container: str | None
                ) -> bool:
        """Whether a decoding child (api/frames/remux.py, no process started) wrote the
        copy of ``span`` to ``out``: not without decoding children, nor for a source
        outside :data:`DURATIONS_KEPT` (whose every frame is then shown) or an audio codec
        to re-encode, nor when the remux failed (:meth:`copied_by_ffmpeg` then writes
        it). FrameFailed: ``timeout``, ``resource_limit``, ``too_large``."""
        if (self.decoders is None or container not in DURATIONS_KEPT
                or (audio is not None and audio not in MP4_AUDIO)):
            return False
        seek, offset, until, audio_until = self.copy_times(span)
        request = CopyRequest(self.source, out, seek, offset, until,
                              None if audio is None else audio_until)
        try:
            self.decoders.copy(request, self.deadline)
        except DecodeFailed as exc:
            if exc.reason != "decode_failed":
                raise FrameFailed(exc.reason, f"copying: {exc}") from exc
            return False
        except (ChildError, OSError):
            return False
        return True

    def copied_by_ffmpeg(self, span: Span, out: Path, audio: str | None) -> None:
        """Write the copy of ``span`` to ``out`` with ffmpeg (its input options from
        :meth:`copy_input`). The video is read up to (not including) the packet of the
        keyframe that ends the span: the input's ``-t`` stops a copied stream at the first
        packet whose decoding time reaches it. (``-frames:v`` would end the whole file
        there, the audio with it, though the audio's packets run ahead of the video's
        decoding times by the B-frames' delay.) The audio, from a second reading of the
        file, is read up to the span's end."""
        # a time t of the timeline lands at t - span.start + _LANDING in the clip (audio
        # before the first frame included: it is dropped as shown before the clip)
        seek, offset, until = self.copy_input(span)
        second = ([] if audio is None else
                  [*seek, *offset, "-t", f"{self.copy_times(span)[3]:.6f}", *self.input()])
        sound = ["-an"] if audio is None else ["-map", "1:a:0?", *(
            ["-c:a", "copy"] if audio in MP4_AUDIO else AAC)]
        self._run(self._ffmpeg(
            *seek, *offset, *until, *self.input(), *second,
            "-map", "0:v:0", "-c:v", "copy", *sound, "-copypriorss", "0", *MP4_OUTPUT,
            f"file:{out}"), "ffmpeg")

    def shown(self, out: Path) -> int:
        """How many video frames the MP4 ``out`` shows (ffprobe lists its packets, the
        ones its edit list discards excluded)."""
        listed = self._run([self.ffprobe, "-v", "error", "-select_streams", "v:0",
                            "-show_entries", "packet=flags", "-of", "csv", f"file:{out}"],
                           "ffprobe").stdout.decode("ascii", "replace")
        return sum(1 for row in listed.splitlines()
                   if row.startswith("packet,") and "D" not in row.split(",")[1])

    def exact(self, span: Span, chosen: Chosen, out: Path, audio: str | None) -> None:
        """Write ``span`` (from :func:`exact_span`) to ``out`` re-encoded; ``chosen``: the
        timeline's :class:`~api.frames.timeline.Chosen` for the span's first frame."""
        origin = chosen.start
        seek, picks = self.encode_input(span, chosen)
        trim = (["-af", f"atrim=start={max(0.0, span.start - origin):.6f}"
                 f":end={span.end - origin:.6f},asetpts=PTS-STARTPTS"] if audio else [])
        self._run(self._ffmpeg(
            "-threads", "2", *seek, *self.input(), "-map", "0:v:0",
            *(["-an"] if audio is None else ["-map", "0:a:0?", *AAC]),
            "-vf", ",".join([*picks, _EVEN]),
            *trim, "-frames:v", str(span.count), "-fps_mode", "passthrough",
            "-enc_time_base:v", "-1", *_VIDEO, "-threads", "2", *lasting(span), *MP4_OUTPUT,
            f"file:{out}"),
            "ffmpeg")
