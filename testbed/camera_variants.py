"""Camera-style variants of one short clip, made with ffmpeg: the containers, codecs,
pixel formats, audio codecs and layouts cameras, NVRs and phones write, each with the
playback verdict it must get (videodrop/playback.py).

Each variant is 1.5 s of ``testsrc2`` at 320x240, 25 fps, with a 440 Hz tone where it
has audio; :func:`build` writes them all (a few seconds of one core). The tests of the
verdict, the browser proof and the rendition work read the same corpus.
"""

from __future__ import annotations

import math
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VARIANTS", "Variant", "build"]

SECONDS = 1.5
VIDEO_IN = ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SECONDS}"]
AUDIO_IN = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
HEVC = ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-x265-params", "log-level=error"]
AAC = ["-c:a", "aac", "-b:a", "64k"]
MP3 = ["-c:a", "libmp3lame", "-ar", "44100", "-b:a", "64k"]
FASTSTART = ["-movflags", "+faststart"]
#: Frames 0-5 of every 10 kept at their own timestamps: 15 fps on average, gaps of 5 frames.
VFR = ["-vf", "select='lt(mod(n,10),6)'", "-fps_mode", "vfr"]


@dataclass(frozen=True)
class Variant:
    """``name``: the file name (its extension is the container ffmpeg writes unless
    ``args`` name one). ``args``: ffmpeg's output options. ``audio``: whether the tone
    goes in. ``reasons``: the verdict's reason codes, in videodrop.playback.Reason order
    (none: it plays as it is). ``needs``: the verdict's cheapest path. ``rotation``:
    degrees of the display matrix written (ffprobe's sign: 90 is counter-clockwise)."""

    name: str
    args: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    needs: str | None = None
    audio: bool = True
    rotation: int = 0

    @property
    def playable(self) -> bool:
        return not self.reasons


def _v(name: str, *args: str, reasons: tuple[str, ...] = (), needs: str | None = None,
       audio: bool = True, rotation: int = 0) -> Variant:
    return Variant(name, args, reasons, needs, audio, rotation)


VARIANTS: tuple[Variant, ...] = (
    # plays as it is
    _v("faststart.mp4", *H264, *AAC, *FASTSTART),
    _v("h264-aac.mov", *H264, *AAC, *FASTSTART),
    _v("h264-mp3.mp4", *H264, *MP3, *FASTSTART),
    _v("no-audio.mp4", *H264, *FASTSTART, audio=False),
    _v("yuvj420p.mp4", *H264[:-1], "yuvj420p", *AAC, *FASTSTART),
    _v("vfr.mp4", *H264, *VFR, *AAC, *FASTSTART),
    _v("rotate-90.mp4", *H264, *AAC, *FASTSTART, rotation=90),
    _v("rotate-180.mp4", *H264, *AAC, *FASTSTART, rotation=180),
    _v("rotate-270.mp4", *H264, *AAC, *FASTSTART, rotation=-90),
    _v("vp9-opus.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
       "-c:a", "libopus"),
    _v("vp8-vorbis.webm", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
       "-c:a", "libvorbis"),
    _v("av1-opus.mp4", "-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p",
       "-c:a", "libopus", *FASTSTART),
    # remux: the container or the layout
    _v("moov-at-end.mp4", *H264, *AAC, reasons=("moov_at_end",), needs="remux"),
    _v("h264-aac.ts", *H264, *AAC, reasons=("container",), needs="remux"),
    _v("h264-mp3.avi", *H264, *MP3, reasons=("container",), needs="remux"),
    _v("h264-aac.flv", *H264, *AAC, reasons=("container",), needs="remux"),
    _v("h264-aac.wmv", *H264, *AAC, "-f", "asf", reasons=("container",), needs="remux"),
    _v("h264-aac.mkv", *H264, *AAC, reasons=("container",), needs="remux"),
    _v("vp8-vorbis.mkv", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
       "-c:a", "libvorbis", "-f", "matroska", reasons=("container",), needs="remux"),
    # transcode the audio only
    _v("h264-sowt.mov", *H264, "-c:a", "pcm_s16le", *FASTSTART,
       reasons=("audio_codec",), needs="transcode_audio"),
    _v("h264-twos.mov", *H264, "-c:a", "pcm_s16be", *FASTSTART,
       reasons=("audio_codec",), needs="transcode_audio"),
    _v("h264-ulaw.mov", *H264, "-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1", *FASTSTART,
       reasons=("audio_codec",), needs="transcode_audio"),
    _v("h264-mp2.mov", *H264, "-c:a", "mp2", *FASTSTART,
       reasons=("audio_codec",), needs="transcode_audio"),
    # MP4 labels MPEG-1 audio of every layer alike (object type 0x6B): ffprobe names this
    # MP2 "mp3" (the prober reads the layer from the first frame header)
    _v("h264-mp2.mp4", *H264, "-c:a", "mp2", *FASTSTART,
       reasons=("audio_codec",), needs="transcode_audio"),
    _v("h264-pcm.avi", *H264, "-c:a", "pcm_s16le",
       reasons=("container", "audio_codec"), needs="transcode_audio"),
    # transcode
    _v("hevc-hev1.mp4", *HEVC, "-tag:v", "hev1", *AAC, *FASTSTART,
       reasons=("video_codec", "hevc_tag"), needs="transcode"),
    _v("hevc-hvc1.mp4", *HEVC, "-tag:v", "hvc1", *AAC, *FASTSTART,
       reasons=("video_codec",), needs="transcode"),
    _v("hevc-aac.ts", *HEVC, *AAC, reasons=("container", "video_codec"), needs="transcode"),
    _v("h264-422.mp4", *H264[:-1], "yuv422p", *AAC, *FASTSTART,
       reasons=("pixel_format",), needs="transcode"),
    _v("h264-10bit.mp4", *H264[:-1], "yuv420p10le", *AAC, *FASTSTART,
       reasons=("pixel_format",), needs="transcode"),
    _v("mpeg4-aac.mp4", "-c:v", "mpeg4", "-q:v", "5", *AAC, *FASTSTART,
       reasons=("video_codec",), needs="transcode"),
    _v("mpeg4-mp3.avi", "-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "5", *MP3,
       reasons=("container", "video_codec"), needs="transcode"),
    _v("mjpeg-pcm.avi", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "5",
       "-c:a", "pcm_s16le", reasons=("container", "video_codec", "audio_codec"),
       needs="transcode"),
    _v("flv1-mp3.flv", "-c:v", "flv", "-q:v", "5", *MP3,
       reasons=("container", "video_codec"), needs="transcode"),
    _v("wmv2-wmav2.wmv", "-c:v", "wmv2", "-q:v", "5", "-c:a", "wmav2",
       reasons=("container", "video_codec", "audio_codec"), needs="transcode"),
    _v("mpeg2-mp2.ts", "-c:v", "mpeg2video", "-q:v", "5", "-c:a", "mp2",
       reasons=("container", "video_codec", "audio_codec"), needs="transcode"),
)


