"""The poster's child (``python -m derive.poster_child``): one long-lived process per
derive process that picks and draws posters with PyAV, one request at a time, so that a
poster costs its decoding only, not the start of one ffmpeg per pass (derive/posters.py
starts it under the limits of every child reading untrusted media, gives each request a
deadline and kills it past that).

Protocol, on its stdin and stdout: a request is one JSON line ``{"url", "protocols",
"duration", "seen"}`` (the input's URL and the protocols it may use, derive/source.py;
the probe's duration in seconds or null; ``seen``: the time, s, of a keyframe measured
already and chosen, or null). The answer is one JSON line ``{"ok": true, "time", "width",
"height", "decode", "mean_luma", "contrast", "size", "cpu"}`` followed by ``size`` bytes
of JPEG, or ``{"ok": false, "reason": <a Reason>, "sentence": …, "cpu"}``; ``cpu``: the
child's CPU seconds so far.

The choice is derive/poster.py's (its module docstring): keyframes of the window, at
least the candidates' spacing apart (the demuxer's packets read in order; a seek forward
when the next candidate is more than :data:`SEEK_AHEAD` s ahead), only keyframe packets
decoded; when none qualifies, every frame of the window's first ``FULL_SECONDS`` s at
the candidates' spacing. Each candidate is measured through ffmpeg's filters
(``poster.MEASURE``, then grey); the winner is drawn through the display matrix's
rotation and ``display_size``'s filters and encoded as ffmpeg's mjpeg at ``-q:v``
``poster.QUALITY``. Only the best frame so far is kept."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.stream import Discard

from derive.ffmpeg import Failed, Skipped, display_filters, turn
from derive.poster import (
    CANDIDATES,
    FEW_CANDIDATES,
    FULL_SECONDS,
    LONG_SIDE,
    MIN_SPACING,
    PROBE_H,
    PROBE_W,
    QUALITY,
    SEEK_MARGIN,
    UNTIMED_CANDIDATES,
    Candidate,
    measure,
    window,
)
from videodrop.derivatives import Reason
from videodrop.filtering import through
from videodrop.formats import DEMUXERS
from videodrop.kept_child import serve
from videodrop.storage import redact_urls

#: Seconds ahead of the packets read beyond which the next candidate is sought by a seek.
SEEK_AHEAD = 10.0
#: Seconds of packets read past the frames wanted: those shown earlier may come after.
REORDER = 1.0
_FORMATS = ",".join(sorted(DEMUXERS))
#: Options of the stream probe's decoders, for the first :data:`_PROBED` streams
#: (skip_frame would leave the frames without their display matrix).
_PROBE_OPTIONS = {"skip_loop_filter": "all"}
_PROBED = 16
_FF_QP2LAMBDA = 118  # libavcodec's quantiser-to-lambda factor (-q:v is global_quality/it)


@dataclass
class Best:
    """The best candidate so far and its frame (None: none usable yet)."""

    candidate: Candidate | None = None
    frame: Any = None
    looked: int = 0  # candidates measured

    def offer(self, candidate: Candidate, frame: Any) -> None:
        self.looked += 1
        if candidate.usable and (self.candidate is None
                                 or candidate.contrast > self.candidate.contrast):
            self.candidate, self.frame = candidate, frame


def measured(time: float, frame: Any) -> Candidate:
    """The candidate ``frame`` is: shrunk as ``poster.MEASURE``, grey, measured."""
    small = through(frame, None, [("scale", f"{PROBE_W}:{PROBE_H}:flags=area"),
                                   ("format", "gray")])
    plane = small.planes[0]
    data = bytes(plane)
    rows = b"".join(data[y * plane.line_size:y * plane.line_size + PROBE_W]
                    for y in range(PROBE_H))
    return measure(time, rows)


def drawn(frame: Any, sar: Fraction | None) -> tuple[bytes, int, int]:
    """(the poster's JPEG, its width, its height): ``frame`` turned as displayed, its
    pixels made square, its long side at most ``LONG_SIDE`` px."""
    rotation = frame.rotation or 0.0
    picture = through(frame, sar, [*turn(rotation), *display_filters(LONG_SIDE),
                                    ("format", "yuvj420p")])
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = picture.width, picture.height
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"flags": "+qscale", "global_quality": str(QUALITY * _FF_QP2LAMBDA)}
    data = b"".join(bytes(p) for p in [*codec.encode(picture), *codec.encode(None)])
    return data, picture.width, picture.height


class Input:
    """An opened input's first video stream, read packet by packet."""

    def __init__(self, url: str, protocols: str) -> None:
        self.url, self.protocols = url, protocols
        self.moved = False  # whether packets were read since the input was opened
        self._open()

    def _open(self) -> None:
        # the stream probe estimates no frame rate (unused here: it decodes frames of a
        # variable-rate video for seconds) and decodes its frames without the deblocking
        # filter (H.264 decodes up to 7 to guess its delay); the decoder's own keep it
        options = {"protocol_whitelist": self.protocols, "format_whitelist": _FORMATS,
                   "fpsprobesize": "0"}
        try:
            self.container = av.open(self.url, options=options,
                                     stream_options=[_PROBE_OPTIONS] * _PROBED)  # type: ignore[list-item]
        except ValueError:  # a format whose streams appear while probing (FLV)
            self.container = av.open(self.url, options=options)
        if not self.container.streams.video:
            self.container.close()
            raise Failed(Reason.FFMPEG_FAILED, "the file has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = 2
        self.base = Fraction(self.stream.time_base or Fraction(1, 90000))
        start = self.container.start_time
        self.origin = start / 1e6 if start is not None else 0.0  # s, the output's 0

    @property
    def sar(self) -> Fraction | None:
        """The sample aspect ratio as ffmpeg applies it: the container's, else the
        decoder's (known once a frame is decoded)."""
        return self.stream.sample_aspect_ratio or self.stream.codec_context.sample_aspect_ratio

    def close(self) -> None:
        self.container.close()

    def time(self, pts: int | None) -> float | None:
        """Seconds on the output timeline (ffmpeg's: the input's start removed)."""
        return None if pts is None else float(pts * self.base) - self.origin

    def seek(self, at: float) -> None:
        """The demuxer at the keyframe at or before ``at`` s (the decoder drained)."""
        self.stream.codec_context.flush_buffers()
        try:
            self.container.seek(max(0, round((at + self.origin) * 1e6)), backward=True)
        except (av.PermissionError, av.InvalidDataError, av.EOFError):
            # no index to seek by (an AVI without one): from the first byte again; the
            # callers skip what is shown before ``at``
            keyframes = self.stream.discard == Discard.nonkey
            self.container.close()
            self._open()
            self.keyframes_only(keyframes)

    def keyframes_only(self, only: bool) -> None:
        """Whether the packets that are not keyframes are dropped by the demuxer (as
        ffmpeg's ``-discard nokey``: the mp4 demuxer does not read them; others drop
        them after reading) and the decoder skips any other frame (``-skip_frame
        nokey``)."""
        self.stream.discard = Discard.nonkey if only else Discard.default
        self.stream.codec_context.skip_frame = "NONKEY" if only else "DEFAULT"

    def packets(self) -> Iterator[Any]:
        """The video stream's packets from here; as ffmpeg, the input ends at the first
        one that cannot be read."""
        demuxed = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demuxed)
            except (StopIteration, av.InvalidDataError, av.PermissionError, av.EOFError):
                return
            if packet.size:
                self.moved = True
                yield packet

    def packets_until(self, end: float) -> Iterator[Any]:
        """The packets from here to the first one shown at or after ``end`` s."""
        for packet in self.packets():
            time = self.time(packet.pts)
            if time is not None and time >= end:
                return
            yield packet

    def frames(self, packet: Any) -> list[Any]:
        """The frames decoding ``packet`` gives (None: the decoder's last ones); none when
        it does not decode (as ffmpeg, the next packets are decoded all the same)."""
        try:
            return list(self.stream.codec_context.decode(packet))
        except (av.InvalidDataError, av.PermissionError, av.ArgumentError):
            return []


def keyframes(source: Input, duration: float | None, best: Best) -> int:
    """Offer the window's keyframe candidates (derive/poster.py's spacing) to ``best``;
    the count decoded."""
    start, length = window(duration)
    span = length or duration or 0.0
    spacing = max(span / CANDIDATES, min(MIN_SPACING, span / FEW_CANDIDATES)) if span else 0.0
    most = CANDIDATES if duration else UNTIMED_CANDIDATES
    end = start + length if length is not None else math.inf
    source.keyframes_only(True)
    if start > 0 or source.moved:
        source.seek(start)
    chosen: float | None = None  # the last keyframe sent to the decoder
    count = 0

    def offer(frames: list[Any]) -> None:
        nonlocal count
        for frame in frames:
            time = source.time(frame.pts)
            if time is not None and count < most:
                count += 1
                best.offer(measured(time, frame), frame)

    sent = 0
    for packet in source.packets():
        time = source.time(packet.pts)
        if not packet.is_keyframe or time is None or time < start - 1e-6:
            continue
        if time >= end or sent >= most:
            break
        if chosen is not None and time - chosen < spacing - 1e-6:
            if chosen + spacing - time > SEEK_AHEAD:
                offer(source.frames(None))
                source.seek(chosen + spacing)  # the packets read on from there
            continue
        chosen = time
        sent += 1
        offer(source.frames(packet))
    offer(source.frames(None))
    return count


def every_frame(source: Input, duration: float | None, best: Best) -> int:
    """Offer every frame of the window's first ``FULL_SECONDS`` s, at the candidates'
    spacing, to ``best``; the count measured."""
    start, length = window(duration)
    length = min(length or duration or FULL_SECONDS, FULL_SECONDS)
    spacing = length / CANDIDATES
    source.keyframes_only(False)
    source.seek(start)
    last: float | None = None
    count = 0
    for packet in [*source.packets_until(start + length + REORDER), None]:
        for frame in source.frames(packet):
            time = source.time(frame.pts)
            if time is None or time < start - 1e-6 or time >= start + length:
                continue
            if count >= CANDIDATES or (last is not None and time - last < spacing - 1e-6):
                continue
            last = time
            count += 1
            best.offer(measured(time, frame), frame)
    return count


def keyframe_at(source: Input, at: float) -> tuple[float, Any] | None:
    """(time, frame) of the first keyframe at or after ``at`` s (a keyframe measured
    already; as an accurate seek to it), or None when none decodes."""
    source.keyframes_only(True)
    source.seek(max(0.0, at - SEEK_MARGIN))
    for packet in source.packets():
        time = source.time(packet.pts)
        if packet.is_keyframe and time is not None and time >= at - SEEK_MARGIN:
            frames = [*source.frames(packet), *source.frames(None)]
            if frames:
                return time, frames[0]
            return None
    return None


def search(source: Input, duration: float | None, best: Best) -> tuple[str, int]:
    """Offer the window's keyframes to ``best``, then, when none qualifies, every frame of
    its first seconds; (how the last pass decoded, the frames decoded in all)."""
    decoded = keyframes(source, duration, best)
    if best.candidate is not None:
        return "keyframes", decoded
    return "full", decoded + every_frame(source, duration, best)


def pick(source: Input, duration: float | None, seen: float | None) -> dict[str, Any]:
    """The poster's facts and its JPEG (``"jpeg"``); :class:`Skipped` as derive/poster.py."""
    if seen is not None:
        found = keyframe_at(source, seen)
        if found is not None:
            return _facts(Candidate(seen, 0.0, 0.0), found[1], source, "keyframes",
                          measured(seen, found[1]))
    best = Best()
    decode, decoded = search(source, duration, best)
    if not decoded and window(duration)[0] > 0:
        # no frame in the window: the picture stops before it (a video track shorter
        # than the sound, frames only at the start); the video's first keyframes, then
        # its first seconds, as for a video of unknown duration
        decode, decoded = search(source, None, best)
    if not decoded:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    if best.candidate is None:
        raise Skipped(Reason.NO_PICTURE, f"every frame looked at ({best.looked}: keyframes,"
                      f" then every frame of the first {FULL_SECONDS:g} s) is black,"
                      " white or uniform")
    return _facts(best.candidate, best.frame, source, decode, best.candidate)


def _facts(chosen: Candidate, frame: Any, source: Input, decode: str,
           looks: Candidate) -> dict[str, Any]:
    data, width, height = drawn(frame, source.sar)
    return {"time": round(chosen.time, 3), "width": width, "height": height,
            "decode": decode, "mean_luma": round(looks.mean, 1),
            "contrast": round(looks.contrast, 1), "jpeg": data}


def answer(request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """One request's answer (the protocol of the module docstring)."""
    source: Input | None = None
    try:
        source = Input(str(request["url"]), str(request["protocols"]))
        duration, seen = request.get("duration"), request.get("seen")
        facts = pick(source, float(duration) if duration else None,
                     None if seen is None else float(seen))
    except Failed as exc:
        return _failure(exc.reason, str(exc))
    except MemoryError:  # before FFmpegError: PyAV's ENOMEM (av.MemoryError) is both
        return _failure(Reason.RESOURCE_LIMIT, "the poster's child ran out of memory"
                        " (VIDEODROP_CHILD_MEMORY)")
    except (av.FFmpegError, OSError, ValueError) as exc:
        what = "the file cannot be read" if source is None else "decoding failed"
        return _failure(Reason.FFMPEG_FAILED, f"{what}: {exc}")
    finally:
        if source is not None:
            source.close()
    data = facts.pop("jpeg")
    return {"ok": True, **facts, "size": len(data)}, data


def _failure(reason: Reason, sentence: str) -> tuple[dict[str, Any], bytes]:
    return {"ok": False, "reason": str(reason), "sentence": redact_urls(sentence)[:300]}, b""


if __name__ == "__main__":
    serve(answer)
