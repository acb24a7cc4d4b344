"""The browser rendition of a ready video (docs/playback.md): the cheapest version that
plays in current browsers, chosen from the stored metadata's verdict
(videodrop/playback.py), made by one ffmpeg child (or, for an MP4/MOV whose only fault is
its index at the end, by moving that index: derive/faststart.py) and checked before it
is published.

Paths (:class:`Plan`'s ``stream``), cheapest first:

* ``remux``: every stream copied into a faststart MP4 (``hvc1`` tag for HEVC, ADTS AAC
  turned into MP4's form, AVI's missing timestamps generated), or a WebM when the codecs
  are WebM's (VP8, Vorbis); an MP4/MOV/M4V on the file store whose only reason is
  ``moov_at_end`` and that holds one video and at most one audio track is instead
  copied whole with its index moved first (:func:`relocatable`; at copy speed, its
  metadata kept), ffmpeg's remux when the relocation refuses the file;
* ``transcode_audio``: the video copied, the played audio track encoded to AAC;
* ``transcode``: H.264 High 8-bit 4:2:0 + AAC, rotation and pixel shape applied, frame
  timing kept (``-fps_mode passthrough``), at most the source's height and
  VIDEODROP_RENDITION_MAX_HEIGHT (even dimensions), VIDEODROP_RENDITION_PRESET/CRF.

The HEVC rendition (kind ``hevc``, :func:`plan_hevc`) is the same remux of an 8-bit
4:2:0 HEVC video, made for browsers that decode HEVC (videodrop/playback.py's
``hevc_copyable``) beside the rendition the others get (a transcode): the page offers it
first where ``canPlayType`` says yes. An original already fit for them (``hvc1`` in a
faststart MP4 with such audio) is served as it is (``stream`` ``original``, no file).

Only the first video stream and the played audio track (the first flagged default, else
the first) are kept; no subtitle, data or attachment stream. :func:`plan` applies
VIDEODROP_RENDITIONS and VIDEODROP_TRANSCODE; :func:`make` runs ffmpeg with ``-progress``
and reports the part of the media written (0..1) as it goes; derive/rendition_check.py
checks the output."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive import faststart, rendition_check
from derive.ffmpeg import FFmpeg, FullDecode, Skipped, plain_input
from derive.source import Source, as_source
from videodrop.derivatives import Reason
from videodrop.playback import Needs, hevc_copyable, played_audio, verdict
from videodrop.settings import Settings

#: The stream a rendition serves, by the verdict's path (``always`` on a playable file:
#: ``remux``, a faststart copy).
STREAMS = ("remux", "transcode_audio", "transcode")
#: A transcode reads every frame and encodes it: its deadline counts this many media
#: seconds per second of the video (VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND each).
TRANSCODE_SECONDS_FACTOR = 4.0
#: Seconds between two progress reports at least.
PROGRESS_SECONDS = 2.0
AUDIO_BITRATE = "128k"
#: The containers (``metadata.format``) whose remux may be a relocation of the index.
RELOCATED_FORMATS = frozenset({"mp4", "mov", "m4v"})


@dataclass(frozen=True)
class Plan:
    """What to make: ``stream`` (one of :data:`STREAMS`) into ``container`` (``mp4`` or
    ``webm``); ``queue``: ``transcode`` for a video transcode (its own queue, one at a
    time per derive process), ``derive`` otherwise."""

    stream: str
    container: str
    #: the kind it is made for: ``rendition`` or ``hevc`` (its file's name)
    kind: str = "rendition"

    @property
    def queue(self) -> str:
        return "transcode" if self.stream == "transcode" else "derive"

    @property
    def file_name(self) -> str:
        return f"{self.kind}.{self.container}"

    @property
    def hevc(self) -> bool:
        """Made for browsers that decode HEVC (judged by ``verdict(…, hevc=True)``)."""
        return self.kind == "hevc"

    @property
    def content_type(self) -> str:
        return f"video/{self.container}"


def plan(metadata: Mapping[str, Any], settings: Settings, *, wanted: bool = False) -> Plan:
    """The rendition to make of a video with ``metadata`` under ``settings``; ``wanted``:
    someone asked to watch it (an on-view transcode). :class:`Skipped` with
    ``renditions_off``, ``not_needed`` (the original plays, mode ``auto``), ``no_path``
    (an unknown fact), ``transcode_off`` or ``on_view``. A file with corrupt packets
    (:func:`damaged`) is transcoded rather than copied."""
    if settings.renditions == "off":
        raise Skipped(Reason.RENDITIONS_OFF, "VIDEODROP_RENDITIONS=off: no rendition is made")
    found = verdict(metadata)
    if found.playable is True:
        if settings.renditions == "always":
            webm = metadata.get("format") == "webm"
            return Plan("remux", "webm" if webm else "mp4")
        raise Skipped(Reason.NOT_NEEDED, "the original plays in current browsers")
    if found.needs is None:
        raise Skipped(Reason.NO_PATH, "the verdict cannot say what would make it play"
                      f" (unknown: {', '.join(found.unknown) or 'nothing'}); `videodrop"
                      " requeue` probes it again")
    needs = found.needs
    if needs is not Needs.TRANSCODE and (damaged(metadata) or reordered_untimed(metadata)):
        needs = Needs.TRANSCODE  # a copy would carry the damage or lose the frames' order
    if needs in (Needs.TRANSCODE, Needs.TRANSCODE_AUDIO):
        if settings.transcode == "off":
            raise Skipped(Reason.TRANSCODE_OFF, f"it needs a {needs.value.replace('_', ' ')}"
                          " and VIDEODROP_TRANSCODE=off")
        if settings.transcode == "on-view" and not wanted:
            raise Skipped(Reason.ON_VIEW, f"its {needs.value.replace('_', ' ')} starts"
                          " when someone asks to watch it (VIDEODROP_TRANSCODE=on-view)")
    if needs is Needs.REMUX:
        return Plan("remux", found.target or "mp4")
    return Plan(needs.value, "mp4")


def plan_hevc(metadata: Mapping[str, Any], settings: Settings) -> Plan:
    """The HEVC rendition of a video with ``metadata``: a remux into a faststart MP4
    tagged ``hvc1`` (``stream`` ``remux``), or the original as it is (``original``: it
    plays where HEVC decodes). :class:`Skipped` with ``renditions_off``, ``not_needed``
    (the video is not HEVC: the rendition serves every browser), ``no_path`` (the
    HEVC needs more than a copy: 10-bit, 4:2:2, audio MP4 does not carry as it is, an
    AVI, corrupt packets)."""
    if settings.renditions == "off":
        raise Skipped(Reason.RENDITIONS_OFF, "VIDEODROP_RENDITIONS=off: no rendition is made")
    video = metadata.get("video") or {}
    if (video.get("codec") or metadata.get("codec")) != "hevc":
        raise Skipped(Reason.NOT_NEEDED, "the video is not HEVC")
    if not hevc_copyable(metadata) or damaged(metadata):
        raise Skipped(Reason.NO_PATH, "this HEVC needs more than a stream copy to play where"
                      " HEVC decodes (10-bit, 4:2:2, its audio or its container): the"
                      " rendition's transcode serves every browser")
    if verdict(metadata, hevc=True).playable is True:
        return Plan("original", "mp4", "hevc")
    return Plan("remux", "mp4", "hevc")


def damaged(metadata: Mapping[str, Any]) -> bool:
    """Whether ffprobe found corrupt packets in the file (its warning in the metadata's
    ``warnings``): a stream copy would hand them to the browser's decoder (an H.264 stream
    in Annex B form inside an MP4 stops Chromium at its first frame), a transcode keeps
    the frames that decode."""
    return any(str(w).startswith("ffprobe: Packet corrupt")
               for w in metadata.get("warnings") or [])


#: ffprobe's ``field_order`` of interlaced video (top or bottom field first, coded and
#: shown). Its transcode is deinterlaced first (``yadif``, one frame per frame, only the
#: frames flagged interlaced): browsers show every frame progressive, and two fields
#: woven together show combs on anything that moves; scaling before would mix the fields.
INTERLACED = frozenset({"tt", "bb", "tb", "bt"})

#: Containers whose packets carry no presentation time (pts), only their order.
UNTIMED = frozenset({"avi"})


def reordered_untimed(metadata: Mapping[str, Any]) -> bool:
    """Whether the video is stored in decoding order with frames shown in another (B-frames:
    ffprobe's ``has_b_frames`` > 0) in a container that keeps no presentation times
    (:data:`UNTIMED`): a stream copy would have to invent each packet's pts (``+genpts``:
    pts = dts, in decoding order), and browsers then drop or misplace the reordered
    frames; only a decode restores their order. Unknown (a record probed before
    ``has_b_frames`` was kept) is False: the remux it always got."""
    video = metadata.get("video") or {}
    return metadata.get("format") in UNTIMED and (video.get("has_b_frames") or 0) > 0


def output_args(chosen: Plan, metadata: Mapping[str, Any], settings: Settings) -> list[str]:
    """ffmpeg's arguments after the input for ``chosen`` (without the output file)."""
    video = metadata.get("video") or {}
    audio = played_audio(metadata.get("audio_tracks") or [])
    args = ["-map", f"0:{video['index']}" if video.get("index") is not None else "0:v:0"]
    if audio is not None and audio.get("index") is not None:
        args += ["-map", f"0:{audio['index']}"]
    args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
    if chosen.stream == "transcode":
        filters = [scale_filter(settings.rendition_max_height)]
        if video.get("field_order") in INTERLACED:  # the fields, before any scaling
            filters.insert(0, "yadif=deint=interlaced")
        if metadata.get("format") in UNTIMED:  # from 0 (input_options: no +genpts here)
            filters.insert(0, "setpts=PTS-STARTPTS")
        args += ["-c:v", "libx264", "-preset", settings.rendition_preset,
                 "-crf", str(settings.rendition_crf), "-profile:v", "high",
                 "-pix_fmt", "yuv420p", "-vf", ",".join(filters), "-fps_mode", "passthrough"]
    else:
        args += ["-c:v", "copy"]
        if video.get("codec") == "hevc":
            args += ["-tag:v", "hvc1"]
    if audio is not None:
        if chosen.stream == "remux":
            args += ["-c:a", "copy"]
            if audio.get("codec") == "aac" and metadata.get("format") in ("ts", "flv"):
                args += ["-bsf:a", "aac_adtstoasc"]
        else:
            args += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
    if chosen.container == "mp4":
        args += ["-movflags", "+faststart", "-f", "mp4"]
    else:
        args += ["-f", "webm"]
    return args


