"""Posters and storyboards made by the real ffmpeg and the real poster child
(derive/poster.py and its child, derive/storyboard.py) from media generated here and from
samples: the choice of the poster frame, its size, rotation and pixel shape, and the
storyboard's keyframe pass and its fallback."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from derive import jpeg, poster, storyboard
from derive.ffmpeg import Failed, FFmpeg, Skipped
from derive.posters import Posters
from videodrop.children import ChildRunner
from videodrop.derivatives import Reason


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg("ffmpeg", ChildRunner(1 << 30, file_size=None), 120)


@pytest.fixture(scope="module")
def posters(ffmpeg: FFmpeg) -> Iterator[Posters]:
    kept = Posters.like(ffmpeg)
    yield kept
    kept.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("derive-media")

    def make(name: str, source: str, *args: str) -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, *args,
                        "-pix_fmt", "yuv420p", str(folder / name)], check=True, timeout=120)

    # 4 s of fade-in from black, keyframes every second
    make("fade.mp4", "testsrc2=size=640x360:rate=25:duration=10",
         "-vf", "fade=in:st=0:d=4", "-g", "25")
    make("black.mp4", "color=black:size=320x240:rate=10:duration=3", "-g", "10")
    make("big.mp4", "testsrc2=size=1920x1080:rate=10:duration=2", "-g", "10")
    make("gop1s.mp4", "testsrc2=size=320x180:rate=10:duration=60", "-g", "10")
    make("tiny.mp4", "testsrc2=size=64x64:rate=10:duration=3", "-g", "10")
    make("half.mp4", "testsrc2=size=640x360:rate=10:duration=0.5", "-g", "10")
    make("onekey.mp4", "testsrc2=size=320x180:rate=10:duration=60", "-g", "1000",
         "-keyint_min", "1000", "-sc_threshold", "0")
    # 4 s, keyframes every second, the first black (a fade-in)
    make("short-fade.mp4", "testsrc2=size=320x180:rate=10:duration=4,fade=in:st=0:d=1",
         "-g", "10", "-keyint_min", "10", "-sc_threshold", "0")
    vp9 = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")
    # VP9 in WebM, keyframes every 2 s: black until the second one, then a picture
    make("blackstart.webm", "color=black:size=320x180:rate=25:duration=2[b];"
         "testsrc2=size=320x180:rate=25:duration=6[t];[b][t]concat=n=2:v=1",
         *vp9, "-g", "50", "-keyint_min", "50")
    make("black.webm", "color=black:size=320x180:rate=25:duration=6", *vp9, "-g", "50")
    # WMV in ASF, a keyframe every 0.4 s: black for 4 s, then a picture
    make("blackstart.wmv", "color=black:size=320x180:rate=10:duration=4[b];"
         "testsrc2=size=320x180:rate=10:duration=16[t];[b][t]concat=n=2:v=1",
         "-c:v", "wmv2", "-g", "4")
    # one keyframe: black, then a picture only after the frame-by-frame pass's reach
    make("latepicture.mp4", "color=black:size=320x180:rate=10:duration=5[b];"
         "testsrc2=size=320x180:rate=10:duration=3[t];[b][t]concat=n=2:v=1",
         "-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0")
    # one keyframe (black: a fade-in), displayed turned a quarter (the matrix set by a copy)
    make("fade-onekey.mp4", "testsrc2=size=320x180:rate=10:duration=3,fade=in:st=0:d=2",
         "-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(folder / "fade-onekey.mp4"), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(folder / "fade-turned.mp4")],
                   check=True, timeout=60)
    # 10 s of picture, 150 s of sound: the picture stops before the poster's window
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=10:duration=10", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=8000:duration=150", "-pix_fmt", "yuv420p",
                    "-g", "10", "-c:a", "aac", "-b:a", "16k", str(folder / "shortpicture.mp4")],
                   check=True, timeout=120)
    return folder


def looks(ffmpeg: FFmpeg, image: Path) -> poster.Candidate:
    frames = ffmpeg.frames(["-i", f"file:{image}", "-vf",
                            f"showinfo,scale={poster.PROBE_W}:{poster.PROBE_H},format=gray",
                            "-f", "rawvideo", "pipe:1"], poster.PROBE_W * poster.PROBE_H)
    return poster.measure(0, frames.data[0])


def test_poster_is_never_a_frame_of_the_fade_in(ffmpeg: FFmpeg, posters: Posters, media: Path,
                                                tmp_path: Path):
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / "fade.mp4", 10.0, out)
    assert facts["time"] >= 4.0, facts
    assert facts["decode"] == "keyframes"
    assert (facts["width"], facts["height"]) == (640, 360) == jpeg.size_of(out)
    made = looks(ffmpeg, out)
    assert made.usable and made.mean > 60, made


def alone(ffmpeg: FFmpeg, posters: Posters, path: Path, duration: float | None, out: Path,
          ) -> dict[str, Any]:
    """The poster as a job without a storyboard makes it: its own search."""
    return poster.make(posters, path, duration, out)


def from_storyboard(ffmpeg: FFmpeg, posters: Posters, path: Path, duration: float | None,
                    out: Path) -> dict[str, Any]:
    """The poster as the worker makes it after the storyboard: from the candidates the
    storyboard's keyframe pass measured (its own passes when none will do)."""
    seen: list[poster.Candidate] = []
    board = out.parent / "board"
    board.mkdir()
    with contextlib.suppress(Skipped):  # no duration: no storyboard, no candidates
        storyboard.make(ffmpeg, path, duration, True, board, seen=seen)
    return poster.make(posters, path, duration, out, seen=seen)


