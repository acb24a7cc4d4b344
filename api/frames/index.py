"""The stored packet index of a video (videodrop/packets.py), as this API worker reads it
from the media store (a file, or an s3 object read with ``MediaStore.open``): kept in
memory once read (the :data:`KEPT` most recently used, checked against the file's size
and modification time, an object's size and ETag, on every use), with what the endpoints make of it
(the frames' timeline, the JSON and ``.npy`` views, the byte ranges of a time span)
made once.

Views (docs/models.md, "The packet index"): packets in file order, columns of seconds on
the API's timeline (``pts * time_base - start``; ``null``/NaN where unknown), byte offsets
and sizes, keyframe and discard flags.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from api.frames.timeline import ROUNDING, Chosen, Timeline, timeline_of
from videodrop.packets import DISCARD, KEY, PacketIndex, from_npy
from videodrop.storage import MediaStore, ObjectMissing, read_chunks

__all__ = ["KEPT", "Indexes", "Loaded", "Span", "Unavailable"]

#: Indexes one worker keeps in memory (a 1 h 30 fps video's is ~5 MB there).
KEPT = 16
_NPY_DESCR = ("[('pts', '<f8'), ('dts', '<f8'), ('duration', '<f8'), ('pos', '<i8'),"
              " ('size', '<i4'), ('key', '|b1'), ('discard', '|b1')]")
_NPY_RECORD = struct.Struct("<dddqi??")
_MAGIC = b"\x93NUMPY\x01\x00"


class Unavailable(Exception):
    """The video's index cannot be used: ``status`` of its derivative (``pending``,
    ``failed``, ``skipped``, ``missing``: not requested, or its file gone), and why."""

    def __init__(self, status: str, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status


@dataclass(frozen=True)
class Span:
    """The bytes to read for the frames shown in ``[start, end)`` seconds (docs/models.md,
    "Byte ranges"): ``chosen``, the frame shown at ``start``; ``key``, the packet (file
    order, from 0) of the keyframe decoding starts at; ``last``, the last packet needed;
    ``first_byte``/``last_byte`` (inclusive) of the packets ``key..last``; ``head``/``tail``
    the file's bytes before the stream's first packet and after its last (inclusive
    pairs, None when empty); ``size``: the file's bytes."""

    chosen: Chosen
    key: int
    last: int
    first_byte: int
    last_byte: int
    head: tuple[int, int] | None
    tail: tuple[int, int] | None
    size: int


class Loaded:
    """One stored index and what is made of it, each made once (thread-safe enough:
    making one twice at once gives the same value)."""

    def __init__(self, index: PacketIndex, data: bytes, file_size: int) -> None:
        self.index = index
        self.file_size = file_size  # of the video file
        base = f"{index.time_base}|{index.start}|".encode()
        self.etag = hashlib.sha256(base + data).hexdigest()[:32]

    @cached_property
    def times(self) -> list[float | None]:
        """Each packet's pts on the timeline (seconds), None when unknown."""
        return [self.index.seconds(p) for p in self.index.pts]

    @cached_property
    def timeline(self) -> Timeline:
        """The frames' timeline: as ffprobe's full listing gives it (api/frames/timeline.py);
        NoTimestamps or ValueError as there."""
        i = self.index
        return timeline_of(i.time_base, i.start,
                           zip(i.pts, i.dts, i.duration, (bool(f & KEY) for f in i.flags),
                               (bool(f & DISCARD) for f in i.flags), strict=True),
                           complete=True)

    @cached_property
    def as_json(self) -> bytes:
        i = self.index
        end = None
        with contextlib.suppress(ValueError):  # no timestamps: the columns say so
            end = self.timeline.end
        return orjson.dumps({
            "count": len(i), "time_base": f"{i.time_base.numerator}/{i.time_base.denominator}",
            "start": float(i.start), "end": _round(end),
            "keyframes": sum(1 for f in i.flags if f & KEY),
            "columns": {
                "pts": [_round(t) for t in self.times],
                "dts": [_round(i.seconds(d)) for d in i.dts],
                "duration": [_round(i.span(d)) for d in i.duration],
                "pos": [p if p >= 0 else None for p in i.pos],
                "size": i.size,
                "key": [f & KEY for f in i.flags],
                "discard": [(f & DISCARD) >> 1 for f in i.flags],
            }})

    @cached_property
    def as_npy(self) -> bytes:
        i = self.index
        text = f"{{'descr': {_NPY_DESCR}, 'fortran_order': False, 'shape': ({len(i)},), }}"
        pad = -(len(_MAGIC) + 2 + len(text) + 1) % 64
        header = (text + " " * pad + "\n").encode("latin1")
        pack = _NPY_RECORD.pack
        body = b"".join(
            pack(_nan(t), _nan(i.seconds(d)), _nan(i.span(n)), o, s, bool(f & KEY),
                 bool(f & DISCARD))
            for t, d, n, o, s, f in zip(self.times, i.dts, i.duration, i.pos, i.size, i.flags,
                                        strict=True))
        return _MAGIC + len(header).to_bytes(2, "little") + header + body

    @cached_property
    def keys(self) -> list[int]:
        """The keyframes' packets (file order) that have a pts."""
        return [n for n, f in enumerate(self.index.flags) if f & KEY and self.times[n] is not None]

    @cached_property
    def ends(self) -> list[int]:
        """Where each packet's bytes end (exclusive): ``pos + size``, or the next packet's
        ``pos`` when that is further (an MPEG-TS packet's data is spread over 188-byte
        transport packets after its ``pos``); -1 when ``pos`` is unknown."""
        i = self.index
        ends = [p + s if p >= 0 else -1 for p, s in zip(i.pos, i.size, strict=True)]
        later = -1
        for n in range(len(ends) - 1, -1, -1):
            if ends[n] >= 0 and later > ends[n]:
                ends[n] = later
            if i.pos[n] >= 0:
                later = i.pos[n]
        return ends

    def span(self, start: float, end: float) -> Span:
        """The bytes of the frames shown in ``[start, end)`` (``start < end``; the rule:
        docs/models.md): :class:`~api.frames.timeline.PastTheEnd` when ``start`` is at or
        after the last frame's end, ValueError when a packet needed has no byte offset.
        A bound within :data:`~api.frames.timeline.ROUNDING` of a frame's time is that
        time (``end`` at a frame's time written with 6 decimals leaves that frame out)."""
        chosen = self.timeline.at(start)
        i, times = self.index, self.times
        # the keyframe decoding starts at: the last one (cut off by an edit list or not)
        # shown at or before the frame; the first keyframe when none is
        keys = self.keys
        if not keys:
            raise ValueError("the stream has no keyframe")
        before = [n for n in keys if (times[n] or 0.0) <= chosen.time]
        key = max(before, key=lambda n: (times[n], n)) if before else keys[0]
        shown = [n for n, t in enumerate(times)
                 if n >= key and t is not None and not i.flags[n] & DISCARD
                 and (t < end - ROUNDING or t == chosen.time)]
        last = max(shown) if shown else key
        needed = range(key, last + 1)
        if any(i.pos[n] < 0 for n in needed):
            raise ValueError("the container gives no byte offset of a packet needed")
        first_byte = min(i.pos[n] for n in needed)
        last_byte = max(self.ends[n] for n in needed) - 1
        known = [n for n in range(len(i)) if i.pos[n] >= 0]
        lowest = min(i.pos[n] for n in known)
        highest = max(i.pos[n] + i.size[n] for n in known)
        return Span(chosen, key, last, first_byte, last_byte,
                    (0, lowest - 1) if lowest > 0 else None,
                    (highest, self.file_size - 1) if highest < self.file_size else None,
                    self.file_size)