def scale_filter(max_height: int) -> str:
    """Square pixels (the sample aspect ratio applied), then at most ``max_height`` rows
    and never more than the source's, both sides even and at least 2 (a 1-pixel side
    would round to 0: x264 refuses it). ffmpeg applies the rotation before it
    (autorotation), so the height is the one shown."""
    return ("scale=w='max(2,trunc(iw*sar/2)*2)':h='max(2,trunc(ih/2)*2)',setsar=1,"
            f"scale=w=-2:h='max(2,trunc(min({max_height},ih)/2)*2)'")


def input_options(metadata: Mapping[str, Any], chosen: Plan | None = None) -> list[str]:
    """Before the input: the packets of an AVI (no presentation times, :data:`UNTIMED`)
    get them generated when the video is copied (``chosen`` a remux or an audio
    transcode; None: copied). A video transcode reads them without: the decoder gives
    each frame its time in presentation order (``+genpts`` gave reordered frames the
    times of others), and the video starts at 0 (``setpts=PTS-STARTPTS`` in
    :func:`output_args`: the decoder's first time is its reorder delay)."""
    copied = chosen is None or chosen.stream != "transcode"
    return ["-fflags", "+genpts"] if metadata.get("format") in UNTIMED and copied else []


def relocatable(chosen: Plan, metadata: Mapping[str, Any]) -> bool:
    """Whether the remux may be the original with its index moved first
    (derive/faststart.py) rather than ffmpeg's: an MP4/MOV/M4V whose only reason is
    ``moov_at_end`` (its codecs and tag play), with no stream the rendition would drop
    (more than one audio track, subtitles, data, attachments)."""
    codes = [code.value for code, _ in verdict(metadata, hevc=chosen.hevc).reasons]
    return (chosen.stream == "remux" and chosen.container == "mp4"
            and metadata.get("format") in RELOCATED_FORMATS and codes == ["moov_at_end"]
            and len(metadata.get("audio_tracks") or []) <= 1
            and not any(metadata.get(k) for k in ("subtitles", "data_streams",
                                                   "attachments")))


