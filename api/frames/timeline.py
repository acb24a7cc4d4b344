"""Which frame is shown at a time ``t``: the video stream's frames in presentation order,
read from its packets (no decoding), and the rule that picks one.

Time ``t`` (seconds) is on the timeline the other token endpoints use (the storyboard, the
scenes, the record's ``duration``): the container's start removed. A frame's time is
``pts * time_base - start`` where ``start`` is the container's ``start_time`` (the earliest
stream's first timestamp, ffprobe's ``format.start_time``, which is what ffmpeg's ``-ss``
counts from). An MP4 edit list is applied by the demuxer: packets it cuts off (flagged
``D``, decoded only to feed the decoder) are not frames; a shift it makes is in the pts.

The rule: the frame served at ``t`` is the last frame whose time is ``<= t`` (a time
within :data:`ROUNDING` of a frame's is that frame's: a time written with 6 decimals); for
``0 <= t`` before the first frame's time, the first frame (what a player shows from the
start). Past the last frame's end (its time plus its packet's duration, or the mean spacing
of the frames when the packet has none) there is no frame: :class:`PastTheEnd`.

A frame's index is its 0-based position in presentation order among the frames counted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["MARGIN", "ROUNDING", "Chosen", "NoTimestamps", "Packet", "PastTheEnd", "Timeline",
           "parse_packets", "timeline_of"]

#: Seconds between a keyframe's time and where decoding is asked to start (the rounding
#: of timestamps to microseconds in ffmpeg's seeks).
MARGIN = 0.001
#: Seconds a time given by a client may differ from a frame's time and still be that
#: frame's time: half the last digit of the 6 decimals the API writes times with
#: (``Video-Frame-Time``, ``Clip-Start``, the packet index's columns), and a hair for the
#: float's own rounding. A frame's time fed back as written names that frame, whichever
#: way it was rounded (frames are never that close together).
ROUNDING = 5e-7 + 1e-9


class NoTimestamps(ValueError):
    """The stream's packets carry no presentation timestamps (a raw elementary stream):
    frames cannot be placed in time without decoding the whole stream."""


class PastTheEnd(ValueError):
    """``t`` is at or after the end of the last frame; ``end`` (seconds) is that end."""

    def __init__(self, t: float, end: float) -> None:
        # t as asked (Python's shortest repr), never rounded to a time that is not past it
        super().__init__(f"t={t!r} s is past the last frame, which ends at {end:.6f} s")
        self.end = end


@dataclass(frozen=True)
class Chosen:
    """The frame served at a time: its ``index`` (presentation order, from 0), its ``time``
    (seconds, the timeline above); ``seek``: a time strictly between the previous frame's
    and this one's (0.0 for the first frame): the first frame at or after it is this one,
    whatever the rounding of either to microseconds; ``start``: where decoding may start
    (seconds; 0.0: from the beginning), such that a demuxer seeking to the last keyframe
    at or before it, by presentation or by decoding timestamps, lands on the last keyframe
    shown at or before this frame (or an earlier one): every frame this one depends on is
    decoded, also in an open GOP, whose leading frames are shown before their keyframe."""

    index: int
    time: float
    seek: float
    start: float = 0.0


@dataclass(frozen=True)
class Timeline:
    """The frames' times (seconds, sorted), and the last frame's end (None: the packets
    were not read to the end of the stream, so ``t`` past the frames read is not known to
    be past the end); ``keys``: the keyframes' times (sorted), ``key_decoded``: their
    decoding times (same order), ``delay``: the most a packet's presentation follows its
    decoding (seconds; B-frames' reordering); ``clean``: per keyframe (same order), whether
    the stream can be cut there: every packet before it in decoding order is shown before
    it and every packet after it at or after it (no leading frames of an open GOP, no
    frame of the GOP before shown after it); empty when not known."""

    times: list[float]
    end: float | None
    keys: list[float] = field(default_factory=list)
    delay: float = 0.0
    key_decoded: list[float] = field(default_factory=list)
    clean: list[bool] = field(default_factory=list)

    def at(self, t: float) -> Chosen:
        """The frame shown at ``t`` (seconds, ``>= 0``); :class:`PastTheEnd` after the last
        frame's end, :class:`ValueError` when there is no frame at all."""
        if not self.times:
            raise ValueError("the stream holds no frame")
        if self.end is not None and t >= self.end:
            raise PastTheEnd(t, self.end)
        if self.end is None and t > self.times[-1]:
            raise ValueError("the packets read do not reach t")
        index = max(0, bisect.bisect_right(self.times, t + ROUNDING) - 1)
        time = self.times[index]
        seek = 0.0 if index == 0 else (self.times[index - 1] + time) / 2
        key = bisect.bisect_right(self.keys, time) - 1
        if key < 0 or self.keys[key] <= self.times[0]:  # from the beginning
            return Chosen(index, time, seek, 0.0)
        # just after the keyframe's time: a demuxer seeking by either timestamp lands on
        # it, unless the next keyframe is decoded before that time (a GOP shorter than
        # the reordering): then early enough for any
        start = self.keys[key] + MARGIN
        if key + 1 < len(self.keys) and self.key_decoded[key + 1] <= start + MARGIN:
            start = self.keys[key] - self.delay - MARGIN
        return Chosen(index, time, seek, max(0.0, start))


#: One packet for :func:`timeline_of`: pts, dts, duration (ticks of the time base, None
#: when unknown), keyframe, discarded (cut off by an edit list).
Packet = tuple[int | None, int | None, int | None, bool, bool]


def parse_packets(csv: str, *, complete: bool) -> Timeline:
    """The timeline from ffprobe's ``-of csv`` lines of ``format=start_time``,
    ``stream=time_base`` and ``packet=pts,dts,duration,flags`` of one video stream (in any
    order; ``format,<s>``, ``stream,<a/b>``, ``packet,<pts>,<dts>,<duration>,<flags>``, each
    perhaps followed by ``,side_data,…``; other lines are ignored).
    ``complete``: the packets were read to the end of the stream (then the last frame's end
    is known). :class:`NoTimestamps` when a packet has no pts."""
    start = Fraction(0)
    base: Fraction | None = None
    packets: list[Packet] = []
    for line in csv.splitlines():
        kind, _, rest = line.strip().partition(",")
        first = rest.split(",")[0]  # side data may follow (",side_data,")
        if kind == "format" and first not in ("", "N/A"):
            start = Fraction(first)
        elif kind == "stream" and "/" in first:
            num, _, den = first.partition("/")
            base = Fraction(int(num), int(den))
        elif kind == "packet":
            fields = rest.split(",")
            if len(fields) < 4:
                continue
            packets.append((None if fields[0] == "N/A" else int(fields[0]),
                            None if fields[1] == "N/A" else int(fields[1]),
                            None if fields[2] in ("", "N/A") else int(fields[2]),
                            "K" in fields[3], "D" in fields[3]))
    if base is None:
        raise ValueError("ffprobe named no time base for the video stream")
    return timeline_of(base, start, packets, complete=complete)


def timeline_of(base: Fraction, start: Fraction, packets: Iterable[Packet], *,
                complete: bool) -> Timeline:
    """The timeline of a stream whose time base is ``base`` and whose container starts
    at ``start`` seconds, from its ``packets`` (:data:`Packet`, file order) as ffprobe
    lists them or as the packet index stores them (videodrop/packets.py): both give the
    same timeline. ``complete``: as :func:`parse_packets`."""
    pts: list[int] = []
    keys: dict[int, int] = {}  # pts → dts
    delay = 0
    durations: dict[int, int] = {}
    order: list[int | None] = []  # every packet's pts, decoding (file) order
    where: dict[int, int] = {}  # a keyframe's pts → its place in ``order``
    for p, d, length, key, discarded in packets:
        order.append(p)
        if p is not None and d is not None:
            delay = max(delay, p - d)
        if discarded:  # cut off by an edit list: decoded, never shown
            continue
        if p is None:
            raise NoTimestamps("a packet of the video stream has no timestamp")
        pts.append(p)
        if key:
            keys[p] = d if d is not None else p
            where[p] = len(order) - 1
        if length is not None and length > 0:
            durations[p] = length
    pts = sorted(set(pts))
    # (p - start / base) * base as one division of integers: the float nearest the exact
    # time, as Fraction would give, a few times faster
    shift = start / base
    ticks = base.denominator * shift.denominator
    times = [(p * shift.denominator - shift.numerator) * base.numerator / ticks for p in pts]
    end = None
    if complete and pts:
        last = pts[-1]
        if last in durations:
            step = durations[last] * base
        elif len(pts) > 1:
            step = (last - pts[0]) * base / (len(pts) - 1)
        else:
            step = Fraction(0)
        end = float((last + 0) * base - start + step) if step else None
        if end is None:  # a single frame of unknown length: it is shown at its time only
            end = times[-1] + 1e-6
    ordered = sorted(keys)
    clean = _clean_cuts(order, where)
    return Timeline(times, end, [float(k * base - start) for k in ordered],
                    float(delay * base), [float(keys[k] * base - start) for k in ordered],
                    [clean[where[k]] for k in ordered])


def _clean_cuts(order: list[int | None], where: dict[int, int]) -> dict[int, bool]:
    """For each keyframe's place in ``order`` (pts in decoding order, None unknown):
    whether every pts before it is lower and every one after it higher (an unknown pts
    next to it makes it unclean)."""
    later: list[float] = [0.0] * (len(order) + 1)  # the lowest pts from each place on
    later[-1] = math.inf
    for n in range(len(order) - 1, -1, -1):
        p = order[n]
        later[n] = -math.inf if p is None else min(later[n + 1], p)
    clean: dict[int, bool] = {}
    places = sorted(where.values())
    highest = -math.inf
    n = 0
    for place in places:
        for m in range(n, place):
            p = order[m]
            highest = math.inf if p is None else max(highest, p)
        n = place
        p = order[place]
        clean[place] = p is not None and highest < p < later[place + 1]
    return clean
