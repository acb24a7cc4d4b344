"""Running ffprobe: an argument list (never a shell), a deadline, resource limits, typed
errors, and only what may become ``ready`` opened at all.

Every run reads its input through the ``file`` protocol only (``-protocol_whitelist``),
or, for an object of an S3 store read where it lies (:mod:`prober.inputs`), the http(s)
protocols its presigned URL needs and no other, so no URL inside a file is followed, and
with only the demuxers of the accepted containers
(``-format_whitelist`` from :data:`videodrop.formats.DEMUXERS`): a playlist (HLS, concat),
an image sequence, a GIF or a subtitle file named ``.mp4`` is refused before its demuxer
opens anything. The runner is injected (``Runner``); the default runs each child under
:class:`videodrop.children.ChildRunner` limits (address space, CPU, open files, no core).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prober.ffprobe_log import parse_log_summary
from prober.fields import as_int
from prober.inputs import ProbeInput
from prober.packets import Listing, PacketSummary
from videodrop.children import ChildMissing, ChildRunner, ChildTimeout, Completed
from videodrop.formats import DEMUXERS
from videodrop.storage import redact_urls

__all__ = [
    "Completed",
    "Decoded",
    "FFprobeFailed",
    "FFprobeMissing",
    "FFprobeTimeout",
    "Guess",
    "ProbeError",
    "ProbeOutput",
    "Runner",
    "count_decoded",
    "default_runner",
    "ffprobe_version",
    "first_packet_position",
    "identify_format",
    "read_log_summary",
    "run_probe",
    "undecoded_tail",
]

#: Seek target (seconds) far beyond any real file: ffprobe then lands on the last keyframe.
_FAR_END = "99999999%"
#: What the evidence needs of each packet (packets.StreamPackets).
_PACKET_ENTRIES = "packet=stream_index,pts,dts,duration,size,flags"
_FORMATS = ",".join(sorted(DEMUXERS))
_INSTALL_HINT = "install it with `apt-get install ffmpeg` or set VIDEODROP_FFPROBE to its path"
REFUSED = "Format not on whitelist"


class ProbeError(Exception):
    """Base of every ffprobe problem."""


class FFprobeTimeout(ChildTimeout, ProbeError):
    """ffprobe did not finish within its deadline (and was killed)."""


class FFprobeMissing(ProbeError):
    def __init__(self, binary: str, why: str = "not found") -> None:
        self.binary = binary
        hint = _INSTALL_HINT if "prlimit" not in binary else "install util-linux"
        super().__init__(f"ffprobe {why}: {binary!r}; {hint}")


class FFprobeFailed(ProbeError):
    """ffprobe ran but exited non-zero (it could not open or read the file)."""

    def __init__(self, returncode: int, error: str | None, stderr: str, stdout: str) -> None:
        self.returncode = returncode  # negative: killed by that signal
        self.error = error  # ffprobe's own -show_error message, when it printed one
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(error or f"ffprobe exited with status {returncode}")

    @property
    def refused(self) -> bool:
        """The content is a format outside the accepted containers (the whitelist)."""
        return REFUSED in self.stderr


class Runner(Protocol):
    """``runner(args, timeout, on_stdout=None) -> Completed``; stdout goes to ``on_stdout``
    chunk by chunk when given. Raises ChildTimeout/FFprobeTimeout, ChildMissing."""

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed: ...


default_runner: Runner = ChildRunner()


@dataclass(frozen=True)
class ProbeOutput:
    data: dict[str, Any]  # ffprobe's JSON (format, streams, chapters), without packets
    log: str  # ffprobe's stderr (at -v warning)
    packets: PacketSummary  # every packet (``full``), or those after the last keyframe
    max_rss: int = 0  # the child's peak resident memory, bytes


def _run_child(runner: Runner, args: Sequence[str], timeout: float,
         on_stdout: Callable[[bytes], None] | None = None) -> Completed:
    """One child, its errors as ProbeErrors."""
    if timeout <= 0:
        raise FFprobeTimeout(timeout)
    try:
        return runner(args, timeout, on_stdout=on_stdout)
    except ChildTimeout as exc:
        raise FFprobeTimeout(timeout) from exc
    except ChildMissing as exc:
        raise FFprobeMissing(exc.binary, "is not executable"
                             if "executable" in str(exc) else "not found") from exc


def _reading_command(ffprobe: str, source: Source, level: str = "error") -> list[str]:
    """The start of every ffprobe command that reads ``source``: no banner, log ``level``,
    only the protocols its input needs (``file`` for a file; http(s) for an object's
    presigned URL), the accepted demuxers only (``videodrop.formats``), one thread."""
    return [ffprobe, "-hide_banner", "-v", level, "-protocol_whitelist",
            ",".join(_protocols(source)), "-format_whitelist", _FORMATS, "-threads", "1"]


def ffprobe_version(
    ffprobe: str = "ffprobe", runner: Runner = default_runner, timeout: float = 10.0
) -> str:
    """The version ffprobe reports (e.g. ``"5.1.9-0+deb12u1"``). :class:`FFprobeMissing`
    when it is absent or does not run; :class:`ProbeError` when its output names none."""
    done = _run_child(runner, [ffprobe, "-hide_banner", "-version"], timeout)
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        raise FFprobeMissing(ffprobe, f"does not run (exit status {done.returncode})")
    match = re.search(r"version\s+(\S+)", text)
    if not match:
        raise ProbeError(f"cannot read the version of {ffprobe!r}: {text[:80]!r}")
    return match.group(1)


#: What ffprobe reads: a local file's path, or a :class:`~prober.inputs.ProbeInput`.
Source = Path | str | ProbeInput


def _file_argument(source: Source) -> str:
    """``source`` as ffprobe's input: a path as ``file:<path>`` (``file:`` keeps names like
    ``cam1:front.mp4`` or ``-x.mp4`` from being read as a protocol or an option), an
    input as its target."""
    return source.target if isinstance(source, ProbeInput) else "file:" + str(source)


def _protocols(source: Source) -> tuple[str, ...]:
    return source.protocols if isinstance(source, ProbeInput) else ("file",)


def run_probe(
    path: Source,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
    full: bool = True,
    subfile_end: int | None = None,
) -> ProbeOutput:
    """Header (format, streams, chapters) and packets of ``path`` in one ffprobe run.

    ``full``: every packet from the start (the count behind frame count, rate and
    duration); else only those after the last keyframe (a seek far past the end), the
    cheap read kept for when the full one overruns its budget. ``subfile_end``: read only
    the file's first that many bytes (``subfile`` protocol), for a file whose tail
    ffprobe cannot parse. FFprobeFailed when ffprobe cannot open the file.
    """
    # (at "warning": the demuxers' "Packet corrupt" lines tell a truncated file)
    args = [*_reading_command(ffprobe, path, "warning"), "-print_format", "json=compact=1",
            "-show_format", "-show_streams", "-show_chapters", "-show_error", "-show_entries",
            _PACKET_ENTRIES]
    if not full:
        args += ["-read_intervals", _FAR_END]
    target = _file_argument(path)
    if subfile_end is not None:
        args[args.index("-protocol_whitelist") + 1] = ",".join([*_protocols(path), "subfile"])
        target = f"subfile,,start,0,end,{subfile_end},,:{target}"
    listing = Listing()
    done = _run_child(runner, [*args, target], timeout, listing.feed)
    if done.stdout:  # a runner that collected instead of streaming
        listing.feed(done.stdout)
    data = listing.header()
    err = _storable_text(done.stderr)
    error = data.get("error") if isinstance(data, dict) else None
    if done.returncode != 0 or data is None or error or listing.overflow:
        message = _error_string(error)
        if listing.overflow:
            message = "ffprobe's output is larger than any real file's header"
        raise FFprobeFailed(done.returncode, message, err, redact_urls(listing.text()))
    if isinstance(data.get("format"), dict) and "filename" in data["format"]:
        data["format"]["filename"] = redact_urls(str(data["format"]["filename"]))
    for stream in data.get("streams") or []:
        stream.pop("nb_read_packets", None)  # (our own count is in ``packets``)
    return ProbeOutput(data, err, listing.summary(full=full), done.max_rss)


@dataclass(frozen=True)
class Decoded:
    """What a bounded decode of one stream gave: packets read, frames they decoded to, and
    the stream's index (None: the stream specifier matched no stream)."""

    packets: int
    frames: int
    index: int | None = None