def make(ffmpeg: FFmpeg, settings: Settings, chosen: Plan, path: Path | Source,
         metadata: Mapping[str, Any], *, out: Path,
         progress: Callable[[float], None] | None = None,
         relocate: bool = True) -> dict[str, Any]:
    """Write ``chosen`` of the video at ``path`` to ``out`` and check it
    (derive/rendition_check.py); its facts: ``stream``, ``content_type``, ``width``,
    ``height``, ``video_codec``, ``audio_codec``, ``rotation``, ``bytes``, ``ms`` (the
    time it took), ``made_by`` (``moov_relocation``: the original's index moved first, a
    file of this machine that :func:`relocatable` allows; ``ffmpeg`` otherwise, with
    ``relocation_refused``, the sentence, when the relocation was tried and refused).
    ``progress(part)`` (0..1) at most every :data:`PROGRESS_SECONDS`; ``relocate``
    False: ffmpeg's remux even where the relocation applies (bench/renditions.py compares
    them). :class:`Failed` (timeout, resource limit, ffmpeg's error, an output that does
    not pass)."""
    duration = metadata.get("duration")
    seconds = float(duration) if isinstance(duration, int | float) and duration > 0 else None
    reading = seconds * TRANSCODE_SECONDS_FACTOR if seconds and chosen.stream == "transcode" \
        else seconds
    watcher = _Progress(seconds, progress)
    t0 = time.perf_counter()
    local = as_source(path).local_path() if relocate and relocatable(chosen, metadata) \
        else None
    refused: dict[str, str] = {}
    if local is not None:
        try:
            faststart.relocate(local, out, deadline=ffmpeg.deadline.of(FullDecode(path, reading)),
                               progress=watcher.at)
            facts = rendition_check.relocated(metadata, out, hevc=chosen.hevc)
            after_the_original(out, local)
            return {"stream": chosen.stream, "content_type": chosen.content_type, **facts,
                    "bytes": out.stat().st_size,
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                    "made_by": "moov_relocation"}
        except faststart.Unfit as exc:
            refused = {"relocation_refused": str(exc)}
            out.unlink(missing_ok=True)
    args = [*input_options(metadata, chosen), *plain_input(path),
            *output_args(chosen, metadata, settings),
            "-progress", "pipe:1", f"file:{out}"]
    ffmpeg.run(args, on_stdout=watcher.feed, full=FullDecode(path, reading))
    ms = round((time.perf_counter() - t0) * 1000, 1)
    facts = rendition_check.check(ffmpeg.runner, settings.ffprobe, out, chosen.container,
                                  transcoded=chosen.stream == "transcode", hevc=chosen.hevc)
    after_the_original(out, as_source(path).local_path())
    return {"stream": chosen.stream, "content_type": chosen.content_type, **facts,
            "bytes": out.stat().st_size, "ms": ms, "made_by": "ffmpeg", **refused}


