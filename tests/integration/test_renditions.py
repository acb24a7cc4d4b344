"""Renditions made by derive/rendition.py from camera-style variants
(testbed/camera_variants.py) with the real ffmpeg and read back by the real ffprobe: each
path's output plays by our own verdict (the prober's metadata of it), is H.264 (or the
copied codec) and AAC in a faststart MP4; a transcode applies the rotation (no display
matrix left), keeps variable frame timing, honours the height cap and never enlarges;
a remux copies the packets. The policy of VIDEODROP_RENDITIONS/TRANSCODE is in
tests/unit/test_rendition_plan.py; the whole system in test_rendition_pipeline.py."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from api.files.conditional import make_etag
from derive import faststart, rendition
from derive.ffmpeg import Deadline, FFmpeg
from prober.isobmff import top_level_boxes
from prober.probe import probe_file
from videodrop.children import ChildRunner, prlimit_binary
from videodrop.playback import verdict
from videodrop.settings import Settings

#: A handful of variants per path (the whole corpus runs in ~15 s; these in ~4 s).
PATHS = {
    "moov-at-end.mp4": "remux", "h264-aac.ts": "remux", "h264-mp3.avi": "remux",
    "h264-aac.flv": "remux", "h264-aac.mkv": "remux", "vp8-vorbis.mkv": "remux",
    "h264-pcm.avi": "transcode_audio", "h264-mp2.mp4": "transcode_audio",
    "h264-ulaw.mov": "transcode_audio",
    "hevc-hev1.mp4": "transcode", "h264-10bit.mp4": "transcode",
    "wmv2-wmav2.wmv": "transcode", "mpeg2-mp2.ts": "transcode",
}


@pytest.fixture(scope="module")
def tool() -> FFmpeg:
    runner = ChildRunner(1 << 30, file_size=None, prlimit=prlimit_binary(), cpus=2)
    return FFmpeg("ffmpeg", runner, Deadline(120, 0.5))


def made(tool: FFmpeg, source: Path, out: Path, chosen: rendition.Plan | None = None,
         settings: Settings | None = None, **kwargs: Any) -> dict[str, Any]:
    settings = settings or Settings(transcode="eager")
    meta = probe_file(source).metadata
    chosen = chosen or rendition.plan(meta, settings)
    return rendition.make(tool, settings, chosen, source, meta,
                          out=out / f"{source.name}.{chosen.container}", **kwargs)


def streams(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                           f"file:{path}"], capture_output=True, check=True)
    return json.loads(done.stdout)["streams"]


def video_times(path: Path) -> list[float]:
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=pts_time", "-of", "csv=p=0", f"file:{path}"],
                          capture_output=True, check=True, text=True)
    words = [t.strip(",") for t in done.stdout.split() if t.strip(",")]
    if "N/A" in words:  # AVI: packets without timestamps
        return [float("nan")] * len(words)
    times = sorted(float(t) for t in words)
    return [t - times[0] for t in times]  # from the first frame


@pytest.mark.parametrize("name", sorted(PATHS))
def test_each_path_makes_a_version_that_plays(camera_corpus: Path, tmp_path: Path,
                                              tool: FFmpeg, name: str):
    facts = made(tool, camera_corpus / name, tmp_path)
    out = next(tmp_path.iterdir())
    assert facts["stream"] == PATHS[name]
    probed = probe_file(out)
    assert probed.ok, probed.error
    judged = verdict(probed.metadata)
    assert judged.playable is True, judged.reasons
    kinds = [s["codec_type"] for s in streams(out)]
    assert kinds == ["video", "audio"]  # the first video and the played audio only
    if out.suffix == ".webm":  # VP8 and Vorbis: WebM's own
        assert facts["content_type"] == "video/webm"
        return
    boxes = top_level_boxes(out)
    assert boxes is not None and boxes.moov_first is True  # faststart
    assert facts["content_type"] == "video/mp4"
    assert facts["audio_codec"] == "aac" or PATHS[name] == "remux"
    if PATHS[name] == "transcode":
        video = streams(out)[0]
        assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
            "h264", "High", "yuv420p")
    if PATHS[name] == "remux":  # a stream copy: the same packets
        before, after = video_times(camera_corpus / name), video_times(out)
        assert len(after) == len(before)
        if not math.isnan(before[-1]):  # the source has timestamps (AVI's are NaN)
            assert after == pytest.approx(before, abs=0.002)
        assert facts["video_codec"] == probe_file(camera_corpus / name).metadata["codec"]


def test_hev1_is_retagged_hvc1_when_copied(camera_corpus: Path, tmp_path: Path, tool: FFmpeg):
    """The remux half of an HEVC file (its transcode is what plays): the tag is fixed."""
    source = camera_corpus / "hevc-hev1.mp4"
    meta = probe_file(source).metadata
    out = tmp_path / "hvc1.mp4"
    args = [*rendition.input_options(meta), "-i", f"file:{source}",
            *rendition.output_args(rendition.Plan("remux", "mp4"), meta, Settings()),
            f"file:{out}"]
    tool.run(args)
    assert streams(out)[0]["codec_tag_string"] == "hvc1"
    assert top_level_boxes(out).moov_first is True  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["rotate-90.mp4", "rotate-270.mp4", "rotate-180.mp4"])
def test_a_transcode_applies_the_rotation_once(camera_corpus: Path, tmp_path: Path,
                                               tool: FFmpeg, name: str):
    facts = made(tool, camera_corpus / name, tmp_path, rendition.Plan("transcode", "mp4"))
    out = next(tmp_path.iterdir())
    turned = "90" in name or "270" in name
    assert (facts["width"], facts["height"]) == ((240, 320) if turned else (320, 240))
    video = streams(out)[0]
    assert not any("rotation" in side for side in video.get("side_data_list", []))
    assert probe_file(out).metadata["rotation"] in (0, None)


def test_a_remux_keeps_the_display_matrix(camera_corpus: Path, tmp_path: Path, tool: FFmpeg):
    """Browsers apply it (docs/playback.md): a copy keeps it rather than turn pixels."""
    facts = made(tool, camera_corpus / "rotate-90.mp4", tmp_path, rendition.Plan("remux", "mp4"))
    assert facts["rotation"] in (90, 270)
    assert probe_file(next(tmp_path.iterdir())).metadata["resolution"] == "240x320"


def test_a_transcode_keeps_variable_frame_timing(camera_corpus: Path, tmp_path: Path,
                                                 tool: FFmpeg):
    source = camera_corpus / "vfr.mp4"
    made(tool, source, tmp_path, rendition.Plan("transcode", "mp4"))
    before, after = video_times(source), video_times(next(tmp_path.iterdir()))
    assert len(after) == len(before)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(after)}
    assert len(gaps) > 1  # still variable
    assert after == pytest.approx(before, abs=0.002)


@pytest.mark.parametrize(("cap", "size"), [(120, (160, 120)), (1080, (320, 240)),
                                           (101, (134, 100))])
def test_the_height_cap_and_no_enlarging(camera_corpus: Path, tmp_path: Path, tool: FFmpeg,
                                         cap: int, size: tuple[int, int]):
    settings = Settings(rendition_max_height=cap, transcode="eager")
    facts = made(tool, camera_corpus / "hevc-hvc1.mp4", tmp_path, settings=settings)
    assert (facts["width"], facts["height"]) == size  # even sides, square pixels


def test_a_one_pixel_video_is_transcoded_to_two(tmp_path: Path, tool: FFmpeg):
    """A 1x1 video: the even sides would round to 0 (x264 refused it: ``ffmpeg_failed``)."""
    source = tmp_path / "1x1.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=2x2:rate=5",
                    "-t", "1", "-c:v", "mpeg4", "-s", "1x1", str(source)], check=True)
    facts = made(tool, source, tmp_path)
    assert (facts["stream"], facts["width"], facts["height"]) == ("transcode", 2, 2)


def test_progress_is_reported_from_ffmpegs_progress(camera_corpus: Path, tmp_path: Path,
                                                    tool: FFmpeg,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rendition, "PROGRESS_SECONDS", 0.0)
    seen: list[float] = []
    made(tool, camera_corpus / "hevc-hvc1.mp4", tmp_path, progress=seen.append)
    assert seen and all(0 <= p <= 1 for p in seen) and seen == sorted(seen)
    assert seen[-1] > 0.5


def packets(path: Path) -> list[str]:
    """Every packet of every stream: stream, timestamps, size, flags and an MD5 of its
    bytes (what a decoder is handed)."""
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "packet=stream_index,pts,dts,duration,size,flags,data_hash",
                           "-show_data_hash", "MD5", "-of", "csv", f"file:{path}"],
                          capture_output=True, check=True, text=True)
    return done.stdout.splitlines()


def test_a_moov_at_end_mp4_gets_its_index_moved_with_every_packet_unchanged(
        camera_corpus: Path, tmp_path: Path, tool: FFmpeg):
    source = camera_corpus / "moov-at-end.mp4"
    facts = made(tool, source, tmp_path)
    out = next(tmp_path.iterdir())
    assert facts["made_by"] == "moov_relocation" and "relocation_refused" not in facts
    assert top_level_boxes(out).kinds == ["ftyp", "moov", "free", "mdat"]  # type: ignore[union-attr]
    assert out.stat().st_size == source.stat().st_size == facts["bytes"]
    assert packets(out) == packets(source)  # the chunk offsets point at the same bytes
    assert (facts["width"], facts["height"], facts["video_codec"], facts["audio_codec"],
            facts["rotation"]) == (320, 240, "h264", "aac", 0)
    assert verdict(probe_file(out).metadata).playable is True


def test_a_moved_index_has_an_etag_of_its_own_even_made_in_the_originals_second(
        camera_corpus: Path, tmp_path: Path, tool: FFmpeg):
    """The moved index is exactly the original's size, and the ETag (``/stream/``'s, and
    nginx's of a stream link) is the mtime's second and the size: a rendition made in the
    second the original was last written (an upload made ready at once; an inbox file
    stamped a little ahead) got the original's ETag, so a browser holding the original
    from ``/stream/`` was answered 304, or an ``If-Range`` resume spliced the rendition's
    bytes onto the original's."""
    source = tmp_path / "src" / "moov-at-end.mp4"
    source.parent.mkdir()
    shutil.copyfile(camera_corpus / "moov-at-end.mp4", source)
    out = tmp_path / "out"
    out.mkdir()
    while time.time() % 1 > 0.5:  # the relocation (a few ms) ends in this very second
        time.sleep(0.05)
    second = int(time.time())
    os.utime(source, (second, second))
    facts = made(tool, source, out)
    rendered = next(out.iterdir())
    assert facts["made_by"] == "moov_relocation"
    assert rendered.stat().st_size == source.stat().st_size
    original, renditions = source.stat(), rendered.stat()
    assert (make_etag(renditions.st_size, renditions.st_mtime_ns)
            != make_etag(original.st_size, original.st_mtime_ns))
    assert renditions.st_mtime_ns // 10**9 > original.st_mtime_ns // 10**9  # never older


