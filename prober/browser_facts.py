"""What the playback verdict (videodrop/playback.py) needs to know of an MP4/MOV that
ffprobe's JSON does not say, read from the file at probe time:

* ``moov_before_mdat``: whether the index comes before the media data (the top-level box
  order, prober/isobmff.py, read up to the first of them); None when neither is found.
* the layer of MPEG-1/2 audio: MP4 gives every layer one object type (0x6B, 0x69), so
  ffprobe names MP2 audio ``mp3``, and browsers hand it to their MP3 decoder, which fails
  on it (Chromium: "invalid Layer 2 bitrate"). The first frame header of each audio track
  named ``mp3`` tells (ISO/IEC 11172-3 §2.4.2.3); a track whose frames are Layer I or II
  is recorded as ``mp1``/``mp2``, with a warning naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prober.ffprobe import FFprobeFailed, Runner, first_packet_position
from prober.inputs import ProbeInput, as_input
from prober.isobmff import top_level_boxes
from videodrop.playback import ISO_BMFF

__all__ = ["add_browser_facts", "mpeg_audio_layer"]

#: Layer bits of an MPEG audio frame header -> the codec ffmpeg names that layer.
_LAYERS = {3: "mp1", 2: "mp2", 1: "mp3"}


def add_browser_facts(path: Path | ProbeInput, metadata: dict[str, Any], *, ffprobe: str,
                      runner: Runner, timeout: float) -> None:
    """Set ``metadata["moov_before_mdat"]`` and correct the codec of MPEG audio tracks of
    an ISO BMFF file at ``path`` or input (:mod:`prober.inputs`; nothing for other
    containers), each ffprobe run within ``timeout`` seconds. FFprobeTimeout propagates;
    a track ffprobe cannot read is left as ffprobe named it."""
    if metadata.get("format") not in ISO_BMFF:
        return
    boxes = top_level_boxes(path, stop_at=frozenset({"moov", "mdat"}))
    metadata["moov_before_mdat"] = boxes.moov_first if boxes else None
    for track in metadata.get("audio_tracks") or []:
        if track.get("codec") != "mp3" or track.get("index") is None:
            continue
        try:
            pos = first_packet_position(path, int(track["index"]), ffprobe=ffprobe,
                                        timeout=timeout, runner=runner)
        except FFprobeFailed:
            continue
        if pos is None:
            continue
        codec = mpeg_audio_layer(as_input(path).read_at(pos, 4))
        if codec is not None and codec != "mp3":
            metadata["warnings"] = [*metadata.get("warnings", []),
                                    f"audio stream {track['index']}: ffprobe names it mp3;"
                                    f" its frames are {codec} (MPEG audio header)"]
            if metadata.get("audio_codec") == "mp3" and track is metadata["audio_tracks"][0]:
                metadata["audio_codec"] = codec
            track["codec"] = codec


def mpeg_audio_layer(header: bytes) -> str | None:
    """The codec (``mp1``, ``mp2``, ``mp3``) an MPEG audio frame header's layer bits name;
    None when ``header`` does not start with a frame sync (11 bits set)."""
    if len(header) < 2 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    return _LAYERS.get((header[1] >> 1) & 3)