def after_the_original(out: Path, original: Path | None) -> None:
    """Date ``out`` at least a whole second after the ``original`` file (on this
    machine; an object store's ETag is its content's). The ETag of ``/stream/`` (the API's
    and nginx's of a stream link, api/files/conditional.py) is the mtime's second and the
    size, and a moved index is exactly the original's size: a rendition made in the
    second the original was last written (an upload made ready at once, an inbox file
    stamped ahead) had the original's ETag, so a browser holding the original from
    ``/stream/`` was answered 304, or had the rendition's bytes spliced onto the
    original's by an ``If-Range`` resume. Never older than the original either (its
    Last-Modified)."""
    if original is None:
        return
    try:
        second = original.stat().st_mtime_ns // 1_000_000_000
    except OSError:
        return
    made = out.stat()
    if made.st_mtime_ns // 1_000_000_000 <= second:
        os.utime(out, ns=(made.st_atime_ns, (second + 1) * 1_000_000_000))


class _Progress:
    """Reads ffmpeg's ``-progress`` lines (``out_time_us=…``) and reports the part of
    ``seconds`` written, at most every :data:`PROGRESS_SECONDS`."""

    def __init__(self, seconds: float | None, report: Callable[[float], None] | None) -> None:
        self.seconds = seconds
        self.report = report
        self.last = time.monotonic()
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self.tail + chunk).split(b"\n")
        self.tail = lines.pop()
        if self.report is None or not self.seconds:
            return
        for line in lines:
            key, _, value = line.partition(b"=")
            if key != b"out_time_us" or not value.strip().lstrip(b"-").isdigit():
                continue
            self.at(int(value) / 1e6 / self.seconds)

    def at(self, part: float) -> None:
        """Report ``part`` (0..1) of the work done, unless the last report is recent."""
        now = time.monotonic()
        if self.report is not None and now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.report(round(min(1.0, max(0.0, part)), 3))
