"""Running ffprobe: an argument list (never a shell), a deadline, typed errors.

The subprocess runner is injected (DESIGN.md), so tests and the worker can swap it:
``Runner = Callable[[Sequence[str], float], Completed]``. The default runner starts
ffprobe in its own session and kills the whole process group when the deadline passes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "Completed",
    "FFprobeFailed",
    "FFprobeMissing",
    "FFprobeTimeout",
    "PacketSummary",
    "ProbeError",
    "ProbeOutput",
    "Runner",
    "default_runner",
    "ffprobe_version",
    "parse_log_summary",
    "probe_json",
    "read_log_summary",
    "run_probe",
    "scan_packets",
    "stream_time_bases",
]

#: Seek target (seconds) far beyond any real file: ffprobe then lands on the last keyframe.
_FAR_END = "99999999%"
#: What the packet scan needs of each packet.
_PACKET_ENTRIES = "packet=stream_index,pts,dts,duration"
_INSTALL_HINT = "install it with `apt-get install ffmpeg` or set VIDEODROP_FFPROBE to its path"


class ProbeError(Exception):
    """Base of every ffprobe problem."""


class FFprobeTimeout(ProbeError):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g} s")


class FFprobeMissing(ProbeError):
    def __init__(self, binary: str, why: str = "not found") -> None:
        self.binary = binary
        super().__init__(f"ffprobe {why}: {binary!r}; {_INSTALL_HINT}")


class FFprobeFailed(ProbeError):
    """ffprobe ran but exited non-zero (it could not open or read the file)."""

    def __init__(self, returncode: int, error: str | None, stderr: str, stdout: str) -> None:
        self.returncode = returncode
        self.error = error  # ffprobe's own -show_error message, when it printed one
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(error or f"ffprobe exited with status {returncode}")


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


Runner = Callable[[Sequence[str], float], Completed]


def default_runner(args: Sequence[str], timeout: float) -> Completed:
    """Run ``args`` with a deadline; on timeout kill its whole process group."""
    if timeout <= 0:
        raise FFprobeTimeout(timeout)
    try:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise FFprobeMissing(args[0]) from exc
    except PermissionError as exc:
        raise FFprobeMissing(args[0], "is not executable") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise FFprobeTimeout(timeout) from exc
    except BaseException:
        _kill_group(proc)
        raise
    return Completed(proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
        proc.kill()
        proc.wait()


def ffprobe_version(
    ffprobe: str = "ffprobe", runner: Runner = default_runner, timeout: float = 10.0
) -> str:
    """``"5.1.9-0+deb12u1"`` for ffprobe 5.1 on Debian 12; FFprobeMissing if absent."""
    done = runner([ffprobe, "-hide_banner", "-version"], timeout)
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        raise FFprobeMissing(ffprobe, f"does not run (exit status {done.returncode})")
    match = re.search(r"version\s+(\S+)", text)
    if not match:
        raise ProbeError(f"cannot read the version of {ffprobe!r}: {text[:80]!r}")
    return match.group(1)


def _target(path: Path | str) -> str:
    # "file:" keeps names like "cam1:front.mp4" or "-x.mp4" from being read as a
    # protocol or an option.
    return "file:" + str(path)


@dataclass(frozen=True)
class PacketSummary:
    """What the packets actually in the file say (timestamps in seconds)."""

    end: float | None  # max over packets of (pts or dts) + duration
    start: float | None  # smallest timestamp seen
    packets: dict[int, int]  # stream index -> packets read
    full_scan: bool  # read from the beginning (else only the tail after the last keyframe)

    def count(self, streams: Sequence[int]) -> int:
        return sum(self.packets.get(i, 0) for i in streams)


@dataclass(frozen=True)
class ProbeOutput:
    data: dict[str, Any]  # ffprobe's JSON (format, streams, chapters)
    log: str  # ffprobe's stderr (at -v error)
    #: The packets after the last keyframe when the same run listed them (``read_tail``):
    #: empty when ffprobe could not seek there; None when they were not listed.
    tail: PacketSummary | None = None


def run_probe(
    path: Path | str,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
    read_tail: bool = False,
) -> ProbeOutput:
    """ffprobe's JSON for ``path``; FFprobeFailed when it cannot open or read the file.

    ``read_tail``: the same process also lists the packets after the last keyframe (what
    scan_packets reads first). ffprobe prints format, streams and chapters from the header
    whatever it reads next, so they stay as without the tail (bar each stream's
    ``nb_read_packets``, dropped here). When the seek fails, ffprobe prints an empty packet
    list and an error instead: read the header again alone, with an empty ``tail``.
    """
    deadline = time.monotonic() + timeout  # one budget, the retry included
    args = [ffprobe, "-hide_banner", "-v", "error", "-print_format", "json", "-show_format",
            "-show_streams", "-show_chapters", "-show_error"]  # fmt: skip
    if read_tail:
        args += ["-show_entries", _PACKET_ENTRIES, "-read_intervals", _FAR_END]
    done = runner([*args, _target(path)], timeout)
    out = done.stdout.decode("utf-8", "replace")
    err = _text(done.stderr)
    try:
        data = json.loads(out) if out.strip() else {}
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if done.returncode != 0 or not isinstance(data, dict) or error:
        if read_tail and isinstance(data, dict) and "packets" in data:  # only the seek failed
            if (left := deadline - time.monotonic()) <= 0:
                raise FFprobeTimeout(timeout)
            plain = run_probe(path, ffprobe=ffprobe, timeout=left, runner=runner)
            return ProbeOutput(plain.data, plain.log, PacketSummary(None, None, {}, False))
        message = error.get("string") if isinstance(error, dict) else None
        raise FFprobeFailed(done.returncode, message, err, out)
    listed = data.pop("packets", None) if read_tail else None
    if not isinstance(listed, list):
        return ProbeOutput(data, err)
    for stream in data.get("streams") or []:
        stream.pop("nb_read_packets", None)
    keys = ("stream_index", "pts", "dts", "duration")
    rows = ([p.get(k, "N/A") for k in keys] for p in listed if isinstance(p, dict))
    return ProbeOutput(data, err, _summarise_rows(rows, stream_time_bases(data), full_scan=False))


def stream_time_bases(data: Mapping[str, Any]) -> dict[int, str]:
    """Stream index -> time base ("1/90000") from ffprobe's JSON."""
    return {int(s.get("index", -1)): str(s.get("time_base")) for s in data.get("streams") or []}


