"""probe_file(): one file in, a verdict and normalised metadata out. No database, no broker.

It never raises for a bad file (empty, garbage, truncated, ffprobe hanging): those come
back as ``ok=False`` with a short reason. FFprobeMissing propagates (the worker refuses to
start); so does OSError when the file cannot be read at all (the worker retries that).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prober.ffprobe import (
    FFprobeFailed,
    FFprobeMissing,
    FFprobeTimeout,
    PacketSummary,
    ProbeError,
    ProbeOutput,
    Runner,
    default_runner,
    ffprobe_version,
    read_log_summary,
    run_probe,
    scan_packets,
    stream_time_bases,
)
from prober.metadata import assess, base_metadata, real_video_streams

__all__ = ["ProbeResult", "probe_file"]

_MAX_REASON = 160
#: Share of the deadline the first ffprobe run (header and packet tail together) may use.
_COMBINED_SHARE = 0.8


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    error: str | None  # short reason when not ok
    metadata: dict[str, Any]  # normalised, JSON-serialisable (partial when failed)
    raw: dict[str, Any] | None  # raw ffprobe JSON (None if ffprobe could not run)


class _Deadline:
    """One budget for every ffprobe run of a probe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise FFprobeTimeout(self.seconds)
        return left


def probe_file(
    path: Path,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
    version: str | None = None,
) -> ProbeResult:
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:  # unreadable -> OSError for the caller to retry
        head = handle.read(4096)
    if size == 0:
        return _failed("empty file", base_metadata(path.name, 0, version), None)
    deadline = _Deadline(timeout)  # one budget for every ffprobe run of this file
    try:
        if version is None:
            version = _version(ffprobe, runner, deadline)
        return _probe(
            path,
            size=size,
            head=head,
            version=version,
            ffprobe=ffprobe,
            runner=runner,
            deadline=deadline,
        )
    except FFprobeMissing:
        raise
    except FFprobeTimeout:
        meta = base_metadata(path.name, size, version)
        return _failed(f"timed out after {timeout:g} s", meta, None)
    except ProbeError as exc:  # ffprobe misbehaving (e.g. output that is not JSON)
        return _failed(f"ffprobe failed: {exc}", base_metadata(path.name, size, version), None)


def _version(ffprobe: str, runner: Runner, deadline: _Deadline) -> str | None:
    try:
        return ffprobe_version(ffprobe, runner, timeout=deadline.left())
    except (FFprobeMissing, FFprobeTimeout):
        raise
    except ProbeError:
        return None


def _probe(
    path: Path,
    *,
    size: int,
    head: bytes,
    version: str | None,
    ffprobe: str,
    runner: Runner,
    deadline: _Deadline,
) -> ProbeResult:
    warnings: list[str] = []
    log = ""
    from_log = False
    tail: PacketSummary | None = None
    try:
        output = _header_and_tail(path, ffprobe=ffprobe, runner=runner, deadline=deadline)
        raw, log, tail = output.data, output.log, output.tail
    except FFprobeFailed as exc:
        if exc.error or exc.returncode < 0 or exc.stdout.strip() not in {"", "{"}:
            meta = base_metadata(path.name, size, version)
            meta["warnings"] = [f"ffprobe: {line}" for line in _detail_lines(exc.stderr)]
            return _failed(_not_media(exc), meta, _error_raw(exc))
        # ffprobe opened the container but refused to print it (a decoder it lacks):
        # read its human summary instead.
        summary, text = read_log_summary(
            path, ffprobe=ffprobe, timeout=deadline.left(), runner=runner
        )
        if summary is None:
            meta = base_metadata(path.name, size, version)
            return _failed(_not_media(exc), meta, _error_raw(exc))
        raw, from_log = {**summary, "ffprobe_log": text}, True
        problems = [line for line in _detail_lines(text) if "Could not open codec" in line]
        detail = f" ({problems[0]})" if problems else ""
        warnings.append(f"ffprobe could not print JSON{detail}: metadata read from its summary log")

    packets: PacketSummary | None = None
    scan_timed_out = False
    videos = real_video_streams(raw)
    if videos and not from_log:  # (a file ffprobe cannot print, it cannot scan either)
        try:  # runs ffprobe again only when the tail read with the header is not enough
            packets = scan_packets(
                path,
                stream_time_bases(raw),
                must_see=[int(s.get("index", -1)) for s in videos],
                ffprobe=ffprobe,
                timeout=deadline.left(),
                runner=runner,
                tail=tail,
            )
        except FFprobeTimeout:
            scan_timed_out = True
            warnings.append(f"packet scan stopped at the {deadline.seconds:g} s deadline")
    outcome = assess(
        raw,
        filename=path.name,
        size=size,
        version=version,
        packets=packets,
        doctype=_ebml_doctype(head),
        log=log,
        warnings=warnings,
    )
    if outcome.error and scan_timed_out:  # decided without the packets it needed
        return _failed(f"timed out after {deadline.seconds:g} s", outcome.metadata, raw)
    if outcome.error:
        return _failed(outcome.error, outcome.metadata, raw)
    return ProbeResult(True, None, outcome.metadata, raw)


