"""A ``copy`` clip written by the decoding child (api/frames/decoder.py) with PyAV: the
packets of whole GOPs remuxed into an MP4 with its index first, as the ffmpeg command
line of :meth:`api.frames.cut.Cutter.copy` (the fallback) writes them, without starting a
process. For ISO BMFF sources, whose every packet carries its decoding time and duration
(ffmpeg reckons those a demuxer leaves out, Matroska's, its own way, which this does not
repeat). It takes that command line's input options, seconds, and does what ffmpeg does
with them on a stream copy:

* ``seek`` (``-ss``): the demuxer seeks backward to it, all streams (None: the file is
  read from its first byte);
* ``offset`` (``-itsoffset``): every timestamp moves by ``offset`` less ``seek`` less the
  container's start (in microseconds, then rounded to each stream's time base);
* each stream starts at its first keyframe whose moved ``pts`` is at or after 0
  (``-copypriorss 0``);
* ``video_until``, ``audio_until`` (``-t`` of each input): a stream stops at its first
  packet whose moved decoding time reaches it (None: the end).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

__all__ = ["copy_clip"]

_US = Fraction(1, 1_000_000)


def _us(seconds: float) -> int:
    """Microseconds as ffmpeg parses the command line's 6-decimal seconds."""
    return round(Fraction(f"{seconds:.6f}") * 1_000_000)


def _rescale(value: int, source: Fraction, target: Fraction) -> int:
    """av_rescale_q: ``value`` in ``source`` units to ``target`` units, to the nearest
    (halves away from zero)."""
    exact = value * source / target
    whole = int(abs(exact) + Fraction(1, 2))
    return whole if exact >= 0 else -whole


def copy_clip(container: Any, out: str, *, seek: float | None, offset: float,
              video_until: float | None, audio_until: float | None) -> None:
    """Write the clip to the file ``out`` (MP4, ``+faststart``) from ``container`` (open;
    at its first byte when ``seek`` is None), the options as the module docstring says;
    ``audio_until`` None: no audio, else the first audio stream's, copied. ValueError (no
    keyframe to start at), av.FFmpegError, OSError (``EFBIG``: the file-size limit)."""
    video = container.streams.video[0]
    sound = (container.streams.audio[0]
             if audio_until is not None and container.streams.audio else None)
    start = container.start_time or 0  # µs
    shift = _us(offset) - (0 if seek is None else _us(seek)) - start
    if seek is not None:
        container.seek(_us(seek) + start, backward=True)
    video_limit = None if video_until is None else _us(video_until)
    limits = {video.index: video_limit}
    streams = [video]
    if sound is not None:
        limits[sound.index] = _us(audio_until or 0.0)
        streams.append(sound)
    started: set[int] = set()
    done: set[int] = set()
    with av.open(out, "w", format="mp4", options={"movflags": "+faststart"}) as output:
        made = {s.index: output.add_stream_from_template(s) for s in streams}
        for packet in container.demux(*streams):
            index = packet.stream.index
            if packet.size == 0 or index in done:
                continue
            base = Fraction(packet.stream.time_base)
            moved = _rescale(shift, _US, base)
            pts = None if packet.pts is None else packet.pts + moved
            dts = None if packet.dts is None else packet.dts + moved
            if index not in started:
                if not packet.is_keyframe or pts is None or pts < 0:
                    continue
                started.add(index)
            limit = limits[index]
            when = dts if dts is not None else pts
            if limit is not None and when is not None and _rescale(when, base, _US) >= limit:
                done.add(index)
                if len(done) == len(streams):
                    break
                continue
            packet.pts, packet.dts = pts, dts
            packet.stream = made[index]
            output.mux(packet)
        if video.index not in started:
            raise ValueError("no keyframe to start the clip at")
