"""The packet index (``packets``): one ffprobe child lists every packet of the video's first
video stream (no decoding) and the listing is stored as videodrop/packets.py says.

The child runs as every child of videodrop: an argument list, the stored original as
input (derive/source.py: ``file:`` and the ``file`` protocol only, or an s3 store's
presigned URL and the HTTP(S) protocols), the accepted demuxers only,
VIDEODROP_DERIVE_TIMEOUT and the resource limits of videodrop/children.py. Its output is
read as it comes (bounded memory for a long video's listing).

Errors: :class:`~derive.ffmpeg.Failed` (``timeout``, ``resource_limit``,
``ffmpeg_failed``: ffprobe failed), :class:`~derive.ffmpeg.Skipped` (``no_video_frames``:
the file has no video stream, or it holds no packet).
"""

from __future__ import annotations

import re
import signal
from fractions import Fraction
from pathlib import Path
from typing import Any

from derive.ffmpeg import Failed, Skipped
from derive.source import Source, as_source, redacted
from videodrop.children import ChildMissing, ChildRunner, ChildTimeout
from videodrop.derivatives import Reason
from videodrop.formats import DEMUXERS
from videodrop.packets import DISCARD, KEY, PacketIndex, to_npy

#: What ffprobe says, ``-of csv=nk=0``: lines ``packet,pts=…,dts=…,…`` (keys named, so
#: the order of ffprobe's fields does not matter), then ``stream,time_base=…`` and
#: ``format,start_time=…``.
ENTRIES = "format=start_time:stream=time_base:packet=pts,dts,duration,pos,size,flags"
_NO_DECODER = re.compile(r"Could not open codec for input stream (\d+)")


class Listing:
    """ffprobe's lines, fed chunk by chunk (:meth:`feed`), gathered into columns."""

    def __init__(self) -> None:
        self.rest = b""
        self.time_base: Fraction | None = None
        self.start = Fraction(0)
        self.start_text = "0"
        self.columns: dict[str, list[Any]] = {k: [] for k in
                                              ("pts", "dts", "duration", "pos", "size", "flags")}

    def feed(self, chunk: bytes) -> None:
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            self.line(line.decode("ascii", "replace").strip())

    def line(self, line: str) -> None:
        kind, _, rest = line.partition(",")
        values = dict(part.partition("=")[::2] for part in rest.split(",") if "=" in part)
        if kind == "packet":
            cols = self.columns
            for key in ("pts", "dts", "duration"):
                text = values.get(key, "N/A")
                cols[key].append(None if text in ("N/A", "") else int(text))
            pos = values.get("pos", "N/A")
            cols["pos"].append(-1 if pos in ("N/A", "") else int(pos))
            cols["size"].append(int(values.get("size", "0") or 0))
            flags = values.get("flags", "")
            cols["flags"].append((KEY if "K" in flags else 0) | (DISCARD if "D" in flags else 0))
        elif kind == "stream" and "/" in values.get("time_base", ""):
            num, _, den = values["time_base"].partition("/")
            if int(den) > 0:
                self.time_base = Fraction(int(num), int(den))
        elif kind == "format" and values.get("start_time", "N/A") not in ("N/A", ""):
            self.start_text = values["start_time"]
            self.start = Fraction(self.start_text)

    def index(self) -> PacketIndex:
        """The index; :class:`Skipped` when there is no video stream or no packet."""
        if self.rest:
            self.line(self.rest.decode("ascii", "replace").strip())
            self.rest = b""
        if self.time_base is None or not self.columns["pts"]:
            raise Skipped(Reason.NO_VIDEO_FRAMES, "the file has no video packet to index")
        c = self.columns
        return PacketIndex(self.time_base, self.start, c["pts"], c["dts"], c["duration"],
                           c["pos"], c["size"], c["flags"])


def make(ffprobe: str, runner: ChildRunner, timeout: float, path: Path | Source, out: Path
         ) -> dict[str, Any]:
    """Write the index of ``path`` to ``out``; the facts for the row's ``data``:
    ``time_base`` (``"1/15360"``), ``start`` (seconds, ffprobe's text), ``count`` (packets),
    ``keyframes``, ``bytes`` (of the file written). ChildMissing when ffprobe cannot be
    run (transient)."""
    listing = Listing()
    source = as_source(path)
    args = [ffprobe, "-v", "warning", "-protocol_whitelist", source.protocols,
            "-format_whitelist", ",".join(sorted(DEMUXERS)), "-select_streams", "v:0",
            "-show_entries", ENTRIES, "-of", "csv=nk=0", source.url()]
    try:
        done = runner(args, timeout, on_stdout=listing.feed)
    except ChildTimeout as exc:
        raise Failed(Reason.TIMEOUT, f"ffprobe timed out after {exc.timeout:g} s") from exc
    except ChildMissing:
        raise
    if done.returncode in (-signal.SIGKILL, -signal.SIGXCPU):
        raise Failed(Reason.RESOURCE_LIMIT, "ffprobe was stopped by a resource limit")
    if done.returncode != 0:
        said = redacted(done.stderr.decode("utf-8", "replace"))
        stream = _NO_DECODER.search(said)
        if stream is not None:  # ffprobe 5.1 opens every stream's decoder before listing
            raise Failed(Reason.FFMPEG_FAILED, "ffprobe cannot open the decoder of stream"
                         f" {stream.group(1)} (a feature this ffmpeg lacks) and so lists"
                         " no packet")
        lines = said.strip().splitlines()
        raise Failed(Reason.FFMPEG_FAILED, f"ffprobe exited with {done.returncode}: "
                     + (lines[-1][:200] if lines else "no message"))
    index = listing.index()
    data = to_npy(index)
    out.write_bytes(data)
    return {"time_base": f"{index.time_base.numerator}/{index.time_base.denominator}",
            "start": listing.start_text, "count": len(index),
            "keyframes": sum(1 for f in index.flags if f & KEY), "bytes": len(data)}
