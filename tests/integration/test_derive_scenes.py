"""Scenes and activity made by the real ffmpeg (derive/scenes.py, derive/shots.py):
accuracy on a generated corpus of known cuts and dissolves (testbed/cuts.py: the truth is
the frame numbers the clips were joined at), a fixed camera's activity curve, the
thumbnail sheets, and a video without decodable frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from derive import jpeg, scenes
from derive.ffmpeg import FFmpeg, Skipped
from prober.probe import probe_file
from testbed import cuts
from videodrop.children import ChildRunner
from videodrop.derivatives import Reason, unpack_activity

RECALL, PRECISION = 0.97, 0.95  # issue 18, at ±1 frame


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg("ffmpeg", ChildRunner(1 << 30, file_size=None), 120)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[cuts.Clip, Path]]:
    folder = tmp_path_factory.mktemp("cuts")
    return [(clip, cuts.make(clip, folder)) for clip in cuts.CORPUS]


def test_boundaries_of_the_corpus_meet_the_accuracy_targets(
        ffmpeg: FFmpeg, corpus: list[tuple[cuts.Clip, Path]], tmp_path: Path):
    total = None
    for clip, path in corpus:
        out = tmp_path / clip.name
        out.mkdir()
        facts, sheets = scenes.make(ffmpeg, path, float(clip.rate), clip.frames / clip.rate, out)
        assert facts["frames"] == clip.frames, clip.name
        assert facts["rate"] == clip.rate
        found = cuts.score(clip.transitions(), facts["starts"])
        total = found if total is None else total + found
        assert facts["starts"][0] == 0 and len(facts["transitions"]) == len(
            facts["starts"]) - 1
        columns = min(scenes.COLUMNS, len(facts["starts"]))  # no empty columns
        assert facts["columns"] == columns and facts["rows"] == 1
        assert len(sheets) == 1 and jpeg.size_of(sheets[0]) == (
            scenes.THUMB_W * columns, scenes.THUMB_H)
    assert total is not None and total.transitions >= 20
    assert total.recall >= RECALL, total
    assert total.precision >= PRECISION, total


def test_cuts_and_dissolves_are_told_apart(ffmpeg: FFmpeg,
                                           corpus: list[tuple[cuts.Clip, Path]],
                                           tmp_path: Path):
    clip, path = next((c, p) for c, p in corpus if c.name == "mixed-720p30")
    facts, _ = scenes.make(ffmpeg, path, float(clip.rate), clip.frames / clip.rate, tmp_path)
    truth = ["cut" if t.kind == "cut" else "gradual" for t in clip.transitions()]
    assert facts["transitions"] == truth


def fixed_camera(folder: Path) -> Path:
    """6 s at 25 fps of still colour bars with a box that moves only from 2 s to 4 s."""
    out = folder / "fixed.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex",
                    "smptehdbars=size=640x360:rate=25:duration=6[bg];"
                    "color=c=white:size=60x60:rate=25[box];"
                    "[bg][box]overlay=x='if(lt(t,2),0,if(lt(t,4),(t-2)*200,400))':y=150"
                    ":shortest=1,format=yuv420p",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", str(out)],
                   check=True, timeout=120)
    return out


def test_a_fixed_camera_has_one_scene_and_activity_where_something_moved(
        ffmpeg: FFmpeg, tmp_path: Path):
    facts, sheets = scenes.make(ffmpeg, fixed_camera(tmp_path), 25.0, None, tmp_path)
    assert facts["starts"] == [0] and facts["transitions"] == []
    assert len(sheets) == 1
    activity = unpack_activity(facts["activity"])
    assert len(activity) == 6
    moving, still = activity[2:4], activity[:2] + activity[4:]
    assert min(moving) > 0.2, activity
    assert max(still) < min(moving) / 5, activity


FADES = {"flat": "testsrc2=size=640x360:rate=25",  # colour bars: flat areas
         "texture": "mandelbrot=size=320x180:rate=25:maxiter=100:end_scale=0.05,"
                    "scale=640:360"}


@pytest.mark.parametrize("fade", ["in:0:100", "out:100:100", "in:0:25", "out:175:25",
                                  "in:0:38", "out:162:38"])
@pytest.mark.parametrize("source", sorted(FADES))
def test_a_fade_within_one_shot_starts_no_scene(ffmpeg: FFmpeg, tmp_path: Path,
                                                source: str, fade: str):
    """8 s of one shot fading in from black or out to black (4 s, 1 s and 1.5 s, at the
    start or the end): one scene. A 4 s fade-in over flat colour bars made a cut
    mid-fade (every bar crossed a histogram bin in the same frame); 1 s and 1.5 s
    fade-outs at the end made a gradual transition."""
    path = tmp_path / "fade.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", FADES[source],
                    "-frames:v", "200", "-vf", f"fade={fade},format=yuv420p",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
                   check=True, timeout=120)
    facts, _ = scenes.make(ffmpeg, path, 25.0, 8.0, tmp_path)
    assert facts["starts"] == [0], facts


def test_the_scenes_cover_the_videos_duration_where_the_audio_outlasts_the_picture(
        ffmpeg: FFmpeg, tmp_path: Path):
    """2 s of picture and 3 s of sound: the record's duration is 3 s (the probe's); the
    scenes' ``duration`` is that, ``activity`` has one value per started second of it (0
    where no picture moves), and the frames are those of the picture (the scenes' timeline
    stopped at the last frame, 2 s, and chapters never reached the end)."""
    path = tmp_path / "short-picture.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x180:rate=25:duration=2", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=3", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(path)], check=True, timeout=120)
    meta = probe_file(path).metadata
    assert meta["duration"] == pytest.approx(3.0, abs=0.05)
    facts, _ = scenes.make(ffmpeg, path, meta["fps"], meta["duration"], tmp_path)
    assert facts["duration"] == round(meta["duration"], 3)
    assert facts["frames"] == 50 and facts["starts"] == [0]
    activity = unpack_activity(facts["activity"])
    assert len(activity) == 3 and activity[2] == 0.0 and min(activity[:2]) > 0, activity


def test_a_video_whose_frames_do_not_decode_is_skipped(ffmpeg: FFmpeg, samples: Path,
                                                       tmp_path: Path):
    with pytest.raises(Skipped) as caught:
        scenes.make(ffmpeg, samples / "invalid_userdata.mp4", None, 231.338, tmp_path)
    assert caught.value.reason == Reason.NO_VIDEO_FRAMES


def test_boundaries_keep_their_time_when_the_analysis_rate_is_not_the_files(
        ffmpeg: FFmpeg, tmp_path: Path):
    """The probe's rate may differ from the stream's (counted over a variable-rate file:
    14.8 for a 15 frames/s WMV): frame n of the pass must still be at n / rate seconds.
    A cut at 4.0 s analysed at 14 frames/s is frame 56 (resampling with ``-r`` put
    it at 58: two frames repeated at the start)."""
    path = tmp_path / "cut-at-4s.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x180:rate=15:duration=4", "-f", "lavfi",
                    "-i", "smptehdbars=size=320x180:rate=15:duration=2", "-filter_complex",
                    "[0][1]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=120)
    facts, _ = scenes.make(ffmpeg, path, 14.0, 6.0, tmp_path)
    assert facts["frames"] == 6 * 14
    [_, cut] = facts["starts"]
    assert abs(cut - 4 * 14) <= 1, facts["starts"]


# Real footage (../shared/samples), boundaries checked frame by frame (docs/benchmarks.md,
# "On real footage"): times (s) of the first frame of a new picture, and times where a
# flash or a moving pointer changes the picture and no scene starts.
REAL_CUTS = {
    "xbox.wmv": [33.733, 34.733, 36.599, 38.466, 41.599, 47.266, 48.733, 51.666, 54.266,
                 58.799, 60.266, 63.266, 64.599, 67.066, 68.199, 74.866, 75.666, 77.866,
                 78.866, 89.799],
    "annex-b-avc.mkv": [9.637, 11.830, 22.044, 23.964, 32.834, 34.063],  # a dialog
    "bbb_chapters.mp4": [1.5, 9.583],
}
REAL_NOT_CUTS = {
    "xbox.wmv": [6.999, 8.066],  # flashes
    "annex-b-avc.mkv": [5.821, 6.826, 14.085],  # the pointer moves
    "sandwich-av-mp4a.40.5.mov": [0.042, 0.29],  # after a black first frame
}


@pytest.mark.parametrize("name", sorted({*REAL_CUTS, *REAL_NOT_CUTS}))
def test_boundaries_of_real_footage_are_where_the_picture_changes(
        ffmpeg: FFmpeg, samples: Path, tmp_path: Path, name: str):
    """At the probe's rate, as the derive role runs it (14.8 frames/s for xbox.wmv's 15):
    each known cut within a frame, no boundary near a known non-cut."""
    path = samples / name
    meta = probe_file(path).metadata
    facts, _ = scenes.make(ffmpeg, path, meta["fps"], meta["duration"], tmp_path)
    rate = facts["rate"]
    times = [start / rate for start in facts["starts"]]
    for cut in REAL_CUTS.get(name, []):
        assert min(abs(t - cut) for t in times) <= 1 / rate + 0.001, (cut, times)
    for still in REAL_NOT_CUTS.get(name, []):
        assert min((abs(t - still) for t in times[1:]), default=1.0) > 0.2, (still, times)


@pytest.mark.parametrize(("shown", "size"), [((64, 64), (64, 64)), ((120, 40), (120, 40)),
                                             ((320, 240), (160, 90)), (None, (160, 90))])
def test_thumbnails_are_never_larger_than_the_picture(
        ffmpeg: FFmpeg, tmp_path: Path, shown: tuple[int, int] | None,
        size: tuple[int, int]):
    """A picture smaller than 160x90 keeps its own size (cropped out of its letterbox, not
    blown up); a larger one (or one of unknown size) gets 160x90, letterboxed; a sheet of
    one scene is one thumbnail wide."""
    width, height = shown or (320, 240)
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate=10:duration=2", "-pix_fmt",
                    "yuv420p", str(clip)], check=True, timeout=120)
    out = tmp_path / "out"
    out.mkdir()
    facts, sheets = scenes.make(ffmpeg, clip, 10.0, 2.0, out, shown=shown)
    assert len(facts["starts"]) == 1
    assert (facts["width"], facts["height"]) == size
    assert (facts["columns"], facts["rows"]) == (1, 1)
    assert jpeg.size_of(sheets[0]) == size


def mean_luma(path: Path, crop: str | None = None, at: float | None = None) -> float:
    """The mean luma (0..255, ffmpeg's signalstats YAVG) of one picture: a JPEG (or the
    frame at ``at`` seconds of a video), cropped to ``crop`` (w:h:x:y)."""
    seek = ["-ss", f"{at:g}"] if at is not None else []
    filters = ",".join([*([f"crop={crop}"] if crop else []), "signalstats",
                        "metadata=print:key=lavfi.signalstats.YAVG:file=-"])
    out = subprocess.run(["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1",
                          "-vf", filters, "-f", "null", "-"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return float(out.split("lavfi.signalstats.YAVG=")[1].split()[0])


@pytest.mark.parametrize("fade_in", [0.6, 1.0, 1.5])
def test_the_scene_after_a_fade_through_black_has_a_lit_thumbnail(
        ffmpeg: FFmpeg, tmp_path: Path, fade_in: float):
    """Colour bars fade out to black in 0.5 s, then a second shot fades in from black
    (0.6 to 1.5 s): the second scene's thumbnail is the shot as it shows once faded in
    (its mean luma at least 80 % of the shot's own, measured by ffmpeg on the sheet's
    tile and on the source), not a black or half-faded frame."""
    path = tmp_path / "through-black.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex",
                    "testsrc2=size=640x360:rate=25:duration=4,fade=out:st=3.5:d=0.5[a];"
                    f"smptehdbars=size=640x360:rate=25:duration=5,fade=in:st=0:d={fade_in}"
                    "[b];[a][b]concat=n=2:v=1,format=yuv420p",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
                   check=True, timeout=120)
    facts, sheets = scenes.make(ffmpeg, path, 25.0, 9.0, tmp_path)
    assert len(facts["starts"]) == 2, facts["starts"]
    w, h = facts["width"], facts["height"]
    tile = mean_luma(sheets[0], f"{w}:{h}:{w}:0")
    shot = mean_luma(path, at=8.0)
    assert tile >= 0.8 * shot, (tile, shot)