def _nan(seconds: float | None) -> float:
    return math.nan if seconds is None else seconds


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)


class Indexes:
    """This worker's indexes, read from ``media`` where the derive role put them (keyed by
    the key, checked on every use against the file's size and modification time, or an
    object's size and ETag)."""

    def __init__(self, media: MediaStore, catalog: Any, kept: int = KEPT) -> None:
        self.media = media
        self.catalog = catalog
        self.kept = kept
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, tuple[tuple[int, int | str], Loaded]] = OrderedDict()

    def of(self, video: Any, video_path: Path | None = None) -> Loaded:
        """The index of ``video`` (a :class:`~videodrop.catalog.Video` whose file is at
        ``video_path``, or in the store when None); :class:`Unavailable` when it has no
        ready one. The store's errors (StoreUnavailable: a 503) propagate."""
        state = video.derivatives.get("packets")
        if state is None:
            raise Unavailable("missing", "The packet index is not requested"
                              " (VIDEODROP_DERIVE leaves it out).")
        file = state.get("file")
        if state.get("status") != "ready" or not isinstance(file, str):
            status = str(state.get("status"))
            why = f": {state['error']}" if state.get("error") else ""
            sentence = {"pending": f"The packet index is not made yet (pending){why}.",
                        "failed": f"Making the packet index failed{why}.",
                        "skipped": f"The packet index was not made{why}."}
            raise Unavailable(status, sentence.get(status, f"The packet index is {status}."))
        stamp = self._stamp(file)
        with self._lock:
            found = self._loaded.get(file)
            if found is not None and found[0] == stamp:
                self._loaded.move_to_end(file)
                return found[1]
        loaded = self._read(video, file, video_path)
        with self._lock:
            self._loaded[file] = (stamp, loaded)
            self._loaded.move_to_end(file)
            while len(self._loaded) > self.kept:
                self._loaded.popitem(last=False)
        return loaded

    def _stamp(self, file: str) -> tuple[int, int | str]:
        """What tells one version of the index at ``file`` from another: a file's size and
        modification time (ns), an object's size and ETag."""
        path = self.media.local_path(file)
        try:
            if path is not None:
                stat = os.stat(path)
                return stat.st_size, stat.st_mtime_ns
            info = self.media.stat(file)
        except (FileNotFoundError, ObjectMissing) as exc:
            raise Unavailable("missing", "The packet index file is missing; tell an"
                              " operator.") from exc
        return info.size, info.etag

    def _read(self, video: Any, file: str, video_path: Path | None) -> Loaded:
        row = self.catalog.derivative(video.id, "packets")
        if row is None or row.status != "ready":
            raise Unavailable("missing", "The packet index is being made again.")
        try:
            data = b"".join(read_chunks(self.media.open(file)))
        except (OSError, ObjectMissing) as exc:  # removed since the stat: a remake, or
            # the video deleted
            raise Unavailable("missing", "The packet index file is missing; tell an"
                              " operator.") from exc
        try:
            index = from_npy(data, Fraction(row.data["time_base"]), Fraction(row.data["start"]))
        except (KeyError, ValueError, ZeroDivisionError) as exc:
            raise Unavailable("failed", f"The packet index cannot be read: {exc}.") from exc
        try:
            size = (video_path.stat().st_size if video_path is not None
                    else self.media.stat(video.stored_path).size)
        except (FileNotFoundError, ObjectMissing):
            size = int(video.size or 0)
        return Loaded(index, data, size)