def test_a_file_the_relocation_refuses_gets_ffmpegs_remux(camera_corpus: Path,
                                                           tmp_path: Path, tool: FFmpeg):
    """A box after the index (here a ``free``): the relocation moves only a last index."""
    source = tmp_path / "src" / "trailing-free.mp4"
    source.parent.mkdir()
    source.write_bytes((camera_corpus / "moov-at-end.mp4").read_bytes()
                       + b"\x00\x00\x00\x10free" + bytes(8))
    out = tmp_path / "out"
    out.mkdir()
    facts = made(tool, source, out)
    assert facts["made_by"] == "ffmpeg"
    assert "moov" in facts["relocation_refused"]
    rendition_file = next(out.iterdir())
    assert top_level_boxes(rendition_file).moov_first is True  # type: ignore[union-attr]
    assert verdict(probe_file(rendition_file).metadata).playable is True
    video = [p for p in packets(source) if p.startswith("packet,0,")]
    assert [p for p in packets(rendition_file) if p.startswith("packet,0,")] == video


def test_a_chunk_offset_outside_the_media_data_is_refused_before_anything_is_written(
        camera_corpus: Path, tmp_path: Path):
    """An index whose first chunk offset points into ``ftyp`` (a damaged or hostile file):
    shifted, it would point at other bytes; ffmpeg's remux reads it instead."""
    data = bytearray((camera_corpus / "moov-at-end.mp4").read_bytes())
    at = data.index(b"stco", data.rindex(b"moov"))
    data[at + 12:at + 16] = (8).to_bytes(4, "big")  # the first entry: inside ftyp
    source = tmp_path / "bad-offset.mp4"
    source.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    with pytest.raises(faststart.Unfit, match="outside the media data"):
        faststart.relocate(source, out, deadline=60)
    assert not out.exists()


