"""ffprobe JSON and packets -> normalised, JSON-serialisable metadata and a verdict. Pure.

Verdict: ``ready`` only when the content is one of the accepted containers
(:data:`videodrop.formats.DEMUXERS`) holding at least one real video stream (not cover
art, not a still image) with at least one packet of video data.

Numbers: duration, fps, frame count and bitrate come from the packets actually in the
file when ffprobe read them all (``prober.evidence``); the header's values are kept where
they agree, and a warning names both figures where they do not. ``resolution`` is the
size a player shows: the stored frame size (``coded_width`` x ``coded_height``) with the
sample aspect ratio and the rotation applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from prober.evidence import VideoCount, count_video, said_cut, timeline
from prober.ffprobe import Decoded
from prober.fields import as_float, as_int, as_rate, tag
from prober.packets import PacketSummary
from videodrop.errorcodes import ErrorCode
from videodrop.formats import DEMUXERS

__all__ = ["Assessment", "assess", "base_metadata", "container_format", "real_video_streams"]

IMAGE_CODECS = frozenset({
    "png", "apng", "mjpeg", "jpeg2000", "jpegls", "bmp", "webp", "gif", "tiff", "ppm", "pgm",
    "pgmyuv", "pam", "pbm", "targa", "dpx", "exr", "sgi", "xbm", "xpm", "xwd", "qoi", "pcx",
    "pictor", "sunrast", "hdr", "photocd", "psd", "dds", "pgx", "jpegxl",
})  # fmt: skip
IMAGE_BRANDS = frozenset({"avif", "heic", "heix", "mif1"})
WEBM_CODECS = {"video": {"vp8", "vp9", "av1"}, "audio": {"vorbis", "opus"}, "subtitle": {"webvtt"}}
SHORT_FORMATS = {"avi": "avi", "asf": "wmv", "flv": "flv", "mpegts": "ts"}


@dataclass(frozen=True)
class Assessment:
    metadata: dict[str, Any]
    error: str | None  # None means ready
    code: ErrorCode | None = None  # set exactly when error is


def base_metadata(filename: str, size: int, version: str | None) -> dict[str, Any]:
    """Every key, empty: what a file ffprobe could not read gets."""
    return {
        "format": None, "extension": PurePath(filename).suffix.lower().lstrip("."),
        "format_name": None, "format_long_name": None, "size": size, "duration": None,
        "duration_source": None, "bitrate": None, "resolution": None, "width": None,
        "height": None, "coded_width": None, "coded_height": None, "rotation": None,
        "fps": None, "nb_frames": None, "codec": None, "audio_codec": None, "channels": None,
        "sample_rate": None, "video": None, "audio_tracks": [], "subtitles": [],
        "data_streams": [], "attachments": [], "chapters": [], "tags": {},
        "creation_time": None, "title": None, "encoder": None, "warnings": [],
        "ffprobe_version": version, "moov_before_mdat": None,
    }  # fmt: skip


def assess(
    raw: Mapping[str, Any],
    *,
    filename: str,
    size: int,
    version: str | None = None,
    packets: PacketSummary | None = None,
    doctype: str | None = None,
    log: str = "",
    warnings: Sequence[str] = (),
    decoded: Decoded | None = None,
    cut: int = 0,
) -> Assessment:
    """Map ffprobe's JSON (plus what the packets say) to metadata and decide the verdict.

    ``decoded``: what decoding the main video stream's first packets gave (None: not
    tried); nothing decoded fails the file. ``cut``: packets at the end of a truncated file
    that do not decode; they are not counted as frames, and a truncated file must keep at
    least two frames that decode (one frame of a recording is a picture, not a video)."""
    meta = base_metadata(filename, size, version)
    fmt: Mapping[str, Any] = raw.get("format") or {}
    streams: list[Mapping[str, Any]] = list(raw.get("streams") or [])
    meta["warnings"] = [*warnings, *_log_warnings(log)]
    meta["format_name"] = fmt.get("format_name")
    meta["format_long_name"] = fmt.get("format_long_name")
    meta["format"] = container_format(fmt, streams, meta["extension"], doctype)
    _add_tags(meta, fmt, streams)
    _add_streams(meta, streams)
    meta["chapters"] = [
        {"start": as_float(c.get("start_time")), "end": as_float(c.get("end_time")),
         "title": tag(c, "title")}
        for c in raw.get("chapters") or []
    ]  # fmt: skip
    names = {n for n in str(fmt.get("format_name") or "").split(",") if n}
    if names and not names & DEMUXERS:  # (ffprobe's whitelist refuses these before)
        if any(s.get("codec_type") == "video" and _still(s, fmt) for s in streams):
            return Assessment(meta, "still image, not a video", ErrorCode.STILL_IMAGE)
        what = meta["format_long_name"] or sorted(names)[0]
        return Assessment(meta, f"unsupported container: the content is {what}"
                          f" ({fmt.get('format_name')})", ErrorCode.UNSUPPORTED_CONTAINER)

    videos = real_video_streams(raw)
    claimed, source = _claimed_duration(fmt, streams)
    line = timeline(fmt, streams, claimed=claimed, claimed_source=source, packets=packets,
                    log=log)
    meta["duration"], meta["duration_source"] = line.duration, line.source
    if line.warning:
        meta["warnings"].append(line.warning)
    if line.duration:
        meta["bitrate"] = int(size * 8 / line.duration)  # as libavformat computes it

    if not videos:
        if any(s.get("codec_type") == "video" and not _attached(s) for s in streams):
            return Assessment(meta, "still image, not a video", ErrorCode.STILL_IMAGE)
        return Assessment(meta, "no video stream", ErrorCode.NO_VIDEO_STREAM)
    count = count_video(videos[0], packets, log, duration=line.duration, cut=cut)
    meta["warnings"] += count.warnings
    _add_video(meta, videos[0], count)
    if packets is not None and packets.count([int(s.get("index", -1)) for s in videos]) == 0:
        if claimed:
            return Assessment(meta, f"truncated: header claims {claimed:g} s, no video data",
                              ErrorCode.TRUNCATED)
        return Assessment(meta, "no video frames", ErrorCode.NO_VIDEO_FRAMES)
    cut_off = bool(claimed and (line.truncated or (line.held is not None
                                                   and claimed > line.held and said_cut(log))))
    if decoded is not None and decoded.frames == 0:
        tried = f"{decoded.packets} video packet{'s' if decoded.packets != 1 else ''}"
        if cut_off:
            return Assessment(meta, f"truncated: header claims {claimed:g} s; none of the"
                              f" first {tried} decodes", ErrorCode.TRUNCATED)
        return Assessment(meta, f"no video frame decodes: none of the first {tried} gives a"
                          " picture (a piece cut from inside a stream, or damaged data)",
                          ErrorCode.NO_VIDEO_FRAMES)
    if cut_off and count.frames is not None and count.frames < 2:
        return Assessment(meta, f"truncated: header claims {claimed:g} s; the file holds"
                          f" {count.frames} frame that decodes", ErrorCode.TRUNCATED)
    if not line.duration:
        if count.frames == 1:  # ready: one frame, but no length for it anywhere
            meta["warnings"].append("duration unknown: a single frame, and neither the"
                                    " packet nor the header gives its duration")
            return Assessment(meta, None)
        return Assessment(meta, "duration unknown: no timestamps in the file",
                          ErrorCode.UNREADABLE)
    return Assessment(meta, None)


def real_video_streams(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Video streams that are neither cover art nor a single still image; default first."""
    fmt: Mapping[str, Any] = raw.get("format") or {}
    found = [
        s for s in raw.get("streams") or []
        if s.get("codec_type") == "video" and not _attached(s) and not _still(s, fmt)
    ]  # fmt: skip
    return sorted(found, key=lambda s: not (s.get("disposition") or {}).get("default"))


