"""ffprobe JSON -> normalised, JSON-serialisable metadata and a verdict. Pure: no I/O.

Verdict: ``ready`` only when ffprobe opened the file and it holds at least one real video
stream (not cover art, not a still image) with at least one packet of video data.

Truncation rule: the duration a file *claims* (container, else longest stream) is checked
against the end of the last packet actually in the file (``PacketSummary``, read from the
tail, or from the start when the tail is unreachable). When the file holds clearly less
than it claims, the file is truncated: ``ready`` with the playable duration and a warning
naming the claimed one, or ``failed`` ("truncated: …") when no video data is left at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import PurePath
from typing import Any

from prober.ffprobe import PacketSummary

__all__ = ["Assessment", "assess", "base_metadata", "container_format", "real_video_streams"]

IMAGE_CODECS = frozenset({
    "png", "apng", "mjpeg", "jpeg2000", "jpegls", "bmp", "webp", "gif", "tiff", "ppm", "pgm",
    "pgmyuv", "pam", "pbm", "targa", "dpx", "exr", "sgi", "xbm", "xpm", "xwd", "qoi", "pcx",
    "pictor", "sunrast", "hdr", "photocd", "psd", "dds", "pgx", "jpegxl",
})  # fmt: skip
IMAGE_BRANDS = frozenset({"avif", "heic", "heix", "mif1"})
WEBM_CODECS = {"video": {"vp8", "vp9", "av1"}, "audio": {"vorbis", "opus"}, "subtitle": {"webvtt"}}
SHORT_FORMATS = {"avi": "avi", "asf": "wmv", "flv": "flv"}
#: Truncated when the file ends this much before the claimed duration (s, or fraction).
TRUNCATION_SLACK_S, TRUNCATION_SLACK = 0.5, 0.05


@dataclass(frozen=True)
class Assessment:
    metadata: dict[str, Any]
    error: str | None  # None means ready


def base_metadata(filename: str, size: int, version: str | None) -> dict[str, Any]:
    """Every key, empty: what a file ffprobe could not read gets."""
    return {
        "format": None, "extension": PurePath(filename).suffix.lower().lstrip("."),
        "format_name": None, "format_long_name": None, "size": size, "duration": None,
        "duration_source": None, "bitrate": None, "resolution": None, "width": None,
        "height": None, "rotation": None, "fps": None, "codec": None, "audio_codec": None,
        "channels": None, "sample_rate": None, "video": None, "audio_tracks": [],
        "subtitles": [], "data_streams": [], "attachments": [], "chapters": [], "tags": {},
        "creation_time": None, "title": None, "encoder": None, "warnings": [],
        "ffprobe_version": version,
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
) -> Assessment:
    """Map ffprobe's JSON (plus what the packets say) to metadata and decide the verdict."""
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
        {"start": _float(c.get("start_time")), "end": _float(c.get("end_time")),
         "title": _tag(c, "title")}
        for c in raw.get("chapters") or []
    ]  # fmt: skip

    videos = real_video_streams(raw)
    claimed, source = _claimed_duration(fmt, streams)
    start = _float(fmt.get("start_time"))
    if start is None and packets is not None and packets.full_scan:
        start = packets.start
    playable = None
    if packets is not None and packets.end is not None:
        playable = round(max(packets.end - (start or 0.0), 0.0), 6)
    elif packets is not None and not packets.packets:
        playable = 0.0  # the whole file was read: no media data in it
    duration = claimed
    truncated = False
    if claimed is None and playable:
        duration, source = playable, "packets"
    elif claimed and playable is not None:
        truncated = claimed - playable > max(TRUNCATION_SLACK_S, TRUNCATION_SLACK * claimed)
        if truncated:
            duration, source = (playable or None), "packets"  # None: nothing playable
            meta["warnings"].append(
                f"truncated: header claims {claimed:g} s, the file holds {playable:g} s"
            )
    meta["duration"], meta["duration_source"] = duration, source
    meta["bitrate"] = _int(fmt.get("bit_rate")) if not truncated else None
    if meta["bitrate"] is None:
        rates = [r for s in streams if (r := _stream_bitrate(s))]
        if rates and not truncated:
            meta["bitrate"] = sum(rates)
        elif duration:
            meta["bitrate"] = round(size * 8 / duration)

    if not videos:
        if any(s.get("codec_type") == "video" and not _attached(s) for s in streams):
            return Assessment(meta, "still image, not a video")
        return Assessment(meta, "no video stream")
    _add_video(meta, videos[0])
    if packets is not None and packets.count([int(s.get("index", -1)) for s in videos]) == 0:
        if claimed:
            return Assessment(meta, f"truncated: header claims {claimed:g} s, no video data")
        return Assessment(meta, "no video frames")
    if not duration:
        return Assessment(meta, "duration unknown: no timestamps in the file")
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
    return name == "image2" or name.endswith("_pipe") or _int(stream.get("nb_frames")) == 1


def _claimed_duration(
    fmt: Mapping[str, Any], streams: Sequence[Mapping[str, Any]]
) -> tuple[float | None, str | None]:
    container = _float(fmt.get("duration"))
    if container and container > 0:
        return round(container, 6), "container"
    durations = [d for s in streams if (d := _stream_duration(s)) and d > 0]
    if durations:
        return round(max(durations), 6), "streams"
    return None, None


