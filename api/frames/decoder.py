"""The decoding child of the frame endpoints (``python -m api.frames.decoder``): one
long-lived process that keeps the last :data:`KEPT` inputs open and answers, one at a
time, requests for exact frames (api/frames/decoders.py starts it under resource limits,
gives each request a deadline and kills it past that).

Protocol, on its stdin and stdout: a request is one JSON line ``{"path", "start",
"seek", "time", "ahead", "width", "raw", "format"}`` (seconds on the API's timeline,
api/frames/timeline.py; ``time``, optional: the wanted frame's; ``ahead``, optional: a
later frame of the same input follows at once; ``format``: ``jpeg``, ``png`` or
``ppm``) for a local file, or for
an object of an s3 store ``{"key", "stamp", "url", "expires", "until", …}`` in place of
``"path"``: the input is kept by its ``key`` (and ``stamp``, the object's size and ETag),
read through the presigned ``url`` (the protocols :data:`REMOTE_PROTOCOLS` for that input
only), and opened afresh with the request's ``url`` once the kept one's ``expires``
(``time.time()``) is less than :data:`RENEW_MARGIN` seconds after ``until``, the request's
end: a URL never expires while it is read. The answer is one JSON
line, ``{"ok": true, "time": <the frame's time, s>, "size": <bytes>, "cpu": <the
child's CPU seconds so far>}`` followed by ``size`` bytes of the picture, or ``{"ok":
false, "reason": "decode_failed", "sentence": …}``.

A ``copy`` clip (api/frames/remux.py) is the request ``{"op": "copy", "out", "seek",
"offset", "video_until", "audio_until"}`` with the input's fields as above: the clip is
written to the file ``out`` (the child's file-size limit bounds it) and the answer is
``{"ok": true, "size": 0, …}`` (``reason`` ``too_large`` at the file-size limit).

The frame: decoding starts at the last keyframe at or before ``start`` (the demuxer's
backward seek, as ffmpeg's ``-noaccurate_seek -ss`` before ``-i``; ``start`` 0: from the
beginning of the file) and the first frame whose time is at or after ``seek`` is the one
served (the caller checks its time). When the input's decoder already stands past
``start`` and before ``seek`` (frames asked in order), it goes on from there without
seeking. Frames that no other frame refers to and that are shown before ``seek`` are not
decoded (``skip_frame`` ``NONREF``): nothing served depends on them.

A decoder outputs a frame only once it knows no frame decoded later is shown before it
(B-frames' reordering; frame threads add their own delay): the frames decoded after the
wanted one for that are wasted when the next request seeks elsewhere. So, given the
wanted frame's ``time``, a request that does not follow the last one (frames asked in
order) and has no ``ahead`` drains the decoder (end of stream) as soon as the wanted
frame's packet is sent and the next packet is another picture (a pts of its own: never
between the two fields of a frame), and the frames it holds come out at once. A drained
decoder seeks for the next request; a request that would have gone on from the last one
does not drain, so that a run of frames asked in order goes on from its second frame.

The picture: as ffmpeg's command line draws it (api/frames/extract.py's filters): the
display matrix's rotation (unless ``raw``), the sample aspect ratio made square (unless
``raw``), the width; JPEG (mjpeg, quantiser 2; its chroma sampled as the frame's: 4:2:0
(yuvj420p) for a 4:2:0 frame, else 4:4:4, never coarser than the source), PNG (rgb24) or
binary PPM.
"""

from __future__ import annotations

import collections
import errno
import itertools
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from api.frames.remux import copy_clip
from api.frames.source import REMOTE_PROTOCOLS, redacted
from videodrop.filtering import through
from videodrop.formats import DEMUXERS
from videodrop.kept_child import serve

#: Inputs kept open by one child (each holds its demuxer and decoder: ~30 MB for 1080p).
KEPT = 4
#: What the input may be: the file protocol and the accepted demuxers only.
OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(sorted(DEMUXERS))}
#: An object's input: its presigned URL over HTTP(S), the accepted demuxers only.
REMOTE_OPTIONS = {**OPEN_OPTIONS, "protocol_whitelist": REMOTE_PROTOCOLS}
#: Seconds a kept input's URL must outlive the request's end to be read again.
RENEW_MARGIN = 60.0