def container_format(
    fmt: Mapping[str, Any],
    streams: Sequence[Mapping[str, Any]],
    extension: str,
    doctype: str | None = None,
) -> str | None:
    """Short container name by content: mp4, mov, m4v, mkv, webm, avi, wmv, flv, …"""
    names = str(fmt.get("format_name") or "").split(",")
    if not names[0]:
        return None
    if "mov" in names and "mp4" in names:
        brand = str((fmt.get("tags") or {}).get("major_brand", "")).strip().lower()
        if brand == "qt" or (not brand and extension in {"mov", "qt"}):
            return "mov"
        if brand.startswith(("3gp", "3g2", "3ge", "3gg")):  # 3GPP/3GPP2 (TS 26.244)
            return "3gp"
        if brand.startswith("m4v") or extension == "m4v":
            return "m4v"
        return "mp4"
    if "matroska" in names:
        webm_codecs = all(
            s.get("codec_name") in WEBM_CODECS.get(str(s.get("codec_type")), set()) for s in streams
        )
        webm_doc = doctype is None or doctype == "webm"
        return "webm" if webm_codecs and webm_doc and streams else "mkv"
    return SHORT_FORMATS.get(names[0], names[0])


def _attached(stream: Mapping[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _still(stream: Mapping[str, Any], fmt: Mapping[str, Any]) -> bool:
    if (stream.get("disposition") or {}).get("still_image"):
        return True
    name = str(fmt.get("format_name") or "")
    brand = str((fmt.get("tags") or {}).get("major_brand", "")).strip().lower()
    if brand in IMAGE_BRANDS:
        return True
    if stream.get("codec_name") not in IMAGE_CODECS:
        return False
    return name == "image2" or name.endswith("_pipe") or as_int(stream.get("nb_frames")) == 1


def _claimed_duration(
    fmt: Mapping[str, Any], streams: Sequence[Mapping[str, Any]]
) -> tuple[float | None, str | None]:
    container = as_float(fmt.get("duration"))
    if container and container > 0:
        return round(container, 6), "container"
    durations = [d for s in streams if (d := _stream_duration(s)) and d > 0]
    if durations:
        return round(max(durations), 6), "streams"
    return None, None


def _stream_duration(stream: Mapping[str, Any]) -> float | None:
    value = as_float(stream.get("duration"))
    if value:
        return value
    text = tag(stream, "DURATION")  # Matroska per-track statistics tag "HH:MM:SS.nnnnnnnnn"
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", text or "")
    if match:
        h, m, s = match.groups()
        return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def _stream_bitrate(stream: Mapping[str, Any]) -> int | None:
    return as_int(stream.get("bit_rate")) or as_int(tag(stream, "BPS"))


def _add_video(meta: dict[str, Any], s: Mapping[str, Any], count: VideoCount) -> None:
    rotation = _rotation(s)
    width, height = as_int(s.get("width")), as_int(s.get("height"))
    shown_w, shown_h = _display_size(width, height, s.get("sample_aspect_ratio"))
    if rotation in {90, -90}:
        shown_w, shown_h = shown_h, shown_w
    avg, real = as_rate(s.get("avg_frame_rate")), as_rate(s.get("r_frame_rate"))
    vfr = bool(avg and real and abs(avg - real) / max(avg, real) > 0.02)
    if vfr and avg and real and abs(real / avg - 2) < 0.01:  # field rate of interlaced video
        vfr = False
    resolution = f"{shown_w}x{shown_h}" if shown_w and shown_h else None
    video = {
        "index": s.get("index"), "codec": s.get("codec_name") or s.get("codec_tag_string"),
        "codec_long_name": s.get("codec_long_name"), "codec_tag": s.get("codec_tag_string"),
        "profile": s.get("profile"), "level": s.get("level"), "pix_fmt": s.get("pix_fmt"),
        "has_b_frames": s.get("has_b_frames"),
        "width": width, "height": height, "coded_width": width, "coded_height": height,
        "resolution": resolution, "rotation": rotation,
        "sample_aspect_ratio": _ratio(s.get("sample_aspect_ratio")),
        "display_aspect_ratio": _ratio(s.get("display_aspect_ratio")),
        "fps": count.fps, "fps_source": "header" if count.nominal else "packets",
        "avg_frame_rate": s.get("avg_frame_rate"), "r_frame_rate": s.get("r_frame_rate"),
        "variable_frame_rate": vfr, "nb_frames": count.frames,
        "bitrate": count.bitrate, "duration": count.seconds or _stream_duration(s),
        "field_order": s.get("field_order"), "color_space": s.get("color_space"),
        "color_range": s.get("color_range"), "color_transfer": s.get("color_transfer"),
        "color_primaries": s.get("color_primaries"), "language": tag(s, "language"),
    }  # fmt: skip
    meta.update(
        video=video, codec=video["codec"], fps=count.fps, nb_frames=count.frames,
        rotation=rotation, resolution=resolution, width=shown_w, height=shown_h,
        coded_width=width, coded_height=height,
    )  # fmt: skip


def _display_size(
    width: int | None, height: int | None, sar: Any
) -> tuple[int | None, int | None]:
    """The frame size with its sample aspect ratio applied (the width stretched, as ffmpeg
    and players do): 640x360 at SAR 2:1 shows as 1280x360."""
    ratio = _ratio(sar)
    if not width or not height or ratio is None:
        return width, height
    num, den = (int(x) for x in ratio.split(":"))
    return round(width * num / den), height


def _add_streams(meta: dict[str, Any], streams: Sequence[Mapping[str, Any]]) -> None:
    for s in streams:
        kind = s.get("codec_type")
        common = {"index": s.get("index"), "codec": s.get("codec_name"),
                  "language": tag(s, "language"), "title": tag(s, "title")}  # fmt: skip
        disposition = s.get("disposition") or {}
        if kind == "audio":
            meta["audio_tracks"].append({
                **common, "profile": s.get("profile"), "channels": as_int(s.get("channels")),
                "channel_layout": s.get("channel_layout"),
                "sample_rate": as_int(s.get("sample_rate")), "bitrate": _stream_bitrate(s),
                "duration": _stream_duration(s), "default": bool(disposition.get("default")),
            })  # fmt: skip
        elif kind == "subtitle":
            meta["subtitles"].append({**common, "default": bool(disposition.get("default")),
                                      "forced": bool(disposition.get("forced"))})  # fmt: skip
        elif kind == "data":
            meta["data_streams"].append({
                **common, "codec": s.get("codec_name") or s.get("codec_tag_string"),
                "codec_tag": s.get("codec_tag_string"), "handler": tag(s, "handler_name"),
                "duration": _stream_duration(s), "timecode": tag(s, "timecode"),
            })  # fmt: skip
        elif kind == "attachment":
            meta["attachments"].append({**common, "filename": tag(s, "filename"),
                                        "mimetype": tag(s, "mimetype")})  # fmt: skip
    if meta["audio_tracks"]:
        first = meta["audio_tracks"][0]
        meta.update(audio_codec=first["codec"], channels=first["channels"],
                    sample_rate=first["sample_rate"])  # fmt: skip


def _add_tags(
    meta: dict[str, Any], fmt: Mapping[str, Any], streams: Sequence[Mapping[str, Any]]
) -> None:
    tags = dict(fmt.get("tags") or {})
    picked: dict[str, str | None] = {"creation_time": None, "title": None, "encoder": None}
    for key in list(tags):
        name = key.lower()
        if name in picked and picked[name] is None:
            picked[name] = str(tags.pop(key))
    created = _utc(picked["creation_time"])
    if created is None and picked["creation_time"] is not None:
        tags["creation_time"] = picked["creation_time"]  # kept as given when unreadable
    for s in streams:
        if created is None and s.get("codec_type") == "video":
            created = _utc(tag(s, "creation_time"))
    meta.update(tags=tags, creation_time=created, title=picked["title"],
                encoder=picked["encoder"])  # fmt: skip


def _utc(text: str | None) -> str | None:
    """ISO 8601 in UTC with Z; None for unset values (the 1904/1970 epochs) or garbage."""
    if not text:
        return None
    value = text.strip().replace(" ", "T", 1)
    value = re.sub(r"Z$", "+00:00", value)
    value = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.year in {1904, 1970} and moment.timetuple()[1:6] == (1, 1, 0, 0, 0):
        return None
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _rotation(stream: Mapping[str, Any]) -> int:
    """Degrees as ffprobe's display matrix states them, normalised to (-180, 180]."""
    value: float | None = None
    for side in stream.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix" and "rotation" in side:
            value = as_float(side.get("rotation"))
    if value is None:
        rotate = as_float(tag(stream, "rotate"))  # older ffprobe: clockwise, opposite sign
        value = -rotate if rotate is not None else 0.0
    degrees = round(value) % 360
    return degrees - 360 if degrees > 180 else degrees


def _log_warnings(log: str) -> list[str]:
    seen: list[str] = []
    for line in log.splitlines():
        text = re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*", "", line.strip())
        if text and f"ffprobe: {text}" not in seen:
            seen.append(f"ffprobe: {text}")
    return seen[:10]


def _ratio(text: Any) -> str | None:
    match = re.fullmatch(r"(\d+):(\d+)", str(text or ""))
    return f"{match.group(1)}:{match.group(2)}" if match and "0" not in match.groups() else None