def test_poster_from_the_storyboards_keyframes_is_not_a_frame_of_the_fade_in(
        ffmpeg: FFmpeg, posters: Posters, media: Path, tmp_path: Path):
    seen: list[poster.Candidate] = []
    storyboard.make(ffmpeg, media / "fade.mp4", 10.0, True, tmp_path, seen=seen)
    assert len(seen) >= 9 and any(not c.usable for c in seen)  # the fade's keyframes
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / "fade.mp4", 10.0, out, seen=seen)
    assert facts["time"] >= 4.0, facts
    assert facts["time"] in [c.time for c in seen]
    assert (facts["width"], facts["height"]) == (640, 360) == jpeg.size_of(out)
    made = looks(ffmpeg, out)
    assert made.usable and made.mean > 60, made


def test_a_candidate_the_seek_cannot_find_leaves_the_poster_to_its_own_pass(
        posters: Posters, media: Path, tmp_path: Path):
    """A measured candidate past the end of the video (timestamps that lied): the seek
    decodes nothing, and the poster's own keyframe search makes it."""
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / "gop1s.mp4", 60.0, out,
                        seen=[poster.Candidate(1000.0, 128.0, 60.0)])
    assert facts["time"] < 60.0 and facts["decode"] == "keyframes", facts
    assert jpeg.size_of(out) == (320, 180)


@pytest.mark.parametrize("make", [alone, from_storyboard])
def test_a_black_video_gets_no_poster_and_says_why(ffmpeg: FFmpeg, posters: Posters,
                                                   media: Path, tmp_path: Path, make: Any):
    with pytest.raises(Skipped) as caught:
        make(ffmpeg, posters, media / "black.mp4", 3.0, tmp_path / "p.jpg")
    assert caught.value.reason == Reason.NO_PICTURE
    assert "black, white or uniform" in str(caught.value)


@pytest.mark.parametrize("make", [alone, from_storyboard])
def test_poster_long_side_is_at_most_1280(ffmpeg: FFmpeg, posters: Posters, media: Path,
                                          tmp_path: Path, make: Any):
    facts = make(ffmpeg, posters, media / "big.mp4", 2.0, tmp_path / "p.jpg")
    assert (facts["width"], facts["height"]) == (1280, 720)


@pytest.mark.parametrize("make", [alone, from_storyboard])
@pytest.mark.parametrize(("sample", "shape"), [("video_rotation_90.mp4", "portrait"),
                                                ("sar_2x1.mp4", "sar")])