def probe_json(
    path: Path | str,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
) -> dict[str, Any]:
    """ffprobe's JSON for ``path`` (format, streams, chapters); FFprobeFailed when it fails."""
    return run_probe(path, ffprobe=ffprobe, timeout=timeout, runner=runner).data


def scan_packets(
    path: Path | str,
    time_bases: Mapping[int, str],
    *,
    must_see: Sequence[int] = (),
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
    tail: PacketSummary | None = None,
) -> PacketSummary | None:
    """End time of the last packet in the file, reading as little as possible.

    First seek far past the end (ffprobe lands on the last keyframe) and read the tail,
    unless ``tail`` already holds it (run_probe with ``read_tail``); when that fails (no
    index, truncated file whose index points past EOF) or shows none of the ``must_see``
    streams, read every packet from the start. A summary without packets means the file
    holds no media data; None means ffprobe could not read any.
    """
    base = [ffprobe, "-hide_banner", "-v", "error", "-show_entries",
            _PACKET_ENTRIES, "-of", "csv=p=0"]  # fmt: skip
    deadline = time.monotonic() + timeout  # one budget for both runs
    summary = tail
    if summary is None:
        done = runner([*base, "-read_intervals", _FAR_END, _target(path)], timeout)
        summary = _summarise(done.stdout, time_bases, full_scan=False)
    if summary.packets and (not must_see or summary.count(must_see) > 0):
        return summary
    left = deadline - time.monotonic()
    if left <= 0:
        raise FFprobeTimeout(timeout)
    whole = runner([*base, _target(path)], left)
    full = _summarise(whole.stdout, time_bases, full_scan=True)
    if full.packets or whole.returncode == 0:
        return full  # may hold no packets at all: the file has no media data
    return summary if summary.packets else None


def _summarise(stdout: bytes, time_bases: Mapping[int, str], *, full_scan: bool) -> PacketSummary:
    """Summary of ffprobe's ``csv=p=0`` packet listing (stream_index,pts,dts,duration)."""
    rows = (line.strip().split(",") for line in stdout.decode("ascii", "replace").splitlines())
    return _summarise_rows(rows, time_bases, full_scan=full_scan)


def _summarise_rows(
    rows: Iterable[Sequence[object]], time_bases: Mapping[int, str], *, full_scan: bool
) -> PacketSummary:
    """Summary of packets given as (stream_index, pts, dts, duration), "N/A" when unset."""
    end: Fraction | None = None
    start: Fraction | None = None
    counts: dict[int, int] = {}
    for row in rows:
        fields = [str(value) for value in row]
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        index = int(fields[0])
        tb = _fraction(time_bases.get(index))
        ts = _int(fields[1]) if _int(fields[1]) is not None else _int(fields[2])
        counts[index] = counts.get(index, 0) + 1
        if tb is None or ts is None:
            continue
        begin = ts * tb
        finish = (ts + max(_int(fields[3]) or 0, 0)) * tb
        start = begin if start is None else min(start, begin)
        end = finish if end is None else max(end, finish)
    return PacketSummary(
        end=float(end) if end is not None else None,
        start=float(start) if start is not None else None,
        packets=counts,
        full_scan=full_scan,
    )


def _text(data: bytes) -> str:
    """ffprobe's log as text that PostgreSQL jsonb accepts (no NUL)."""
    return data.decode("utf-8", "replace").replace("\x00", "")


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _fraction(text: str | None) -> Fraction | None:
    try:
        value = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return value if value else None