@dataclass(frozen=True)
class Wanted:
    """The input of one request: ``key`` (what it is kept by: a file's path, an object's
    key), the ``url`` to open it with, ``options`` (av.open's), when that URL ``expires``
    and when the request ``until`` (``time.time()``; inf for a file), and the object's
    ``stamp`` (None for a file: its size and modification time are read at each use)."""

    key: str
    url: str
    options: dict[str, str]
    expires: float = float("inf")
    until: float = 0.0
    stamp: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, request: dict[str, Any]) -> Wanted:
        if "path" in request:
            path = str(request["path"])
            return cls(path, f"file:{path}", OPEN_OPTIONS)
        return cls(str(request["key"]), str(request["url"]), REMOTE_OPTIONS,
                   float(request["expires"]), float(request["until"]),
                   tuple(request["stamp"]))

    def current(self) -> tuple[Any, ...]:
        """The version of the input now: OSError when a file is gone."""
        if self.stamp is not None:
            return self.stamp
        stat = os.stat(self.key)
        return stat.st_size, stat.st_mtime_ns


class Failed(Exception):
    """No frame: the sentence says why."""


@dataclass
class Opened:
    """One input kept open: its ``stamp`` (a file's size and mtime, an object's size and
    ETag), container, video stream, the container's start (s), the frames decoded and not
    yet served, the time of the last frame served (None: none since the last seek), and
    when the URL it was opened with expires (``time.time()``; inf for a file)."""

    stamp: tuple[Any, ...]
    container: Any
    stream: Any
    start: float
    pending: collections.deque[Any] = field(default_factory=collections.deque)
    packets: Any = None
    last: float | None = None
    ended: bool = False
    expires: float = float("inf")


