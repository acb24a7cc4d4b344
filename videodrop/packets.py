"""The packet index of a video (the ``packets`` derivative, docs/models.md): every packet of
its first video stream in file order, as the derive role stores it and the API reads it.

The stored file (``packets.npy`` in the video's derivative folder) is a NumPy ``.npy``
(format 1.0, little-endian, a packed structured array, what ``numpy.load`` reads) of one
record per packet, integers as the container has them:

* ``pts``, ``dts``, ``duration``: int64, in ticks of the stream's ``time_base``
  (:data:`UNKNOWN` where the container gives none);
* ``pos``: int64, the byte offset of the packet's data in the file (-1: unknown);
* ``size``: int32, its bytes;
* ``flags``: uint8, :data:`KEY` (a keyframe) | :data:`DISCARD` (cut off by an edit list:
  decoded to feed the decoder, never shown).

The stream's ``time_base`` (``"1/15360"``) and the container's ``start`` (seconds as
ffprobe's ``format.start_time`` says them, ``"0.000000"``) are in the derivative row's
``data``, beside ``file``. A packet's time on the API's timeline is
``pts * time_base - start`` seconds.
"""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass
from fractions import Fraction

from videodrop.npy import MAGIC, npy_header

__all__ = ["DISCARD", "FILE_NAME", "KEY", "RECORD", "UNKNOWN", "PacketIndex", "from_npy",
           "to_npy"]

FILE_NAME = "packets.npy"
UNKNOWN = -(1 << 63)  # int64's least: no pts, dts or duration
KEY = 1
DISCARD = 2
#: One record: pts, dts, duration, pos, size, flags (37 bytes, packed).
RECORD = struct.Struct("<qqqqiB")
_DESCR = [("pts", "<i8"), ("dts", "<i8"), ("duration", "<i8"), ("pos", "<i8"),
          ("size", "<i4"), ("flags", "|u1")]


@dataclass(frozen=True)
class PacketIndex:
    """The packets of one video stream in file order, column by column (module
    docstring); None where a value is unknown (``pos`` -1)."""

    time_base: Fraction
    start: Fraction
    pts: list[int | None]
    dts: list[int | None]
    duration: list[int | None]
    pos: list[int]
    size: list[int]
    flags: list[int]

    def __len__(self) -> int:
        return len(self.pts)

    def seconds(self, ticks: int | None) -> float | None:
        """``ticks`` of the time base on the API's timeline (the start removed), as the
        nearest float; None for None."""
        if ticks is None:
            return None
        shift = self.start / self.time_base
        den = self.time_base.denominator * shift.denominator
        return (ticks * shift.denominator - shift.numerator) * self.time_base.numerator / den

    def span(self, ticks: int | None) -> float | None:
        """A length of ``ticks`` (a duration) in seconds; None for None."""
        return None if ticks is None else float(ticks * self.time_base)


def _known(value: int) -> int | None:
    return None if value == UNKNOWN else value


def to_npy(index: PacketIndex) -> bytes:
    """The stored file of ``index`` (module docstring)."""
    pack = RECORD.pack
    body = b"".join(
        pack(UNKNOWN if p is None else p, UNKNOWN if d is None else d,
             UNKNOWN if n is None else n, o, s, f)
        for p, d, n, o, s, f in zip(index.pts, index.dts, index.duration, index.pos,
                                    index.size, index.flags, strict=True))
    return npy_header((len(index),), _DESCR) + body


def from_npy(data: bytes, time_base: Fraction, start: Fraction) -> PacketIndex:
    """The index in a stored file (:func:`to_npy`'s bytes); ValueError when it is not one."""
    if not data.startswith(MAGIC) or len(data) < 10:
        raise ValueError("not a .npy file of version 1.0")
    size = int.from_bytes(data[8:10], "little")
    try:
        header = ast.literal_eval(data[10:10 + size].decode("latin1"))
    except (SyntaxError, ValueError) as exc:
        raise ValueError("the .npy header cannot be read") from exc
    if not isinstance(header, dict) or header.get("descr") != _DESCR:
        raise ValueError("not a packet index (another record layout)")
    (count,) = header["shape"]
    body = memoryview(data)[10 + size:]
    if len(body) != count * RECORD.size:
        raise ValueError(f"the packet index is cut short ({len(body)} bytes for {count})")
    columns: list[list[int]] = [[], [], [], [], [], []]
    appends = [c.append for c in columns]
    for record in RECORD.iter_unpack(body):
        for append, value in zip(appends, record, strict=True):
            append(value)
    pts, dts, duration, pos, sizes, flags = columns
    return PacketIndex(time_base, start, [_known(v) for v in pts], [_known(v) for v in dts],
                       [_known(v) for v in duration], pos, sizes, flags)