def test_poster_applies_rotation_and_pixel_shape(  # noqa: PLR0917 - fixtures and params
        ffmpeg: FFmpeg, posters: Posters, samples: Path, tmp_path: Path, sample: str,
        shape: str, make: Any):
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,sample_aspect_ratio:stream_side_data=rotation:"
         "format=duration", "-of", "default=nw=1", str(samples / sample)],
        capture_output=True, text=True, check=True, timeout=60).stdout
    info = dict(line.split("=", 1) for line in probe.splitlines() if "=" in line)
    width, height = int(info["width"]), int(info["height"])
    duration = float(info["duration"]) if make is from_storyboard else None
    facts = make(ffmpeg, posters, samples / sample, duration, tmp_path / "p.jpg")
    if shape == "portrait":
        assert abs(int(float(info.get("rotation", 0)))) == 90
        assert facts["height"] > facts["width"]
        assert facts["height"] / facts["width"] == pytest.approx(width / height, rel=0.02)
    else:
        num, den = (int(x) for x in info["sample_aspect_ratio"].split(":"))
        assert (num, den) == (2, 1)
        shown = width * num / den / height
        assert facts["width"] / facts["height"] == pytest.approx(shown, rel=0.02)


def test_storyboard_from_keyframes_when_the_gop_allows(ffmpeg: FFmpeg, media: Path,
                                                       tmp_path: Path):
    facts, sheets = storyboard.make(ffmpeg, media / "gop1s.mp4", 60.0, True, tmp_path)
    assert facts["decode"] == "keyframes"
    assert facts["wanted"] == 50
    assert len(facts["tiles"]) >= 45
    assert len(sheets) == 1
    assert (facts["width"], facts["height"]) == (240, 134) or facts["width"] == 240
    assert jpeg.size_of(sheets[0]) == (facts["width"] * 10, facts["height"] * 5)
    starts = [t["start"] for t in facts["tiles"]]
    assert starts == sorted(starts) and starts[0] < 1.0
    assert facts["tiles"][-1]["end"] == 60.0
    assert all(t["end"] > t["start"] for t in facts["tiles"])


def test_a_small_video_s_tiles_are_its_own_size(ffmpeg: FFmpeg, media: Path, tmp_path: Path):
    """64x64 px, 3 s: three tiles of 64x64 (not blown up to 240x240), one row of three."""
    facts, sheets = storyboard.make(ffmpeg, media / "tiny.mp4", 3.0, True, tmp_path)
    assert (facts["width"], facts["height"]) == (64, 64)
    assert (facts["columns"], facts["rows"], len(facts["tiles"])) == (3, 1, 3)
    assert jpeg.size_of(sheets[0]) == (3 * 64, 64)
    assert [(t["x"], t["y"]) for t in facts["tiles"]] == [(0, 0), (64, 0), (128, 0)]


def test_a_one_tile_storyboard_is_one_tile_wide(ffmpeg: FFmpeg, media: Path, tmp_path: Path):
    """Half a second: one tile, and a sheet of that one tile (not ten tiles wide)."""
    facts, sheets = storyboard.make(ffmpeg, media / "half.mp4", 0.5, True, tmp_path)
    assert (facts["columns"], facts["rows"], len(facts["tiles"])) == (1, 1, 1)
    assert jpeg.size_of(sheets[0]) == (facts["width"], facts["height"]) == (240, 136)


def test_storyboard_falls_back_to_every_frame_when_keyframes_are_sparse(
        ffmpeg: FFmpeg, media: Path, tmp_path: Path):
    facts, _sheets = storyboard.make(ffmpeg, media / "onekey.mp4", 60.0, True, tmp_path)
    assert facts["decode"] == "full"
    assert len(facts["tiles"]) == 50
    assert [t["start"] for t in facts["tiles"]][:3] == pytest.approx([0.0, 1.2, 2.4],
                                                                       abs=0.11)


def test_storyboard_without_duration_is_skipped(ffmpeg: FFmpeg, media: Path, tmp_path: Path):
    with pytest.raises(Skipped) as caught:
        storyboard.make(ffmpeg, media / "gop1s.mp4", None, True, tmp_path)
    assert caught.value.reason == Reason.TOO_SHORT