# --- ffprobe's human summary, for files whose JSON it refuses to print -----------------
# ffprobe 5.1 exits 1 before printing anything when it cannot open a decoder for any one
# stream (e.g. HE-AAC v2 "SBR+21" audio), although it has already opened the container.
# Its log still holds the "Input #0" summary; we read the essentials from there.

_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\((\w+)\))?: (\w+): (.*)$")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def read_log_summary(
    path: Path | str,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
) -> tuple[dict[str, Any] | None, str]:
    """Run ffprobe without JSON output and parse its summary: (ffprobe-like dict, log)."""
    done = runner([ffprobe, "-hide_banner", "-v", "info", _target(path)], timeout)
    log = _text(done.stderr)
    return parse_log_summary(log), log


def parse_log_summary(log: str) -> dict[str, Any] | None:
    """The ``Input #0`` block of an ffprobe log as a dict shaped like ffprobe's JSON."""
    lines = log.splitlines()
    head = next((i for i, line in enumerate(lines) if line.startswith("Input #0, ")), None)
    if head is None:
        return None
    name = re.match(r"Input #0, (.*), from '", lines[head])
    fmt: dict[str, Any] = {"format_name": name.group(1) if name else None, "tags": {}}
    streams: list[dict[str, Any]] = []
    tags: dict[str, str] = fmt["tags"]
    in_tags = False
    for line in lines[head + 1 :]:
        if not line.startswith("  "):
            break
        stripped = line.strip()
        if stream := _STREAM.match(line):
            streams.append(_log_stream(*stream.groups()))
            tags, in_tags = streams[-1]["tags"], False
        elif duration := _DURATION.search(line):
            h, m, s = duration.groups()
            fmt["duration"] = f"{int(h) * 3600 + int(m) * 60 + float(s):.6f}"
            if rate := re.search(r"bitrate: (\d+) kb/s", line):
                fmt["bit_rate"] = str(int(rate.group(1)) * 1000)
        elif stripped.startswith("Chapter"):
            tags, in_tags = {}, False
        elif stripped in {"Metadata:", "Side data:"}:
            in_tags = stripped == "Metadata:"
        elif (rotation := re.search(r"rotation of (-?[\d.]+) degrees", line)) and streams:
            side = {"side_data_type": "Display Matrix", "rotation": float(rotation.group(1))}
            streams[-1].setdefault("side_data_list", []).append(side)
        elif in_tags and (tag := re.match(r"^\s+(\S[^:]*?)\s*: (.*)$", line)):
            tags[tag.group(1)] = tag.group(2).rstrip()
    fmt["nb_streams"] = len(streams)
    return {"format": fmt, "streams": streams, "chapters": []}


def _log_stream(index: str, lang: str | None, kind: str, rest: str) -> dict[str, Any]:
    parts = _split_top(rest)
    first = parts[0].split(" ")
    stream: dict[str, Any] = {
        "index": int(index),
        "codec_type": kind.lower(),
        "codec_name": first[0],
        "tags": {"language": lang} if lang else {},
        "disposition": {"default": int("(default)" in rest), "attached_pic": 0},
    }
    profile = re.match(r"\w+ \(([^/()]+)\)", parts[0])
    if profile:
        stream["profile"] = profile.group(1)
    if "(attached pic)" in rest:
        stream["disposition"]["attached_pic"] = 1
    for part in parts[1:]:
        size = re.match(r"(\d+)x(\d+)", part)
        if size and "width" not in stream:
            stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
            aspect = re.search(r"SAR (\d+:\d+) DAR (\d+:\d+)", part)
            if aspect:
                stream["sample_aspect_ratio"], stream["display_aspect_ratio"] = aspect.groups()
        elif m := re.match(r"([\d.]+)(k?) (fps|tbr)$", part):
            rate = Fraction(m.group(1)) * (1000 if m.group(2) else 1)
            key = "avg_frame_rate" if m.group(3) == "fps" else "r_frame_rate"
            stream[key] = f"{rate.numerator}/{rate.denominator}"
        elif m := re.match(r"(\d+) kb/s", part):
            stream["bit_rate"] = str(int(m.group(1)) * 1000)
        elif m := re.match(r"(\d+) Hz", part):
            stream["sample_rate"] = m.group(1)
        elif kind == "Audio" and re.match(r"(mono|stereo|[\d.]+(\(\w+\))?|\d+ channels)$", part):
            stream["channel_layout"] = part
            stream["channels"] = {"mono": 1, "stereo": 2}.get(part) or _layout_channels(part)
        elif kind == "Video" and "pix_fmt" not in stream and re.match(r"[a-z]\w*(\(|$)", part):
            stream["pix_fmt"] = part.split("(")[0]
    return stream


def _layout_channels(layout: str) -> int | None:
    if m := re.match(r"(\d+) channels", layout):
        return int(m.group(1))
    digits = re.findall(r"\d+", layout.split("(", maxsplit=1)[0])
    return sum(int(d) for d in digits) if digits else None


def _split_top(text: str) -> list[str]:
    """Split on ", " outside parentheses and brackets."""
    parts: list[str] = []
    depth, current = 0, ""
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0 and text[i + 1 : i + 2] == " ":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts
