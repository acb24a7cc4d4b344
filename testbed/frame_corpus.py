"""Videos whose frames carry their own index, and the oracle of the frame endpoints.

Each frame ``n`` is gray blocks 64 px wide, block ``c`` at level ``32 + 64 * digit_c(n)``
where ``digit_c`` is the ``c``-th base-4 digit of ``n`` (levels 64 apart survive
compression at high quality): no two frames of a clip look alike. :data:`CLIPS` holds
them in constant and variable frame rate, with B-frames, an open GOP, an edit list (a
copy cut inside a GOP), a non-zero start time (MPEG-TS), a rotation, in MP4, MKV, WebM
and TS; :func:`build` writes them (a few seconds of one core).

The oracle (:class:`Oracle`) owes nothing to the code under test: the frames' times come
from ``ffprobe -show_frames`` (``best_effort_timestamp`` minus the container's
``start_time``), the pixels from one ffmpeg decode of every frame to RGB (rotation
applied, as the endpoints do), and :meth:`Oracle.expected` applies the rule of
docs/models.md: the last frame whose time is ``<= t``, the first frame before it.
"""

from __future__ import annotations

import bisect
import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["CLIPS", "Oracle", "build", "index_pattern", "oracle"]

WIDTH, HEIGHT, RATE, SECONDS = 320, 240, 25, 3


def index_pattern(rate: int = RATE, seconds: float = SECONDS, size: str = "320x240") -> str:
    """A lavfi source whose frame ``n`` draws ``n`` (module docstring)."""
    return (f"color=c=black:s={size}:r={rate}:d={seconds},format=yuv420p,"
            "geq=lum='32+64*mod(floor(N/pow(4,floor(X/64))),4)':cb=128:cr=128")


_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "8", "-pix_fmt", "yuv420p"]
_VFR = ",settb=1/1000,setpts='(N*0.04+0.015*mod(N\\,3))/TB'"
#: name → (filters after the pattern, output arguments); "edit.mp4" is cut from cfr.mp4.
CLIPS: dict[str, tuple[str, list[str]]] = {
    "cfr.mp4": ("", [*_X264, "-bf", "3", "-g", "12"]),
    "vfr.mkv": (_VFR, ["-fps_mode", "passthrough", "-enc_time_base:v", "1:1000", *_X264,
                       "-bf", "2", "-g", "10"]),
    "open.ts": ("", [*_X264, "-bf", "3", "-x264-params", "keyint=15:open-gop=1"]),
    "vp9.webm": ("", ["-c:v", "libvpx-vp9", "-cpu-used", "8", "-crf", "10", "-b:v", "0",
                      "-g", "20"]),
}


def build(folder: Path) -> list[Path]:
    """Write :data:`CLIPS`, ``edit.mp4`` (``cfr.mp4`` from 0.5 s, copied: an edit list
    that starts inside a GOP) and ``rotated.mp4`` (``cfr.mp4`` with a display matrix that
    turns it a quarter) into ``folder``; their paths."""
    made = []
    for name, (filters, args) in CLIPS.items():
        out = folder / name
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        index_pattern() + filters, *args, str(out)], check=True, timeout=120)
        made.append(out)
    edit = folder / "edit.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "0.5", "-i", str(folder / "cfr.mp4"),
                    "-c", "copy", str(edit)], check=True, timeout=60)
    rotated = folder / "rotated.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(folder / "cfr.mp4"), "-c", "copy",
                    "-metadata:s:v", "rotate=90", str(rotated)], check=True, timeout=60)
    return [*made, edit, rotated]


@dataclass(frozen=True)
class Oracle:
    """A clip's frames: ``times`` (seconds, presentation order), ``pixels`` (uint8,
    ``(N, H, W, 3)``, RGB) and ``keys``: the indices of the keyframes."""

    times: list[float]
    pixels: np.ndarray
    keys: list[int]

    def expected(self, t: float) -> int:
        """The index of the frame shown at ``t`` (module docstring)."""
        return max(0, bisect.bisect_right(self.times, t) - 1)

    def nearest(self, picture: np.ndarray) -> tuple[int, float]:
        """(the index of the reference frame most like ``picture``, their mean absolute
        difference in levels)."""
        diffs = np.abs(self.pixels.astype(np.int16) - picture.astype(np.int16)).mean(
            axis=(1, 2, 3))
        best = int(diffs.argmin())
        return best, float(diffs[best])


def oracle(path: Path) -> Oracle:
    """The frames of ``path`` by ffprobe and a full decode (module docstring)."""
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "format=start_time:stream=time_base,width,height:stream_side_data=rotation"
         ":frame=best_effort_timestamp,key_frame",
         "-of", "json", str(path)], check=True, capture_output=True, timeout=60).stdout)
    [stream] = probe["streams"]
    base = Fraction(stream["time_base"])
    start = Fraction(probe["format"].get("start_time", "0"))
    times = [float(f["best_effort_timestamp"] * base - start) for f in probe["frames"]]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], check=True, capture_output=True, timeout=60).stdout
    w, h = int(stream["width"]), int(stream["height"])
    turns = {abs(int(d.get("rotation", 0))) for d in stream.get("side_data_list", [])}
    shape = (w, h) if turns & {90, 270} else (h, w)
    pixels = np.frombuffer(raw, np.uint8).reshape(-1, *shape, 3)
    assert len(pixels) == len(times), (path, len(pixels), len(times))
    assert times == sorted(times), path
    keys = [i for i, f in enumerate(probe["frames"]) if f.get("key_frame") == 1]
    return Oracle(times, pixels, keys)
