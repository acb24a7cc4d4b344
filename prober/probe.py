"""probe_file(): one file in, a verdict and normalised metadata out. No database, no broker.

It never raises for a bad file (empty, garbage, truncated, hostile, ffprobe hanging):
those come back as ``ok=False`` with a code from :class:`videodrop.errorcodes.ErrorCode`
and a short sentence. FFprobeMissing propagates (the worker refuses to start); so does
OSError when the file cannot be read at all (the worker retries that).

A good file costs two ffprobe runs, at the same time: the header and every packet in one,
and beside it a decode of the main video stream's first packets, guessed before the
listing names that stream and its first keyframe (:mod:`prober.decodes`; the guess counts
only when it is the decode the listing asks for). When it is not (the main video is not
the first video stream that is not cover art, its first packet is no keyframe), that
decode runs after the listing, a third run. A file the demuxer says is cut costs a decode
of its tail too; an MP4/MOV with audio ffprobe names mp3, one more a track (its first
packet's place: :mod:`prober.browser_facts`). More runs only for files that fail the
first (the guess ran beside it for nothing): a format outside the accepted containers (a
debug run names it), an ISO BMFF file ffprobe cannot open (its complete prefix is
probed), a file whose JSON ffprobe refuses to print (its summary log is read), or a full
read that overran most of the deadline (the header and the packet tail are read instead).
Every run is a child of its own under the one deadline and the runner's child limits;
none outlives the probe. The result's ``stages`` say how long each took.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prober.browser_facts import add_browser_facts
from prober.context import Context, Deadline, Stages
from prober.decodes import HeadGuess, decode_checks
from prober.ffprobe import (
    Decoded,
    FFprobeFailed,
    FFprobeMissing,
    FFprobeTimeout,
    ProbeError,
    ProbeOutput,
    Runner,
    default_runner,
    ffprobe_version,
    identify_format,
    read_log_summary,
    run_probe,
)
from prober.inputs import ProbeInput, as_input
from prober.isobmff import Boxes, top_level_boxes
from prober.metadata import assess, base_metadata, real_video_streams
from videodrop.errorcodes import ErrorCode

__all__ = ["ProbeResult", "probe_file"]

_MAX_REASON = 160
#: Share of the deadline the full read (header and every packet) may use.
_FULL_SHARE = 0.8
#: What the refused demuxers are, in words (others are named by ffprobe's short name).
_KINDS = {
    "hls": "an HLS playlist (it names other files to read)",
    "concat": "a concat list (it names other files to read)",
    "image2": "an image sequence", "gif": "a GIF animation", "apng": "an animated PNG",
    "srt": "SubRip subtitles", "webvtt": "WebVTT subtitles", "ass": "ASS subtitles",
    "mp3": "MP3 audio", "wav": "WAV audio", "aac": "raw AAC audio",
    "flac": "FLAC audio", "ogg": "an Ogg file", "mpeg": "an MPEG program stream",
}  # fmt: skip
#: A probe score at or below this is ffprobe's "misdetection possible" (AVPROBE_SCORE_MAX/4).
_GUESS = 25
#: Image kinds whose content has no signature: only their name tells them (libavformat's
#: image2 demuxer by extension). Others are recognised by their content (``*_pipe``).
_UNSIGNED_IMAGES = frozenset({"tga", "vda", "icb", "vst", "yuv", "y", "raw", "im1", "im8",
                              "im24", "im32", "rs", "pix"})
_OOM = "Cannot allocate memory"  # ENOMEM: the address space limit (VIDEODROP_CHILD_MEMORY)
_LIMIT_SIGNALS: dict[int, str] = {signal.SIGKILL: "CPU time", signal.SIGXCPU: "CPU time",
                                  signal.SIGXFSZ: "file size"}


@dataclass(frozen=True)
class ProbeResult:
    """A probe's verdict: ``ok`` (the file is a video to serve) or not, with ``error`` (a
    sentence of at most 160 characters) and ``code``; the metadata as the record and
    ``file_info`` show it, and ffprobe's own JSON."""

    ok: bool
    error: str | None  # short reason when not ok
    metadata: dict[str, Any]  # normalised, JSON-serialisable (partial when failed)
    raw: dict[str, Any] | None  # raw ffprobe JSON (None if ffprobe could not run)
    code: ErrorCode | None = None  # set exactly when not ok
    #: wall-clock ms of each stage (``listing_ms``, ``head_guess_ms``, ``head_wait_ms``,
    #: ``head_ms``, ``tail_ms``) and how the guessed head decode went (``head_guess``)
    stages: dict[str, Any] = field(default_factory=dict)


def probe_file(
    path: Path | ProbeInput,
    *,
    ffprobe: str = "ffprobe",
    timeout: float = 30.0,
    runner: Runner = default_runner,
    version: str | None = None,
) -> ProbeResult:
    """Probe the file at ``path`` (or the input: an object read where it lies,
    :mod:`prober.inputs`) with the ffprobe binary ``ffprobe``, every run of it
    within ``timeout`` seconds in all, each child through ``runner`` (its limits);
    ``version`` is ffprobe's, asked once per process by the caller (None: asked here).
    Never raises for a bad file (see the module); :class:`FFprobeMissing` and OSError
    (the file cannot be read) do propagate."""
    source = as_input(path)  # a file that cannot be looked at -> OSError for the caller
    size = source.size
    head = source.read_at(0, 4096)  # unreadable -> OSError (or StoreUnavailable): retried
    if size == 0:
        return _failed("empty file", ErrorCode.EMPTY, base_metadata(source.name, 0, version))
    deadline = Deadline(timeout)  # one budget for every ffprobe run of this file
    stages = Stages()
    try:
        if version is None:
            version = _version_or_none(ffprobe, runner, deadline)
        ctx = Context(source, size, head, version, ffprobe, runner, deadline, stages)
        result = _with_bounded_values(_probe(ctx))
    except FFprobeMissing:
        raise
    except FFprobeTimeout:
        meta = base_metadata(source.name, size, version)
        result = _failed(f"timed out after {timeout:g} s", ErrorCode.TIMEOUT, meta)
    except ProbeError as exc:  # ffprobe misbehaving (e.g. output that is not JSON)
        meta = base_metadata(source.name, size, version)
        result = _failed(f"ffprobe failed: {exc}", ErrorCode.UNREADABLE, meta)
    return replace(result, stages=stages.summary())

#: What a file's writer controls (tags, titles, chapters, attachment names) is kept to
#: this much in the record: a text of at most MAX_TEXT characters, a list or mapping of at
#: most MAX_ITEMS entries. The cut is said in ``warnings``.
MAX_TEXT = 2048
MAX_ITEMS = 256


def _with_bounded_values(result: ProbeResult) -> ProbeResult:
    """``result`` with every text and list of its metadata and raw JSON bounded (an 8 MiB
    title tag or 20,000 chapters would otherwise be stored, cached and served whole)."""
    cuts: list[str] = []
    metadata = _cut_to_bounds(result.metadata, "", cuts)
    raw = _cut_to_bounds(result.raw, "", []) if result.raw is not None else None
    if cuts:
        shown = ", ".join(cuts[:5]) + (f" and {len(cuts) - 5} more" if len(cuts) > 5 else "")
        metadata["warnings"] = [*metadata.get("warnings", [])[:MAX_ITEMS - 1],
                                f"metadata cut to {MAX_TEXT} characters a text and"
                                f" {MAX_ITEMS} entries a list: {shown}"]
    return ProbeResult(result.ok, result.error, metadata, raw, result.code)


def _cut_to_bounds(value: Any, where: str, cuts: list[str]) -> Any:
    """``value`` (JSON: text, list, mapping, number) with texts cut to MAX_TEXT characters
    and lists and mappings to MAX_ITEMS entries, at any depth; each cut is named in
    ``cuts`` by its dotted path ``where`` (the ``warnings`` list itself is not named)."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        cuts.append(f"{where or 'a value'} ({len(value)} characters)")
        return value[:MAX_TEXT - 1] + "…"
    if isinstance(value, dict):
        items = list(value.items())
        if len(items) > MAX_ITEMS:
            cuts.append(f"{where or 'a mapping'} ({len(items)} entries)")
        return {(k[:MAX_TEXT] if isinstance(k, str) else k):
                _cut_to_bounds(v, f"{where}.{k}".strip("."), cuts)
                for k, v in items[:MAX_ITEMS]}
    if isinstance(value, list):
        if len(value) > MAX_ITEMS and where != "warnings":
            cuts.append(f"{where or 'a list'} ({len(value)} entries)")
        return [_cut_to_bounds(v, where, cuts) for v in value[:MAX_ITEMS]]
    return value


def _version_or_none(ffprobe: str, runner: Runner, deadline: Deadline) -> str | None:
    try:
        return ffprobe_version(ffprobe, runner, timeout=deadline.left())
    except (FFprobeMissing, FFprobeTimeout):
        raise
    except ProbeError:
        return None


def _probe(ctx: Context) -> ProbeResult:
    warnings: list[str] = []
    guess = HeadGuess(ctx)  # alongside the listing (prober/decodes.py)
    try:
        try:
            with ctx.stages.timed("listing"):
                output = _header_and_packets(ctx, warnings)
        except FFprobeFailed as exc:
            return _unopened(ctx, exc)
        if not output.packets.full and not output.packets.count(
                [int(s.get("index", -1)) for s in real_video_streams(output.data)]):
            raise FFprobeTimeout(ctx.deadline.seconds)  # nothing to decide with
        decoded = decode_checks(ctx, output, guess)
        return _assessed(ctx, output.data, output, warnings, decoded=decoded)
    finally:
        guess.join()  # (its child ends by the deadline at the latest)


def _assessed(ctx: Context, raw: dict[str, Any], output: ProbeOutput | None,
              warnings: list[str], *, decoded: Decoded | None = None) -> ProbeResult:
    outcome = assess(
        raw,
        filename=ctx.source.name,
        size=ctx.size,
        version=ctx.version,
        packets=output.packets if output is not None else None,
        doctype=_ebml_doctype(ctx.head),
        log=output.log if output is not None else "",
        warnings=warnings,
        decoded=decoded,
    )
    if outcome.error:
        return _failed(outcome.error, outcome.code or ErrorCode.UNREADABLE, outcome.metadata,
                       raw)
    add_browser_facts(ctx.source, outcome.metadata, ffprobe=ctx.ffprobe, runner=ctx.runner,
                      timeout=ctx.deadline.left())
    return ProbeResult(True, None, outcome.metadata, raw)


def _header_and_packets(ctx: Context, warnings: list[str]) -> ProbeOutput:
    """Header and every packet in one ffprobe run. When that overruns most of the budget
    (a huge file on a slow disk), the header and the packets after the last keyframe are
    read instead: the duration is still the packets', the frame count and rate the
    header's, and a warning says so."""
    budget = ctx.deadline.left() * _FULL_SHARE
    try:
        return run_probe(ctx.source, ffprobe=ctx.ffprobe, timeout=budget, runner=ctx.runner)
    except FFprobeTimeout:
        warnings.append(f"reading every packet took longer than {budget:.3g} s: frame count"
                        " and rate are the header's, the duration the last packets'")
        return run_probe(ctx.source, ffprobe=ctx.ffprobe, timeout=ctx.deadline.left(),
                         runner=ctx.runner, full=False)


def _unopened(ctx: Context, exc: FFprobeFailed) -> ProbeResult:
    """ffprobe could not open the file: say what it is, or read what it can."""
    if exc.refused:
        return _refused(ctx)
    if exc.returncode < 0 or _OOM in f"{exc.error} {exc.stderr}":
        return _ffprobe_crashed(ctx, exc)
    boxes = top_level_boxes(ctx.source)
    if boxes is not None and boxes.cut is not None:
        return _cut_mp4(ctx, exc, boxes)
    if exc.error or exc.stdout.strip() not in {"", "{"}:
        meta = ctx.base()
        meta["warnings"] = [f"ffprobe: {line}" for line in _detail_lines(exc.stderr)]
        return _failed(_not_media(exc), ErrorCode.NOT_MEDIA, meta, _error_raw(exc))
    # ffprobe opened the container but refused to print it (a decoder it lacks): read its
    # human summary instead.
    summary, text = read_log_summary(ctx.source, ffprobe=ctx.ffprobe, timeout=ctx.deadline.left(),
                                     runner=ctx.runner)
    if summary is None:
        return _failed(_not_media(exc), ErrorCode.NOT_MEDIA, ctx.base(), _error_raw(exc))
    problems = [line for line in _detail_lines(text) if "Could not open codec" in line]
    detail = f" ({problems[0]})" if problems else ""
    warnings = [f"ffprobe could not print JSON{detail}: metadata read from its summary log"]
    return _assessed(ctx, {**summary, "ffprobe_log": text}, None, warnings)


