"""What the packets actually in a file say: a count and a timeline per stream, folded from
ffprobe's packet listing as it streams out (memory stays flat for hour-long files).

``Listing`` splits ffprobe's ``-print_format json=compact=1`` output: every packet line
(``{ "stream_index": 0, "pts": 0, "dts": -1024, "duration": 512, "size": "5173",
"flags": "K_" },``) is folded into a :class:`StreamPackets`; every other line is kept as
the header's JSON (format, streams, chapters, error), which ffprobe prints after them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["HEADER_LIMIT", "Listing", "PacketSummary", "StreamPackets", "time_bases"]

#: Bytes of non-packet output kept (format, streams, chapters, tags).
HEADER_LIMIT = 32 << 20
_PACKET = re.compile(rb'\{\s*"stream_index"')
_FIELD = re.compile(r'"(stream_index|pts|dts|duration|size|flags)": "?([^",}\s]*)"?')


@dataclass
class StreamPackets:
    """One stream's packets (those ffprobe flags discard, ``D``, are left out: no player
    shows them). Timestamps in ticks of the stream's time base."""

    count: int = 0
    keyframes: int = 0
    size: int = 0  # bytes
    first: int | None = None  # smallest pts (else dts)
    last: int | None = None  # largest pts (else dts)
    end: int | None = None  # largest pts (else dts) + duration
    durations: int = 0  # sum of the packets' own durations
    timed: int = 0  # packets that carry a timestamp
    discarded: int = 0  # packets flagged D (an edit list's cut, encoder priming): not counted
    last_duration: int = 0  # the own duration of the packet with the largest timestamp
    step: int | None = None  # smallest positive step between packets in file order
    first_key: int | None = None  # packets before the first keyframe
    last_key: int | None = None  # largest pts (else dts) of a keyframe
    _previous: int | None = None  # (the previous packet's dts, else pts)

    def add(self, ts: int | None, duration: int, size: int, key: bool,
            order: int | None = None) -> None:
        """One packet: ``ts`` its pts (else dts), ``order`` its dts (else pts), ticks."""
        if key and self.first_key is None:
            self.first_key = self.count
        self.count += 1
        self.keyframes += key
        self.size += size
        self.durations += duration
        order = ts if order is None else order
        if order is not None:
            if self._previous is not None and order > self._previous:
                gap = order - self._previous
                self.step = gap if self.step is None else min(self.step, gap)
            self._previous = order
        if ts is None:
            return
        if key:
            self.last_key = ts if self.last_key is None else max(self.last_key, ts)
        self.timed += 1
        self.first = ts if self.first is None else min(self.first, ts)
        if self.last is None or ts >= self.last:
            self.last, self.last_duration = ts, duration
        self.end = ts + duration if self.end is None else max(self.end, ts + duration)

    @property
    def open_end(self) -> bool:
        """The last frame's length is unknown: it carries no duration and no step between
        packets tells one (a single frame in FLV or ASF)."""
        return self.timed > 0 and self.last_duration == 0 and self.step is None

    def drop_tail(self, cut: int, last_frame: int | None) -> None:
        """Forget the ``cut`` packets at the end of a truncated file that decode to no frame:
        they are not frames, and what plays ends with the frame at ``last_frame`` (its pts,
        ticks; it then lasts the smallest step between packets)."""
        self.count = max(self.count - cut, 0)
        if last_frame is not None and self.last is not None and last_frame < self.last:
            self.last, self.last_duration, self.end = last_frame, 0, last_frame

    def seconds(self, time_base: Fraction | None) -> tuple[float, float] | None:
        """(start, end) of what plays, in seconds; None without a usable timeline.

        The end is the last packet's timestamp plus that packet's own duration (a gap
        before it, as in variable-rate video, is part of what plays). Packets without
        timestamps (raw elementary streams) play back to back from 0: the end is the sum of
        their durations. A last packet whose duration is missing or shorter than half the
        smallest step between packets is not believed (AVI with a 1/600 time base gives
        each 5 fps frame 1 tick; FLV and ASF give none): it then lasts that smallest step.
        """
        if time_base is None or self.count == 0:
            return None
        if self.timed == 0:
            return (0.0, float(self.durations * time_base)) if self.durations else None
        assert self.first is not None and self.last is not None and self.end is not None
        end = self.end
        if self.step is not None and self.last_duration * 2 < self.step:
            end = max(end, self.last + self.step)
        return float(self.first * time_base), float(end * time_base)


@dataclass(frozen=True)
class PacketSummary:
    """Every stream's packets; ``full``: read from the start to the end of the file (else
    only the tail after the last keyframe, when the full read ran out of time)."""

    streams: dict[int, StreamPackets]
    full: bool = True

    def count(self, indexes: list[int]) -> int:
        return sum(self.streams[i].count for i in indexes if i in self.streams)


class Listing:
    """Feed it ffprobe's stdout chunk by chunk; then :meth:`header` and :meth:`summary`."""

    def __init__(self) -> None:
        self._rest = b""
        self._header: list[bytes] = []
        self._kept = 0
        self._in_packets = False
        self._raw: dict[int, StreamPackets] = {}
        self.overflow = False

    def feed(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        stripped = line.strip()
        if self._in_packets:
            if _PACKET.match(stripped):
                self._packet(stripped.decode("ascii", "replace"))
                return
            if line.startswith(b"    ]"):  # the end of the packets array
                self._in_packets = False
            return  # (side data lines of a packet)
        if stripped == b'"packets": [':
            self._in_packets = True
            return
        self._kept += len(line) + 1
        if self._kept > HEADER_LIMIT:
            self.overflow = True
            return
        self._header.append(line)

    def _packet(self, text: str) -> None:
        fields = dict(_FIELD.findall(text))
        flags = fields.get("flags", "")
        index = _int(fields.get("stream_index"))
        if index is None:
            return
        stream = self._raw.setdefault(index, StreamPackets())
        if "D" in flags:
            stream.discarded += 1
            return
        pts, dts = _int(fields.get("pts")), _int(fields.get("dts"))
        stream.add(dts if pts is None else pts, max(_int(fields.get("duration")) or 0, 0),
                   _int(fields.get("size")) or 0, "K" in flags, pts if dts is None else dts)

    def text(self) -> str:
        """What ffprobe printed besides its packets."""
        if self._rest:
            self._line(self._rest)
            self._rest = b""
        return b"\n".join(self._header).decode("utf-8", "replace")

    def header(self) -> dict[str, Any] | None:
        """ffprobe's JSON without its packets; None when it is not JSON."""
        text = self.text()
        text = re.sub(r",(\s*)}\s*$", r"\1}", text)  # the packets array was the last member
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def summary(self, *, full: bool = True) -> PacketSummary:
        return PacketSummary(dict(self._raw), full)


def time_bases(data: Mapping[str, Any]) -> dict[int, Fraction | None]:
    """Stream index -> time base (seconds per tick) from ffprobe's JSON."""
    out: dict[int, Fraction | None] = {}
    for s in data.get("streams") or []:
        try:
            value: Fraction | None = Fraction(str(s.get("time_base")))
        except (ValueError, ZeroDivisionError):
            value = None
        out[int(s.get("index", -1))] = value or None
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