def test_extra_tracks_keep_ffmpegs_remux(tmp_path: Path, tool: FFmpeg):
    """A subtitle track (the rendition holds one video and one audio): not relocated."""
    source = tmp_path / "subtitled.mp4"
    srt = tmp_path / "a.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=10:duration=2", "-f", "lavfi", "-i",
                    "sine=duration=2", "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-c:s", "mov_text", str(source)], check=True)
    out = tmp_path / "out"
    out.mkdir()
    facts = made(tool, source, out)
    assert (facts["stream"], facts["made_by"]) == ("remux", "ffmpeg")
    assert "relocation_refused" not in facts  # not tried
    assert [s["codec_type"] for s in streams(next(out.iterdir()))] == ["video", "audio"]


def decoded_times(path: Path) -> list[float]:
    """The time of every frame ffmpeg decodes from the first video stream (its best-effort
    timestamp, presentation order), seconds."""
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "frame=best_effort_timestamp_time", "-of", "csv=p=0",
                           f"file:{path}"], capture_output=True, check=True, text=True)
    return [float(t.strip(",")) for t in done.stdout.split() if t.strip(",") not in ("",
                                                                                    "N/A")]


def test_an_avi_with_b_frames_keeps_every_frame_in_order(tmp_path: Path, tool: FFmpeg):
    """H.264 with B-frames in AVI (no presentation times): the rendition is a transcode
    whose frames are the source's, each 1/25 s after the last from 0 (a remux with
    generated times lost one and misplaced the reordered ones: browsers dropped 16 of 75)."""
    source = tmp_path / "bframes.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=25:duration=3", "-f", "lavfi", "-i",
                    "sine=duration=3", "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
                    "-pix_fmt", "yuv420p", "-c:a", "libmp3lame", str(source)],
                   check=True, timeout=60)
    meta = probe_file(source).metadata
    assert meta["video"]["has_b_frames"] > 0
    assert rendition.plan(meta, Settings(transcode="eager")).stream == "transcode"
    frames = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                             "-count_frames", "-show_entries", "stream=nb_read_frames",
                             "-of", "csv=p=0", f"file:{source}"], capture_output=True,
                            check=True, text=True).stdout.strip().strip(",")
    out = tmp_path / "out"
    out.mkdir()
    facts = made(tool, source, out)
    assert facts["stream"] == "transcode"
    times = decoded_times(next(out.glob("*.mp4")))
    assert len(times) == int(frames) == 75
    assert times == pytest.approx([i / 25 for i in range(75)], abs=0.001)