def count_decoded(
    path: Source, stream: int | str, *, packets: int, ffprobe: str = "ffprobe",
    timeout: float = 30.0, runner: Runner = default_runner,
) -> Decoded:
    """Decode the first ``packets`` packets of ``stream`` of ``path``: an index, or a stream
    specifier that names one stream (``"V:0"``: the first video stream that is not cover
    art); :attr:`Decoded.index` says which stream that was. Decoders are flushed at the end,
    so every packet that decodes counts, delayed ones included. FFprobeFailed when ffprobe
    cannot open the file."""
    data = _run_for_json(runner, [*_reading_command(ffprobe, path), "-select_streams", str(stream),
                                  "-count_frames", "-count_packets", "-read_intervals",
                                  f"%+#{packets}", "-show_entries",
                                  "stream=index,nb_read_frames,nb_read_packets",
                                  "-print_format", "json", "-show_error",
                                  _file_argument(path)], timeout)
    shown = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    found: dict[str, Any] = next(
        (s for s in shown if isinstance(stream, str) or s.get("index") == stream), {})
    return Decoded(as_int(found.get("nb_read_packets")) or 0,
                   as_int(found.get("nb_read_frames")) or 0,
                   as_int(found.get("index")) if found else None)


def undecoded_tail(
    path: Source, index: int, *, ffprobe: str = "ffprobe", timeout: float = 30.0,
    runner: Runner = default_runner, start: float | None = None,
) -> Tail | None:
    """Packets at the very end of stream ``index`` (in file order) that decode to no frame:
    the packets from the last keyframe on are decoded and each matched to a frame by its
    timestamp. The read starts with a seek far past the end (the demuxer lands on the last
    keyframe it indexes), or at ``start`` seconds (a keyframe's time: a fragmented MP4
    without an index lands on its very last packet instead). None when nothing read there
    decodes (the read did not start where decoding can), else the :class:`Tail`.
    FFprobeFailed when ffprobe cannot open the file."""
    interval = _FAR_END if start is None else f"{start:.6f}%"
    data = _run_for_json(runner, [*_reading_command(ffprobe, path), "-select_streams", str(index),
                                  "-read_intervals", interval, "-show_entries",
                                  "packet=pts,dts:frame=pts,best_effort_timestamp",
                                  "-print_format", "json", "-show_error",
                                  _file_argument(path)], timeout)
    items = data.get("packets_and_frames") or []
    shown = {_first_stamp(i, "pts", "best_effort_timestamp") for i in items
             if i.get("type") == "frame"}
    if not shown - {None}:
        return None
    stamps = [_first_stamp(i, "pts", "dts") for i in items if i.get("type") == "packet"]
    cut = 0
    for stamp in reversed(stamps):
        if stamp is not None and stamp in shown:
            break
        cut += 1
    return Tail(cut, max(t for t in shown if t is not None))