def test_a_file_ffmpeg_cannot_read_fails_with_its_reason(posters: Posters, tmp_path: Path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0not a video" * 100)
    with pytest.raises(Failed) as caught:
        poster.make(posters, junk, 1.0, tmp_path / "p.jpg")
    assert caught.value.reason == Reason.FFMPEG_FAILED
    assert "the file cannot be read" in str(caught.value)


def test_a_video_whose_frames_do_not_decode_is_skipped(posters: Posters, samples: Path,
                                                       tmp_path: Path):
    """invalid_userdata.mp4: a cut-off file whose video stream ends before a frame
    decodes (the prober fails it; derive says the same if it ever meets one)."""
    with pytest.raises(Skipped) as caught:
        poster.make(posters, samples / "invalid_userdata.mp4", 1.0, tmp_path / "p.jpg")
    assert caught.value.reason == Reason.NO_VIDEO_FRAMES


@pytest.mark.parametrize(("sample", "duration", "after"), [("blackstart.webm", 8.0, 2.0),
                                                       ("blackstart.wmv", 20.0, 4.0)])
def test_the_black_start_of_a_webm_or_wmv_loses_to_a_later_keyframe(  # noqa: PLR0917
        ffmpeg: FFmpeg, posters: Posters, media: Path, tmp_path: Path, sample: str,
        duration: float, after: float):
    """VP9 in WebM (a keyframe every 2 s), WMV in ASF (every 0.4 s): keyframe packets
    only are decoded, at the candidates' spacing; the black start loses."""
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / sample, duration, out)
    assert facts["decode"] == "keyframes" and facts["time"] >= after, facts
    assert jpeg.size_of(out) == (320, 180)
    made = looks(ffmpeg, out)
    assert made.usable and made.mean > 60, made


def test_the_poster_child_is_kept_between_posters_and_starts_no_ffmpeg(
        posters: Posters, media: Path, tmp_path: Path):
    """One long-lived child makes poster after poster (no process start per poster, nor
    per pass); it starts no ffmpeg."""
    poster.make(posters, media / "fade.mp4", 10.0, tmp_path / "a.jpg")
    [child] = posters.pids()
    poster.make(posters, media / "blackstart.wmv", 20.0, tmp_path / "b.jpg")
    with pytest.raises(Skipped):
        poster.make(posters, media / "black.mp4", 3.0, tmp_path / "c.jpg")
    assert posters.pids() == [child]
    kids = Path(f"/proc/{child}/task/{child}/children").read_text().split()
    assert kids == []


@pytest.mark.parametrize("sample", ["black.webm", "latepicture.mp4"])
def test_the_frame_by_frame_proof_of_no_picture_is_bounded_and_says_so(
        posters: Posters, media: Path, tmp_path: Path, sample: str):
    """Keyframes all black: frames are decoded one by one over the first FULL_SECONDS of
    the window only; a picture after that is not looked for, and the reason says so."""
    with pytest.raises(Skipped) as caught:
        poster.make(posters, media / sample, 8.0 if "late" in sample else 6.0,
                    tmp_path / "p.jpg")
    assert caught.value.reason == Reason.NO_PICTURE
    assert f"every frame of the first {poster.FULL_SECONDS:g} s" in str(caught.value)


def test_a_poster_found_frame_by_frame_is_turned_as_displayed(posters: Posters, media: Path,
                                                              tmp_path: Path):
    """One keyframe, black (a fade-in) in a video displayed turned a quarter: the winner
    of the frame-by-frame search is turned by the filters ffmpeg's own autorotation
    would use: the same pixels as ffmpeg shows them."""
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / "fade-turned.mp4", 3.0, out)
    assert facts["decode"] == "full" and facts["time"] >= 1.5, facts
    assert jpeg.size_of(out) == (180, 320)  # portrait

    def gray(*args: str) -> bytes:
        return subprocess.run(
            ["ffmpeg", "-v", "error", *args, "-frames:v", "1", "-vf",
             f"scale={poster.PROBE_W}:{poster.PROBE_H},format=gray", "-f", "rawvideo", "-"],
            capture_output=True, check=True, timeout=60).stdout

    made = gray("-i", str(out))
    shown = gray("-ss", f"{facts['time']:.3f}", "-i", str(media / "fade-turned.mp4"))
    assert len(made) == len(shown) == poster.PROBE_W * poster.PROBE_H
    assert sum(abs(a - b) for a, b in zip(made, shown, strict=True)) / len(made) < 8