def combed_frames(path: Path) -> tuple[int, int]:
    """(frames ffmpeg's ``idet`` filter finds interlaced, frames it looked at) in ``path``."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", f"file:{path}", "-map",
                           "0:v:0", "-vf", "idet", "-f", "null", "-"], capture_output=True,
                          check=True, text=True)
    line = next(x for x in done.stderr.splitlines() if "Multi frame detection" in x)
    counts = dict(zip(line.split()[-8::2], (int(n) for n in line.split()[-7::2]), strict=True))
    return counts["TFF:"] + counts["BFF:"], sum(counts.values())


def test_an_interlaced_source_is_deinterlaced_when_transcoded(tmp_path: Path, tool: FFmpeg):
    """Interlaced MPEG-2 (an analog camera's DVR): the rendition's frames are whole
    pictures, not two fields woven together (ffmpeg's ``idet`` sees combs in all of the
    source's and the plain transcode's frames, in few of the rendition's)."""
    source = tmp_path / "interlaced.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=50,tinterlace=interleave_top,fieldorder=tff",
                    "-t", "2", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1",
                    "-q:v", "3", str(source)], check=True, timeout=60)
    meta = probe_file(source).metadata
    assert meta["video"]["field_order"] == "tt"
    combed, frames = combed_frames(source)
    assert combed == frames == 50
    out = tmp_path / "out"
    out.mkdir()
    assert made(tool, source, out)["stream"] == "transcode"
    combed, frames = combed_frames(next(out.glob("*.mp4")))
    assert frames == 50 and combed <= frames // 10, (combed, frames)