def first_packet_position(
    path: Source, index: int, *, ffprobe: str = "ffprobe", timeout: float = 10.0,
    runner: Runner = default_runner,
) -> int | None:
    """The byte offset in ``path`` of the first packet of stream ``index``; None when the
    stream has no packet or the demuxer does not say. FFprobeFailed when ffprobe cannot
    open the file."""
    data = _run_for_json(runner, [*_reading_command(ffprobe, path), "-select_streams", str(index),
                                  "-read_intervals", "%+#1", "-show_entries", "packet=pos",
                                  "-print_format", "json", "-show_error",
                                  _file_argument(path)], timeout)
    found = [as_int(p.get("pos")) for p in data.get("packets") or []]
    return next((pos for pos in found if pos is not None and pos >= 0), None)


@dataclass(frozen=True)
class Tail:
    """The end of a truncated stream: ``cut`` packets (file order) that decode to no frame,
    and the pts of the latest frame that does (ticks of the stream's time base)."""

    cut: int
    last_frame: int


def _first_stamp(item: dict[str, Any], first: str, second: str) -> int | None:
    """``item[first]`` as an int, else ``item[second]``; None when neither is one."""
    value = as_int(item.get(first))
    return as_int(item.get(second)) if value is None else value


def _run_for_json(runner: Runner, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """ffprobe's JSON output as a dict; :class:`FFprobeFailed` when it exits non-zero,
    prints no JSON object, or prints one with an ``error``."""
    done = _run_child(runner, args, timeout)
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        data = None
    if done.returncode != 0 or not isinstance(data, dict) or data.get("error"):
        error = data.get("error") if isinstance(data, dict) else None
        message = _error_string(error)
        raise FFprobeFailed(done.returncode, message, _storable_text(done.stderr),
                            _storable_text(done.stdout))
    return data


@dataclass(frozen=True)
class Guess:
    """The demuxer ffprobe's probe picked and its score (100: certain; 50: by the file's
    extension alone; 25 or less: a guess ffprobe itself calls a possible misdetection)."""

    name: str | None
    score: int | None


def identify_format(
    path: Source, *, ffprobe: str = "ffprobe", timeout: float = 10.0,
    runner: Runner = default_runner,
) -> Guess:
    """The demuxer ffprobe's probe picks for ``path`` (``"hls"``, ``"srt"``, ``"gif"``...),
    read from its debug log; the whitelist still refuses it before it opens anything."""
    done = _run_child(runner, [*_reading_command(ffprobe, path, "debug"),
                               _file_argument(path)], timeout)
    log = _storable_text(done.stderr)
    found = (re.search(r"Format (\S+) probed with size=\d+ and score=(\d+)", log)
             or re.search(r"Format (\S+) detected only with low score of (\d+)", log))
    return Guess(found.group(1), int(found.group(2))) if found else Guess(None, None)


def read_log_summary(
    path: Source,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
) -> tuple[dict[str, Any] | None, str]:
    """Run ffprobe without JSON output and parse its summary: (ffprobe-like dict, log)."""
    done = _run_child(runner, [*_reading_command(ffprobe, path, "info"),
                               _file_argument(path)], timeout)
    log = _storable_text(done.stderr)
    return parse_log_summary(log), log


def _error_string(error: object) -> str | None:
    """The ``string`` of ffprobe's ``-show_error`` object, without URLs; None without one."""
    text = error.get("string") if isinstance(error, dict) else None
    return redact_urls(str(text)) if text is not None else None


def _storable_text(data: bytes) -> str:
    """ffprobe's output (log or stdout) as text that PostgreSQL jsonb accepts: UTF-8 with
    replacement characters, no NUL, and no URL (ffprobe echoes its input in its errors,
    and an object's input is a presigned URL: a credential; ``redact_urls``)."""
    return redact_urls(data.decode("utf-8", "replace").replace("\x00", ""))
