"""Every frame of an ``exact`` clip lasts what it lasts in the source, the last one
included (docs/models.md#clips), stitched or re-encoded whole: a variable frame rate
H.264 MP4 made here (closed GOPs of 12, two frames followed by a 0.44 s gap and
a last frame of 1.5 s) cut by :class:`~api.frames.stitch.Stitcher` without a system. The
reference is ffprobe of the source: a frame lasts until the next one's time, the source's
last frame its packet's duration; a clip's frame until its next one, its last until the
end of the video stream. (The last frame lasted 1 tick when stitched, the pieces joined
from MPEG-TS, and a duration libx264 gave another frame when re-encoded whole.)"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from api.frames.cut import exact_span
from api.frames.stitch import Stitcher
from videodrop.children import ChildRunner

#: The frames of the source (25 a second) before which a gap of 10 frames is left.
GAPS = (30, 60)
FRAMES = 75
#: The source's last frame's duration, seconds.
LAST = 1.5


def shown(path: Path) -> tuple[list[float], float]:
    """(the video frames' times from the first, sorted; the end of the last frame: the
    stream's duration for a clip, the last frame's packet duration after it for the
    source), seconds, by ffprobe."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=pts_time,duration_time:stream=duration", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60).stdout)
    packets = sorted(out["packets"], key=lambda p: float(p["pts_time"]))
    times = [float(p["pts_time"]) for p in packets]
    first = times[0]
    return [t - first for t in times], float(out["streams"][0]["duration"])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """75 frames at 25 a second, 10 frames' gap before frames 30 and 60, the last lasting
    LAST (its packet's duration; no B-frames: the last packet is the last frame's)."""
    folder = tmp_path_factory.mktemp("last-frame")
    path, cfr = folder / "gaps.mp4", folder / "cfr.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc2=s=128x96:r=25:d={FRAMES / 25}", "-c:v", "libx264", "-preset",
                    "veryfast", "-g", "12", "-keyint_min", "12", "-sc_threshold", "0", "-bf", "0",
                    "-pix_fmt", "yuv420p", "-video_track_timescale", "12800", str(cfr)],
                   check=True, timeout=120)
    # a frame lasts 512 ticks: 10 frames' gap before GAPS, the last packet lasts LAST
    shift = "+".join(f"gte(TS\\,{n * 512})" for n in GAPS)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(cfr), "-c", "copy", "-bsf:v",
                    f"setts=ts=TS+5120*({shift})"
                    f":duration=if(eq(N\\,{FRAMES - 1})\\,round({LAST}/TB)\\,DURATION)",
                    str(path)], check=True, timeout=120)
    times, _ = shown(path)
    assert len(times) == FRAMES
    return path


def durations(times: list[float], end: float) -> list[float]:
    return [b - a for a, b in zip(times, [*times[1:], end], strict=True)]


@pytest.mark.parametrize(("first", "stop", "method"), [
    (5, 30, "stitch"),  # a re-encoded tail, its last frame followed by a gap
    (5, 60, "stitch"),  # no tail: the copied middle ends the clip, before a gap
    (40, FRAMES, "stitch"),  # to the end of the stream: the source's last frame
    (13, 30, "encode"),  # one keyframe inside: re-encoded whole, before a gap
    (62, FRAMES, "encode")])  # re-encoded whole to the end of the stream
def test_every_frame_lasts_what_it_lasts_in_the_source(source, tmp_path, first, stop, method):
    times, _ = shown(source)
    ends = [*times[1:], times[-1] + LAST]
    # the source's last frame lasts what its packet says (ffprobe, not our reading)
    assert ends[-1] - times[-1] == pytest.approx(LAST, abs=1e-4)
    cutter = Stitcher(source, ffmpeg="ffmpeg", ffprobe="ffprobe",
                      runner=ChildRunner(file_size=50_000_000, cpus=2),
                      deadline=time.monotonic() + 120)
    line = cutter.timeline(ends[stop - 1] + 1)
    start = round(times[first], 6)
    end = round(times[stop], 6) if stop < FRAMES else round(ends[-1] + 1, 6)
    span = exact_span(line, start, end)
    assert (span.first, span.count) == (first, stop - first)
    assert span.end == pytest.approx(ends[stop - 1], abs=1e-4)
    out = tmp_path / "clip.mp4"
    made = cutter.exact_clip(line, span, out, None)
    assert made.name == method, made.reason
    got, length = shown(out)
    want = [t - times[first] for t in times[first:stop]]
    assert got == pytest.approx(want, abs=1e-4)
    assert durations(got, length) == pytest.approx(
        durations(want, ends[stop - 1] - times[first]), abs=1e-4)
    assert length == pytest.approx(span.end - span.start, abs=1e-4)