def _header_and_tail(
    path: Path, *, ffprobe: str, runner: Runner, deadline: _Deadline
) -> ProbeOutput:
    """Header and packet tail in one ffprobe run: one process per file in the common case.

    The tail is what can take long (a file with few keyframes is read almost whole), so
    that run gets most of the budget, not all: when it overruns, the header is read alone,
    as before, and the packet scan's own timeout keeps the header's duration.
    """
    try:
        budget = deadline.left() * _COMBINED_SHARE
        return run_probe(path, ffprobe=ffprobe, timeout=budget, runner=runner, read_tail=True)
    except FFprobeTimeout:
        return run_probe(path, ffprobe=ffprobe, timeout=deadline.left(), runner=runner)


def _failed(reason: str, metadata: dict[str, Any], raw: dict[str, Any] | None) -> ProbeResult:
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return ProbeResult(False, reason, metadata, raw)


def _not_media(exc: FFprobeFailed) -> str:
    if exc.returncode < 0:
        return f"not a media file: ffprobe crashed (signal {-exc.returncode})"
    message = exc.error or f"ffprobe exited with status {exc.returncode}"
    details = [d for d in _detail_lines(exc.stderr) if message not in d]
    return f"not a media file: {message}" + (f" ({details[0]})" if details else "")


def _detail_lines(stderr: str) -> list[str]:
    """ffprobe's log lines without the ``[demuxer @ 0x…]`` prefix or the file echo; lines
    from a demuxer or decoder (they had that prefix) come first."""
    tagged: list[str] = []
    plain: list[str] = []
    for line in stderr.splitlines():
        text = re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*", "", line.strip())
        if text and not text.startswith("file:") and text not in tagged + plain:
            (tagged if text != line.strip() else plain).append(text)
    return tagged + plain


def _error_raw(exc: FFprobeFailed) -> dict[str, Any]:
    return {"error": {"string": exc.error, "returncode": exc.returncode}, "stderr": exc.stderr}


def _ebml_doctype(head: bytes) -> str | None:
    """The DocType ("webm" or "matroska") from a Matroska file's EBML header."""
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    at = head.find(b"\x42\x82", 4, 64)
    if at < 0 or at + 2 >= len(head):
        return None
    first = head[at + 2]
    width = next((i + 1 for i in range(8) if first & (0x80 >> i)), 0)
    if not width:
        return None
    length = first & (0xFF >> width)
    for byte in head[at + 3 : at + 2 + width]:
        length = (length << 8) | byte
    start = at + 2 + width
    return head[start : start + length].rstrip(b"\x00").decode("ascii", "replace").lower()