class Inputs:
    """The inputs kept open, the least recently used closed first."""

    def __init__(self) -> None:
        self.opened: OrderedDict[str, Opened] = OrderedDict()

    def get(self, wanted: Wanted) -> Opened:
        """The input ``wanted``, kept open while its version is the same and its URL
        outlives the request by :data:`RENEW_MARGIN` s; else opened afresh."""
        stamp = wanted.current()
        found = self.opened.pop(wanted.key, None)
        if (found is not None and found.stamp == stamp
                and found.expires >= wanted.until + RENEW_MARGIN):
            self.opened[wanted.key] = found
            return found
        if found is not None:
            found.container.close()
        one = self.open(wanted, stamp)
        self.opened[wanted.key] = one
        while len(self.opened) > KEPT:
            _, old = self.opened.popitem(last=False)
            old.container.close()
        return one

    def drop(self, key: str) -> None:
        found = self.opened.pop(key, None)
        if found is not None:
            found.container.close()

    @staticmethod
    def open(wanted: Wanted, stamp: tuple[Any, ...]) -> Opened:
        container = av.open(wanted.url, options=wanted.options)
        if not container.streams.video:
            container.close()
            raise Failed("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2
        start = container.start_time / 1e6 if container.start_time is not None else 0.0
        one = Opened(stamp, container, stream, start, expires=wanted.expires)
        one.packets = container.demux(stream)
        return one


def frame_at(inputs: Inputs, wanted: Wanted, start: float, seek: float, *,
             time: float | None = None, ahead: bool = False) -> tuple[Any, float]:
    """(the first frame at or after ``seek`` s, its time), decoding from the keyframe at
    or before ``start`` s; ``time``: the wanted frame's (s; None: unknown, the decoder is
    never drained), ``ahead``: keep the decoder going (the module docstring)."""
    one = inputs.get(wanted)
    follows = one.last is not None and one.last < seek and start <= one.last
    if one.ended or not follows:
        one = landed(inputs, wanted, start)
    drain = time is not None and not follows and not ahead
    near = min(1e-4, (time - seek) / 2) if time is not None else 0.0
    sent = False  # the wanted frame's packet was sent (when draining)
    stream, context = one.stream, one.stream.codec_context
    base = Fraction(stream.time_base)
    while True:
        while one.pending:
            frame = one.pending.popleft()
            if frame.pts is None:
                continue
            shown = float(frame.pts * base) - one.start
            if shown >= seek - 1e-9:
                one.last = shown
                return frame, shown
        if one.ended:
            raise Failed("no frame was decoded at this time")
        packet = next(one.packets, None)
        at = (None if packet is None or packet.pts is None
              else float(packet.pts * base) - one.start)
        the_one = at is not None and time is not None and abs(at - time) <= near
        if packet is None or packet.size == 0 or (sent and at is not None and not the_one):
            # the end, or (draining) the picture after the wanted one: not sent; the
            # frames the decoder holds come out
            one.ended = True
            one.pending.extend(context.decode(None))
            continue
        if at is not None:
            context.skip_frame = "NONREF" if at < seek else "DEFAULT"
        one.pending.extend(context.decode(packet))
        sent = sent or (drain and the_one)


def landed(inputs: Inputs, wanted: Wanted, start: float) -> Opened:
    """The input, its demuxer at a keyframe shown at or before ``start`` s (its packets
    from there), or at the file's first byte when ``start`` is 0 or no such keyframe is
    found. A demuxer's seek may land on a packet that is no keyframe (MPEG-TS: the
    packet nearest the time) or on a keyframe after the time: then it seeks again,
    earlier each time (1, 2, 4… s), and drops the packets before the keyframe."""
    back = 0.0
    while True:
        target = start - back
        if target <= 0:
            inputs.drop(wanted.key)  # from the first byte, as a fresh demuxer reads it
            return inputs.get(wanted)
        one = inputs.get(wanted)
        one.container.seek(round(target * 1e6) + round(one.start * 1e6), backward=True)
        one.pending.clear()
        one.ended, one.last = False, None
        base = Fraction(one.stream.time_base)
        packets = one.container.demux(one.stream)
        for packet in packets:
            if packet.size == 0:
                break  # the end before a keyframe
            if packet.is_keyframe and packet.pts is not None:
                if float(packet.pts * base) - one.start <= start + 1e-6:
                    one.packets = itertools.chain([packet], packets)
                    return one
                break
        back = max(1.0, 2 * back)


def filters(frame: Any, stream: Any, width: int, raw: bool, fmt: str) -> list[tuple[str, str]]:
    """The filter chain (name, arguments) of ffmpeg's command line for this picture."""
    chain: list[tuple[str, str]] = []
    if not raw:
        theta = -round(frame.rotation or 0.0)
        theta -= 360 * ((theta + 0.9) // 360)
        if abs(theta - 90) < 1:
            chain.append(("transpose", "clock"))
        elif abs(theta - 180) < 1:
            chain += [("hflip", ""), ("vflip", "")]
        elif abs(theta - 270) < 1:
            chain.append(("transpose", "cclock"))
        elif abs(theta) > 1:
            chain.append(("rotate", f"{theta}*PI/180"))
        chain += [("scale", "w='if(eq(sar,1),iw,2*trunc(iw*sar/2))':h=ih"), ("setsar", "1")]
    chain.append(("scale", f"w='min({width},iw)'"
                           f":h='if(gte({width},iw),ih,max(2,2*trunc({width}*ih/iw/2)))'"))
    chain.append(("format", jpeg_format(frame) if fmt == "jpeg" else "rgb24"))
    return chain


def jpeg_format(frame: Any) -> str:
    """The JPEG's pixel format for ``frame``: ``yuvj420p`` when its chroma is 4:2:0 (a
    4:4:4 JPEG would add no chroma detail, only interpolated samples to encode and send), else
    ``yuvj444p`` (4:2:2, 4:1:1, RGB…: no chroma resolution lost, whatever the rotation)."""
    form = frame.format
    if not form.is_rgb and form.chroma_width(16) == 8 and form.chroma_height(16) == 8:
        return "yuvj420p"
    return "yuvj444p"


def drawn(frame: Any, stream: Any, width: int, raw: bool, fmt: str) -> Any:
    """The frame through :func:`filters`."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return through(frame, sar, filters(frame, stream, width, raw, fmt))


def encoded(picture: Any, fmt: str) -> bytes:
    """``picture`` (:func:`jpeg_format`'s for jpeg, else rgb24) as ``fmt``."""
    if fmt == "ppm":
        plane, row = picture.planes[0], picture.width * 3
        data = bytes(plane)
        if plane.line_size != row:
            data = b"".join(data[y * plane.line_size:y * plane.line_size + row]
                            for y in range(picture.height))
        return f"P6\n{picture.width} {picture.height}\n255\n".encode() + data[:row * picture.height]
    codec = av.CodecContext.create("mjpeg" if fmt == "jpeg" else "png", "w")
    codec.width, codec.height = picture.width, picture.height
    codec.pix_fmt = picture.format.name
    codec.time_base = Fraction(1, 25)
    if fmt == "jpeg":  # ffmpeg's -q:v 2: a fixed quantiser of 2 (qmin's default)
        codec.options = {"flags": "+qscale", "global_quality": str(2 * 118)}
    return b"".join(bytes(p) for p in [*codec.encode(picture), *codec.encode(None)])


def picture(inputs: Inputs, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A picture request's answer: ``{"time", "size"}`` and the picture's bytes."""
    wanted = Wanted.of(request)
    wanted_time = request.get("time")
    frame, shown = frame_at(inputs, wanted, float(request["start"]), float(request["seek"]),
                            time=None if wanted_time is None else float(wanted_time),
                            ahead=bool(request.get("ahead", False)))
    stream = inputs.opened[wanted.key].stream
    data = encoded(drawn(frame, stream, int(request["width"]), bool(request["raw"]),
                         str(request["format"])), str(request["format"]))
    return {"time": shown, "size": len(data)}, data


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def clip(inputs: Inputs, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A ``copy`` clip request's answer (api/frames/remux.py): no bytes. The input read
    from ``seek`` (or its first byte) is left for the next picture to seek in."""
    wanted = Wanted.of(request)
    seek = _seconds(request["seek"])
    if seek is None:
        inputs.drop(wanted.key)  # from the first byte, as a fresh demuxer reads it
    one = inputs.get(wanted)
    one.pending.clear()
    one.ended, one.last = False, None
    copy_clip(one.container, str(request["out"]), seek=seek,
              offset=float(request["offset"]), video_until=_seconds(request["video_until"]),
              audio_until=_seconds(request["audio_until"]))
    return {"size": 0}, b""


def answer(inputs: Inputs, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """One request's answer (the protocol of the module docstring): a picture, or a clip
    when ``op`` is ``copy``. A failure while other inputs are open is tried once more with
    them closed: near the child's address-space limit (VIDEODROP_CHILD_MEMORY) libav
    fails in many ways (no memory, no thread, "invalid data"), and the inputs kept open
    are what a request can give back. A clip that reaches the child's file-size limit
    fails with ``too_large`` at once."""
    work = clip if request.get("op") == "copy" else picture
    while True:
        try:
            head, data = work(inputs, request)
        except (Failed, av.FFmpegError, OSError, ValueError, MemoryError) as exc:
            key = str(request.get("path", request.get("key")))
            others = [k for k in inputs.opened if k != key]
            for each in [*others, key]:
                inputs.drop(each)
            full = getattr(exc, "errno", None) == errno.EFBIG
            if others and not full:
                continue
            reason = ("resource_limit" if isinstance(exc, MemoryError) else
                      "too_large" if full else "decode_failed")
            return {"ok": False, "reason": reason, "sentence": redacted(str(exc))[:300]}, b""
        return {"ok": True, **head}, data


def main() -> None:
    """Answer requests on stdin until it closes (videodrop.kept_child.serve)."""
    inputs = Inputs()
    serve(lambda request: answer(inputs, request))


if __name__ == "__main__":
    main()