def _refused(ctx: Context) -> ProbeResult:
    """A format outside the accepted containers: named from ffprobe's probe. Content that
    no demuxer recognises (ffprobe's best guess is a possible misdetection, or an image
    sequence chosen by the file's extension alone for a kind of image that its content
    would name) is not media at all."""
    guess = identify_format(ctx.source, ffprobe=ctx.ffprobe, timeout=ctx.deadline.left(),
                            runner=ctx.runner)
    name = guess.name
    meta = ctx.base()
    meta["format_name"] = name
    by_name = name == "image2" and ctx.source.suffix.lower().lstrip(".") not in _UNSIGNED_IMAGES
    text = name == "tty"  # (chosen by a text extension: .txt, .nfo, .asc...)
    if name is None or (guess.score is not None and guess.score <= _GUESS) or by_name or text:
        what = ("its name says an image, its content is none" if by_name else
                "its content is text" if text else "no format recognises its content")
        meta["format_name"] = None
        return _failed(f"not a media file: {what}", ErrorCode.NOT_MEDIA, meta)
    if name.endswith("_pipe") or name == "image2":
        kind = name.removesuffix("_pipe").upper()
        return _failed(f"still image ({kind}), not a video", ErrorCode.STILL_IMAGE, meta)
    what = _KINDS.get(name, f"'{name}' content")
    return _failed(f"unsupported container: the content is {what}, not one of the accepted"
                   " video containers", ErrorCode.UNSUPPORTED_CONTAINER, meta)


def _ffprobe_crashed(ctx: Context, exc: FFprobeFailed) -> ProbeResult:
    number = -exc.returncode
    meta = ctx.base()
    if _OOM in f"{exc.error} {exc.stderr}":
        return _failed(f"ffprobe stopped at its memory limit ({_OOM.lower()})",
                       ErrorCode.RESOURCE_LIMIT, meta, _error_raw(exc))
    if number in _LIMIT_SIGNALS:
        return _failed(f"ffprobe stopped at its {_LIMIT_SIGNALS[number]} limit (signal"
                       f" {number})", ErrorCode.RESOURCE_LIMIT, meta, _error_raw(exc))
    return _failed(f"ffprobe crashed (signal {number})", ErrorCode.UNREADABLE, meta,
                   _error_raw(exc))


def _cut_mp4(ctx: Context, exc: FFprobeFailed, boxes: Boxes) -> ProbeResult:
    """An MP4/MOV that ends inside a box. Without a ``moov`` nothing plays; a fragmented
    one whose last fragment is cut plays its complete fragments (the file's prefix up to
    the last complete box), but ffmpeg will not open the file as it is."""
    complete, fragments = boxes.complete_end, boxes.fragments
    where = f"the file ends inside a '{boxes.cut}' box (at byte {complete})"
    meta = ctx.base()
    meta["warnings"] = [f"ffprobe: {line}" for line in _detail_lines(exc.stderr)]
    if "moov" not in boxes.kinds:
        return _failed(f"truncated: {where}, before its index (moov) was written: nothing"
                       " in it plays", ErrorCode.TRUNCATED, meta, _error_raw(exc))
    try:
        prefix = run_probe(ctx.source, ffprobe=ctx.ffprobe, timeout=ctx.deadline.left(),
                           runner=ctx.runner, subfile_end=complete)
    except FFprobeFailed:
        return _failed(f"truncated: {where}; ffprobe cannot open it", ErrorCode.TRUNCATED,
                       meta, _error_raw(exc))
    part = _assessed(replace(ctx, size=complete), prefix.data, prefix, [])
    plays = part.metadata.get("duration") if part.ok else None
    text = (f"truncated: {where}; ffmpeg cannot open it as it is; its {fragments} complete"
            f" fragment{'s' if fragments != 1 else ''} play {plays:g} s") if plays else (
        f"truncated: {where}; nothing in it plays")
    meta = {**part.metadata, "size": ctx.size, "playable_bytes": complete}
    meta["warnings"] = [*meta.get("warnings", []), text]
    return _failed(text, ErrorCode.TRUNCATED, meta, prefix.data)


def _failed(reason: str, code: ErrorCode, metadata: dict[str, Any],
            raw: dict[str, Any] | None = None) -> ProbeResult:
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return ProbeResult(False, reason, metadata, raw, code)


def _not_media(exc: FFprobeFailed) -> str:
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
