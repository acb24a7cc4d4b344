"""Injected runners that stand in for ffprobe in unit tests, and ffprobe's answers as it
prints them.

A probe runs its head decode (``-count_frames``) beside the listing, in another thread, so
the order of calls across the two is not fixed: :class:`Recorder` answers each kind of
call from its own list, in which the order is fixed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prober.ffprobe import Completed

__all__ = ["NOT_OPENED", "VIDEO_STREAM", "Recorder", "compact", "decoding", "is_decode", "ok"]


def ok(stdout: str | bytes, stderr: str = "", code: int = 0) -> Completed:
    out = stdout.encode() if isinstance(stdout, str) else stdout
    return Completed(code, out, stderr.encode())


#: ffprobe's answer for a file it cannot open.
NOT_OPENED = ok('{"error": {"code": -1094995529, "string": "Invalid data found"}}', "", 1)

#: A video stream as ffprobe's header shows it.
VIDEO_STREAM = {
    "index": 0,
    "codec_type": "video",
    "codec_name": "h264",
    "time_base": "1/1000",
    "width": 2,
    "height": 2,
}


def is_decode(args: Sequence[str]) -> bool:
    """A head decode (prober.ffprobe.count_decoded), guessed or not."""
    return "-count_frames" in args


def decoding(packets: int, frames: int, index: int = 0) -> Completed:
    """ffprobe's answer to a bounded decode (count_decoded) of stream ``index``."""
    return ok(json.dumps({"streams": [{"index": index, "nb_read_frames": str(frames),
                                       "nb_read_packets": str(packets)}]}))


class Recorder:
    """An injected runner that records every call (``calls``, in the order they came) and
    answers by the command: a head decode from ``decodes``, every other run from
    ``answers``, each list in order. A decode with no answer left is answered
    :data:`NOT_OPENED` (the guessed decode of a file the test does not decode)."""

    def __init__(self, *answers: Completed, decodes: Sequence[Completed] = ()) -> None:
        self.answers = list(answers)
        self.decodes = list(decodes)
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        assert timeout > 0
        with self._lock:
            self.calls.append(list(args))
            if not is_decode(args):
                return self.answers.pop(0)
            return self.decodes.pop(0) if self.decodes else NOT_OPENED

    @property
    def decode_calls(self) -> list[list[str]]:
        return [c for c in self.calls if is_decode(c)]

    @property
    def other_calls(self) -> list[list[str]]:
        return [c for c in self.calls if not is_decode(c)]


def compact(data: Mapping[str, Any]) -> str:
    """``data`` laid out as ffprobe's ``-print_format json=compact=1`` prints it: a line per
    packet, a line per other member."""
    lines = []
    for key, value in data.items():
        if key == "packets":
            rows = [f"        {json.dumps(p)}," for p in value]
            lines.append('    "packets": [\n' + "\n".join(rows).rstrip(",") + "\n    ]")
        else:
            lines.append(f"    {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