@pytest.mark.parametrize("duration", [4.0, None])
def test_a_short_video_keeps_enough_keyframe_candidates(posters: Posters, media: Path,
                                                        tmp_path: Path,
                                                        duration: float | None):
    """Candidates at least MIN_SPACING apart would leave a 4 s video its black first
    keyframe alone (then a frame-by-frame pass): a short one keeps FEW_CANDIDATES spread
    over it, one of unknown duration its first keyframes."""
    facts = poster.make(posters, media / "short-fade.mp4", duration, tmp_path / "p.jpg")
    assert facts["decode"] == "keyframes" and facts["time"] >= 1.0, facts


def test_a_picture_that_stops_before_the_window_still_gives_a_poster(
        ffmpeg: FFmpeg, posters: Posters, media: Path, tmp_path: Path):
    """A 150 s file whose video track lasts 10 s (the sound goes on): the window (from a
    tenth in) holds no frame; the poster is one of the video's first keyframes, not
    ``no_video_frames`` for a video whose frames decode."""
    out = tmp_path / "p.jpg"
    facts = poster.make(posters, media / "shortpicture.mp4", 150.0, out)
    assert facts["decode"] == "keyframes" and facts["time"] < 10.0, facts
    assert jpeg.size_of(out) == (320, 180)
    made = looks(ffmpeg, out)
    assert made.usable and made.mean > 60, made


def test_a_picture_too_big_for_the_memory_limit_fails_as_a_resource_limit(tmp_path: Path):
    """An 8192x8192 MJPEG frame (0.5 MB) under an address-space limit it does not fit in:
    the poster's child runs out of memory while decoding (PyAV's ENOMEM) and says so
    (``resource_limit``, VIDEODROP_CHILD_MEMORY), not ``ffmpeg_failed``."""
    big = tmp_path / "big.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=8192x8192:rate=1", "-frames:v", "1", "-c:v", "mjpeg",
                    "-q:v", "31", "-pix_fmt", "yuvj420p", str(big)], check=True, timeout=120)
    tight = Posters.like(FFmpeg("ffmpeg", ChildRunner(330 << 20, file_size=None), 120))
    try:
        with pytest.raises(Failed) as caught:
            poster.make(tight, big, 1.0, tmp_path / "p.jpg")
    finally:
        tight.close()
    assert caught.value.reason == Reason.RESOURCE_LIMIT, caught.value
    assert "VIDEODROP_CHILD_MEMORY" in str(caught.value)


def test_a_decoder_that_cannot_get_a_frame_buffer_is_a_resource_limit(
        ffmpeg: FFmpeg, tmp_path: Path):
    """ffmpeg's decoder failing to allocate a frame (``get_buffer() failed``, what the
    address-space limit gives on a huge picture; here forced by ``-max_alloc``) ends as
    ``resource_limit``: ffmpeg's own last words ("Output file is empty, nothing was
    encoded", "Operation not permitted") would send the reader looking elsewhere."""
    big = tmp_path / "big.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=4096x4096:rate=1", "-frames:v", "1", "-c:v", "mjpeg",
                    "-q:v", "31", "-pix_fmt", "yuvj420p", str(big)], check=True, timeout=120)
    with pytest.raises(Failed) as caught:
        ffmpeg.run(["-max_alloc", "4000000", "-i", f"file:{big}", "-vf", "scale=160:90",
                    "-f", "rawvideo", "-y", "/dev/null"])
    assert caught.value.reason == Reason.RESOURCE_LIMIT, caught.value