def _stream_duration(stream: Mapping[str, Any]) -> float | None:
    value = _float(stream.get("duration"))
    if value:
        return value
    text = _tag(stream, "DURATION")  # Matroska per-track statistics tag "HH:MM:SS.nnnnnnnnn"
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", text or "")
    if match:
        h, m, s = match.groups()
        return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def _stream_bitrate(stream: Mapping[str, Any]) -> int | None:
    return _int(stream.get("bit_rate")) or _int(_tag(stream, "BPS"))


def _add_video(meta: dict[str, Any], s: Mapping[str, Any]) -> None:
    rotation = _rotation(s)
    width, height = _int(s.get("width")), _int(s.get("height"))
    shown_w, shown_h = (height, width) if rotation in {90, -90} else (width, height)
    avg, real = _rate(s.get("avg_frame_rate")), _rate(s.get("r_frame_rate"))
    fps = avg or real
    vfr = bool(avg and real and abs(avg - real) / max(avg, real) > 0.02)
    if vfr and avg and real and abs(real / avg - 2) < 0.01:  # field rate of interlaced video
        vfr = False
    resolution = f"{shown_w}x{shown_h}" if shown_w and shown_h else None
    video = {
        "index": s.get("index"), "codec": s.get("codec_name") or s.get("codec_tag_string"),
        "codec_long_name": s.get("codec_long_name"), "codec_tag": s.get("codec_tag_string"),
        "profile": s.get("profile"), "level": s.get("level"), "pix_fmt": s.get("pix_fmt"),
        "width": width, "height": height, "resolution": resolution, "rotation": rotation,
        "sample_aspect_ratio": _ratio(s.get("sample_aspect_ratio")),
        "display_aspect_ratio": _ratio(s.get("display_aspect_ratio")),
        "fps": round(float(fps), 3) if fps else None,
        "avg_frame_rate": s.get("avg_frame_rate"), "r_frame_rate": s.get("r_frame_rate"),
        "variable_frame_rate": vfr,
        "nb_frames": _int(s.get("nb_frames")) or _int(_tag(s, "NUMBER_OF_FRAMES")),
        "bitrate": _stream_bitrate(s), "duration": _stream_duration(s),
        "field_order": s.get("field_order"), "color_space": s.get("color_space"),
        "color_range": s.get("color_range"), "color_transfer": s.get("color_transfer"),
        "color_primaries": s.get("color_primaries"), "language": _tag(s, "language"),
    }  # fmt: skip
    meta.update(
        video=video, codec=video["codec"], fps=video["fps"], rotation=rotation,
        resolution=resolution, width=shown_w, height=shown_h,
    )  # fmt: skip


def _add_streams(meta: dict[str, Any], streams: Sequence[Mapping[str, Any]]) -> None:
    for s in streams:
        kind = s.get("codec_type")
        common = {"index": s.get("index"), "codec": s.get("codec_name"),
                  "language": _tag(s, "language"), "title": _tag(s, "title")}  # fmt: skip
        disposition = s.get("disposition") or {}
        if kind == "audio":
            meta["audio_tracks"].append({
                **common, "profile": s.get("profile"), "channels": _int(s.get("channels")),
                "channel_layout": s.get("channel_layout"),
                "sample_rate": _int(s.get("sample_rate")), "bitrate": _stream_bitrate(s),
                "duration": _stream_duration(s), "default": bool(disposition.get("default")),
            })  # fmt: skip
        elif kind == "subtitle":
            meta["subtitles"].append({**common, "default": bool(disposition.get("default")),
                                      "forced": bool(disposition.get("forced"))})  # fmt: skip
        elif kind == "data":
            meta["data_streams"].append({
                **common, "codec": s.get("codec_name") or s.get("codec_tag_string"),
                "codec_tag": s.get("codec_tag_string"), "handler": _tag(s, "handler_name"),
                "duration": _stream_duration(s), "timecode": _tag(s, "timecode"),
            })  # fmt: skip
        elif kind == "attachment":
            meta["attachments"].append({**common, "filename": _tag(s, "filename"),
                                        "mimetype": _tag(s, "mimetype")})  # fmt: skip
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
            created = _utc(_tag(s, "creation_time"))
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
            value = _float(side.get("rotation"))
    if value is None:
        tag = _float(_tag(stream, "rotate"))  # older ffprobe: clockwise, opposite sign
        value = -tag if tag is not None else 0.0
    degrees = round(value) % 360
    return degrees - 360 if degrees > 180 else degrees


def _log_warnings(log: str) -> list[str]:
    seen: list[str] = []
    for line in log.splitlines():
        text = re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*", "", line.strip())
        if text and f"ffprobe: {text}" not in seen:
            seen.append(f"ffprobe: {text}")
    return seen[:10]


def _tag(item: Mapping[str, Any], name: str) -> str | None:
    tags = item.get("tags") or {}
    wanted = name.lower()
    for key, value in tags.items():
        if key.lower() == wanted or key.lower().split("-")[0] == wanted:
            return str(value)
    return None


def _rate(text: Any) -> Fraction | None:
    try:
        value = Fraction(str(text)) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return value if value and value > 0 else None


def _ratio(text: Any) -> str | None:
    match = re.fullmatch(r"(\d+):(\d+)", str(text or ""))
    return f"{match.group(1)}:{match.group(2)}" if match and "0" not in match.groups() else None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None
