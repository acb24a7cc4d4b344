"""Header claims against what the packets in the file say. Pure: no I/O.

The numbers a record carries (duration, fps, frame count, bitrate) come from one source of
evidence, the packets ffprobe read (``packets.PacketSummary``): a header that agrees with
them within :data:`AGREE` is reported as written (its nominal values: 25 fps, 10.0 s);
one that does not loses, and a warning names both figures. A header that claims more than
the file holds is *truncated* when the file ends inside its data (the demuxer says so
while reading: :data:`TRUNCATION_SIGNS`), else merely *stale* (a file written to a pipe,
whose header was never rewritten: its data is complete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from prober.fields import as_float, as_int, as_rate, tag
from prober.packets import PacketSummary, time_bases

__all__ = ["AGREE", "TRUNCATION_SIGNS", "Timeline", "VideoCount", "count_video", "said_cut",
           "timeline"]

#: Shortest span of frames a rate is taken from (s): below it a count/seconds is noise.
MIN_SPAN = 1e-3
#: Header and content agree when they differ by at most this share (or AGREE_S seconds).
AGREE, AGREE_S = 0.01, 0.03
#: A "rate" this high that equals the time base's tick rate is the tick, not frames.
TICK_RATE = 1000
#: What libavformat's demuxers log when the file ends inside a packet or element.
TRUNCATION_SIGNS = ("partial file", "File ended prematurely", "Packet corrupt",
                    "Truncating packet", "truncated", "End of file")


@dataclass(frozen=True)
class Timeline:
    duration: float | None
    source: str | None  # "container" | "streams" | "packets"
    claimed: float | None  # what the header says
    held: float | None  # what the packets say (None: they were not read or are not timed)
    truncated: bool
    warning: str | None


@dataclass(frozen=True)
class VideoCount:
    """The main video stream: frames counted, the seconds they span, their rate."""

    frames: int | None
    seconds: float | None
    fps: float | None
    nominal: bool  # fps is the header's own value (it agrees with the count)
    bitrate: int | None
    warnings: list[str]


def agree(claimed: float, held: float) -> bool:
    return abs(claimed - held) <= max(AGREE * held, AGREE_S)


def timeline(
    fmt: Mapping[str, Any], streams: Sequence[Mapping[str, Any]], *, claimed: float | None,
    claimed_source: str | None, packets: PacketSummary | None, log: str,
) -> Timeline:
    """The duration to report, and a warning when the header and the packets disagree.

    When the last frame's length is unknown (``StreamPackets.open_end``: a single frame
    without a duration), the packets only bound the duration from below: a header that
    claims at least that much is believed, unless the demuxer said the file is cut."""
    held = _packet_span(fmt, streams, packets)
    open_end = (packets is not None and held is not None
                and _media_streams_open_ended(streams, packets))
    if open_end and claimed is not None and held is not None and claimed >= held \
            and not said_cut(log):
        return Timeline(claimed, claimed_source, claimed, held, False, None)
    if held is None or (claimed is not None and agree(claimed, held)):
        return Timeline(claimed, claimed_source, claimed, held, False, None)
    if claimed is None:
        return Timeline(held or None, "packets", None, held, False, None)
    truncated = claimed > held and said_cut(log)
    text = f"header claims {claimed:g} s; the file holds {held:g} s"
    return Timeline(held or None, "packets", claimed, held, truncated,
                    f"truncated: {text}" if truncated else text)


def _packet_span(fmt: Mapping[str, Any], streams: Sequence[Mapping[str, Any]],
          packets: PacketSummary | None) -> float | None:
    """Seconds the audio and video packets span (start of the first to end of the last)."""
    if packets is None:
        return None
    bases = time_bases({"streams": streams})
    spans = [span for s in streams if _is_media_stream(s)
             and (found := packets.streams.get(int(s.get("index", -1)))) is not None
             and (span := found.seconds(bases.get(int(s.get("index", -1))))) is not None]
    if not spans:
        return 0.0 if packets.full and not _has_media_packets(streams, packets) else None
    end = max(e for _, e in spans)
    start = min(s for s, _ in spans)
    if not packets.full:  # the tail alone: the start is the header's
        start = as_float(fmt.get("start_time")) or 0.0
    return round(max(end - start, 0.0), 6)


def count_video(stream: Mapping[str, Any], packets: PacketSummary | None,
                log: str = "", *, duration: float | None = None,
                cut: int = 0) -> VideoCount:
    """Frame count, the seconds the frames span and their rate, from the packets when they
    were all read; the header's values (unchecked) otherwise. ``duration`` (s): the file's,
    for a stream whose packets span no time (a single frame); ``cut``: packets at the end
    of a truncated file that do not decode (not frames)."""
    index = int(stream.get("index", -1))
    base = time_bases({"streams": [stream]}).get(index)
    nominal = _nominal(stream, base)
    header_frames = as_int(stream.get("nb_frames")) or as_int(tag(stream, "NUMBER_OF_FRAMES"))
    found = packets.streams.get(index) if packets is not None and packets.full else None
    span = found.seconds(base) if found is not None else None
    if found is not None and found.count == 1:  # one frame: it lasts what the file lasts
        fps = round(1 / duration, 3) if duration else None
        return VideoCount(1, duration, fps, False, round(found.size * 8 / duration)
                          if duration else None, [])
    if found is None or span is None or span[1] - span[0] < MIN_SPAN:
        fps = round(float(nominal), 3) if nominal else None
        return VideoCount(header_frames, as_float(stream.get("duration")), fps, True,
                          as_int(stream.get("bit_rate")), [])
    seconds = span[1] - span[0]
    frames = max(found.count - cut, 1)
    counted = frames / seconds
    warnings: list[str] = []
    # N frames in S seconds cannot tell rates apart by less than a frame over S seconds
    if nominal and abs(float(nominal) * seconds - frames) <= max(AGREE * frames,
                                                                       1) + 1e-6:
        fps, is_nominal = round(float(nominal), 3), True
    else:
        fps, is_nominal = round(counted, 3), False
        if nominal:
            warnings.append(f"header claims {float(nominal):g} fps; the file holds"
                            f" {frames} frames in {seconds:g} s ({counted:.3g} fps)")
    stored = found.count + found.discarded  # (an index lists the discarded packets too)
    if header_frames and abs(header_frames - stored) > AGREE * stored:
        said = header_frames > frames and said_cut(log)
        warnings.append(f"{'truncated: ' if said else ''}header claims {header_frames} frames;"
                        f" the file holds {frames}")
    return VideoCount(frames, round(seconds, 6), fps, is_nominal,
                      round(found.size * 8 / seconds), warnings)


def _nominal(stream: Mapping[str, Any], base: Fraction | None) -> Fraction | None:
    """The header's frame rate; not the tick of a millisecond time base, which ASF and FLV
    give as ``r_frame_rate`` when they know no rate (1000 fps)."""
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = as_rate(stream.get(key))
        if rate and not (base and rate * base == 1 and rate >= TICK_RATE):
            return rate
    return None


def _media_streams_open_ended(streams: Sequence[Mapping[str, Any]],
                              packets: PacketSummary) -> bool:
    """Every audio and video stream with packets ends in a frame of unknown length."""
    found = [packets.streams[i] for s in streams if _is_media_stream(s)
             and (i := int(s.get("index", -1))) in packets.streams]
    return bool(found) and all(f.open_end for f in found)


def said_cut(log: str) -> bool:
    """The demuxer said the file ends inside its data."""
    return any(sign in log for sign in TRUNCATION_SIGNS)


def _is_media_stream(stream: Mapping[str, Any]) -> bool:
    """An audio or video stream, not an attached picture (cover art)."""
    attached = (stream.get("disposition") or {}).get("attached_pic")
    return stream.get("codec_type") in {"audio", "video"} and not attached


def _has_media_packets(streams: Sequence[Mapping[str, Any]], packets: PacketSummary) -> bool:
    """Any audio or video stream (:func:`_is_media_stream`) has a packet."""
    return packets.count([int(s.get("index", -1)) for s in streams
                          if _is_media_stream(s)]) > 0
