"""The check of a rendition before it is published: ffprobe reads it back (a child of its
own, not the ffmpeg that wrote it) and our own verdict (videodrop/playback.py) must say
it plays: one video stream (and at most one audio stream), codecs and pixels browsers
play, the index (``moov``) before the media data; a transcode carries no display matrix
(its frames are turned already: a matrix would turn them twice)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from derive.ffmpeg import Failed
from videodrop.children import ChildRunner
from videodrop.derivatives import Reason
from videodrop.playback import played_audio, verdict

PROBE_SECONDS = 60.0  # ffprobe's deadline on the rendition (it reads the headers only)


def check(runner: ChildRunner, ffprobe: str, out: Path, container: str, *,
          transcoded: bool, hevc: bool = False) -> dict[str, Any]:
    """The rendition's facts (``width``, ``height`` as stored, ``video_codec``,
    ``audio_codec`` or None, ``rotation``: the display matrix's degrees, 0 when none);
    :class:`Failed` (``not_playable``) naming what is wrong. ``hevc``: the HEVC
    rendition, judged for a browser that decodes HEVC."""
    done = runner([ffprobe, "-v", "error", "-protocol_whitelist", "file", "-print_format",
                   "json", "-show_streams", "-show_format", f"file:{out}"], PROBE_SECONDS)
    if done.returncode != 0:
        raise Failed(Reason.NOT_PLAYABLE, "ffprobe cannot read the rendition: "
                     + done.stderr.decode("utf-8", "replace").strip()[-200:])
    streams = json.loads(done.stdout or b"{}").get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video"]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if len(videos) != 1 or len(audios) > 1 or len(streams) != len(videos) + len(audios):
        raise Failed(Reason.NOT_PLAYABLE, "the rendition holds other streams than one video"
                     f" and at most one audio: {[s.get('codec_type') for s in streams]}")
    video = videos[0]
    metadata = {
        "format": container,
        "video": {"codec": video.get("codec_name"), "codec_tag": video.get("codec_tag_string"),
                  "pix_fmt": video.get("pix_fmt"), "profile": video.get("profile")},
        "audio_tracks": [{"codec": a.get("codec_name"), "default": True} for a in audios],
        "moov_before_mdat": moov_first(out) if container == "mp4" else None,
    }
    found = verdict(metadata, hevc=hevc)
    if found.playable is not True:
        raise Failed(Reason.NOT_PLAYABLE, "the rendition would not play: "
                     + "; ".join(detail for _, detail in found.reasons))
    rotation = _rotation(video)
    if transcoded and rotation:
        raise Failed(Reason.NOT_PLAYABLE, f"the transcode kept a display matrix ({rotation}°)")
    return {"width": video.get("width"), "height": video.get("height"),
            "video_codec": video.get("codec_name"),
            "audio_codec": audios[0].get("codec_name") if audios else None,
            "rotation": rotation}


def relocated(metadata: Mapping[str, Any], out: Path, *, hevc: bool = False) -> dict[str, Any]:
    """The facts of a rendition that is the original with its index moved first
    (derive/faststart.py, which checked its tracks and chunk offsets): the original's
    streams as the prober recorded them, which must play by our verdict with the
    rendition's box order; :class:`Failed` (``not_playable``) otherwise."""
    first = moov_first(out)
    found = verdict({**metadata, "moov_before_mdat": first}, hevc=hevc)
    if found.playable is not True:
        raise Failed(Reason.NOT_PLAYABLE, "the rendition would not play: "
                     + "; ".join(detail for _, detail in found.reasons))
    video = metadata.get("video") or {}
    audio = played_audio(metadata.get("audio_tracks") or [])
    return {"width": video.get("width"), "height": video.get("height"),
            "video_codec": video.get("codec"),
            "audio_codec": audio.get("codec") if audio else None,
            "rotation": round(float(video.get("rotation") or 0)) % 360}


def moov_first(path: Path) -> bool | None:
    """Whether the top-level ``moov`` box comes before the first ``mdat`` (ISO/IEC
    14496-12 §4.2 box headers: 32-bit size, type, 64-bit size when the size is 1); None
    when neither is found."""
    with path.open("rb") as f:
        size = path.stat().st_size
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            length, kind = struct.unpack(">I4s", head[:8])
            if length == 1 and len(head) == 16:
                length = struct.unpack(">Q", head[8:16])[0]
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
            if length < 8:
                return None
            pos += length
    return None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    return round(float((stream.get("tags") or {}).get("rotate", 0))) % 360