def build(folder: Path, variants: tuple[Variant, ...] = VARIANTS, *,
          ffmpeg: str = "ffmpeg", timeout: float = 120.0) -> list[Path]:
    """Write every variant into ``folder`` (made if missing), each ffmpeg run within
    ``timeout`` seconds; the paths, in ``variants`` order. A variant already there is kept.
    CalledProcessError (with ffmpeg's stderr) when ffmpeg refuses one."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant in variants:
        path = folder / variant.name
        if not path.exists():
            part = folder / f".{variant.name}.part{path.suffix}"
            inputs = [*VIDEO_IN, *(AUDIO_IN if variant.audio else [])]
            subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", *inputs, *variant.args,
                            "-threads", "1", "-shortest", str(part)],
                           check=True, capture_output=True, timeout=timeout)
            if variant.rotation:
                set_rotation(part, variant.rotation)
            part.rename(path)
        paths.append(path)
    return paths


def set_rotation(path: Path, degrees: int) -> None:
    """Write a rotation of ``degrees`` (a multiple of 90, ffprobe's sign: positive is
    counter-clockwise) into the display matrix of the video track's ``tkhd`` box
    (ISO/IEC 14496-12 §8.3.2) of the MP4/MOV at ``path``: ffprobe reads ``degrees`` back
    (ffmpeg 5.1 has no option that writes it; 6.0's is ``-display_rotation``).
    ValueError when the file has no video track header."""
    data = bytearray(path.read_bytes())
    radians = degrees * math.pi / 180
    cos, sin = round(math.cos(radians)), round(math.sin(radians))
    matrix = struct.pack(">9i", cos << 16, -sin << 16, 0, sin << 16, cos << 16, 0, 0, 0,
                         1 << 30)
    for moov_body, moov_end in _boxes(data, 0, len(data), b"moov"):
        for trak_body, trak_end in _boxes(data, moov_body, moov_end, b"trak"):
            handlers = [data[h + 8:h + 12] for m, m_end in _boxes(data, trak_body, trak_end,
                                                                 b"mdia")
                        for h, _ in _boxes(data, m, m_end, b"hdlr")]
            if handlers != [b"vide"]:
                continue
            for tkhd, _ in _boxes(data, trak_body, trak_end, b"tkhd"):
                at = tkhd + (52 if data[tkhd] == 1 else 40)  # version 1: 64-bit times
                data[at:at + 36] = matrix
                path.write_bytes(bytes(data))
                return
    raise ValueError(f"{path}: no video track header (tkhd) to rotate")


def _boxes(data: bytearray, start: int, end: int, kind: bytes) -> Iterator[tuple[int, int]]:
    """(body start, end) of each box of ``kind`` among the boxes from ``start`` to ``end``."""
    pos = start
    while pos + 8 <= end:
        size, found = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < head:
            return
        if found == kind:
            yield pos + head, pos + size
        pos += size
