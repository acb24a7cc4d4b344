"""The frame endpoints' decoding children (api/frames/decoders.py, decoder.py) on their
own, with real ffmpeg-made media: the deadline kills a child and the next request gets a
fresh one; a child gone while idle is replaced; frames asked in order are decoded going
on from the last one and are still the exact frames; the limits are applied."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from api.frames.decoder import OPEN_OPTIONS, Inputs, Wanted, frame_at
from api.frames.decoders import DecodeFailed, Decoders, Request

FPS = 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 25 fps, 64x48, a keyframe every 10 frames, B-frames: frame n shows the
    number n (testsrc's counter), so that order is visible in the frames' times."""
    path = tmp_path_factory.mktemp("decoders") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc=size=64x48:rate={FPS}:duration=2", "-c:v", "libx264",
                    "-g", "10", "-bf", "2", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=60)
    return path


@pytest.fixture
def decoders() -> Decoders:
    pool = Decoders(1 << 30)
    yield pool
    pool.close()


def request(path: Path, n: int, fmt: str = "ppm", *, known: bool = True) -> Request:
    """Frame ``n`` of :func:`clip`: decoding from its GOP's keyframe (every 10 frames);
    ``known``: the frame's time is given (the child may drain its decoder)."""
    key = n // 10 * 10
    start = key / FPS + 0.001 if key else 0.0
    return Request(path, start, (n - 0.5) / FPS if n else -1e9, 64, False, fmt,
                   time=n / FPS if known else None)


def later(seconds: float = 30.0) -> float:
    return time.monotonic() + seconds


@pytest.mark.parametrize("known", [True, False])
def test_frames_in_order_and_out_of_order_are_the_ones_asked(clip, decoders, known):
    """Whether the child drains its decoder after a frame (its time known) or keeps it
    going (not known), in order and out of order, the frames are the ones asked, pixel
    for pixel as a decode of the whole file gives them."""
    whole = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "pipe:1"], check=True, capture_output=True,
                           timeout=60).stdout
    size = 64 * 48 * 3
    for n in [*range(0, 25), 49, 3, 31, 30, 12, 13, 47, 29]:
        got, data = decoders.picture(request(clip, n, known=known), later())
        assert got == pytest.approx(n / FPS, abs=1e-6), n
        assert data.startswith(b"P6\n64 48\n255\n") and len(data) == 13 + size
        assert data[13:] == whole[n * size:(n + 1) * size], n


def test_a_frame_asked_alone_drains_the_decoder_one_asked_in_order_does_not(clip):
    """A frame asked at random (its time known, no frame asked just before it in its
    GOP): the decoder is drained once its packet is sent, nothing decoded after it;
    the frame after it then goes on (its decoder seeks once and is kept going)."""
    inputs = Inputs()
    wanted = Wanted(str(clip), f"file:{clip}", OPEN_OPTIONS)
    for n, drained in ((17, True), (18, False), (19, False), (5, True), (6, False)):
        one = request(clip, n)
        _, shown = frame_at(inputs, wanted, one.start, one.seek, time=one.time)
        assert shown == pytest.approx(n / FPS, abs=1e-6)
        assert inputs.opened[wanted.key].ended is drained, n
    one = request(clip, 33)
    frame_at(inputs, wanted, one.start, one.seek, time=one.time, ahead=True)
    assert not inputs.opened[wanted.key].ended  # a later frame comes next: kept going


def test_a_request_past_its_deadline_kills_its_child_and_the_next_gets_a_fresh_one(
        clip, decoders):
    decoders.picture(request(clip, 5), later())
    [first] = decoders.pids()
    with pytest.raises(DecodeFailed) as failed:
        decoders.picture(request(clip, 40), time.monotonic())
    assert failed.value.reason == "timeout"
    assert decoders.pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    got, _ = decoders.picture(request(clip, 40, "jpeg"), later())
    assert got == pytest.approx(40 / FPS, abs=1e-6)
    assert decoders.pids() not in ([], [first])


def test_a_child_gone_while_idle_is_replaced(clip, decoders):
    decoders.picture(request(clip, 5, "png"), later())
    [first] = decoders.pids()
    os.kill(first, signal.SIGKILL)
    got, data = decoders.picture(request(clip, 6, "png"), later())
    assert got == pytest.approx(6 / FPS, abs=1e-6) and data.startswith(b"\x89PNG")
    assert decoders.pids() != [first]


def test_a_file_that_is_not_a_video_is_a_decode_failure(tmp_path, decoders):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DecodeFailed) as failed:
        decoders.picture(request(junk, 1), later())
    assert failed.value.reason == "decode_failed"


def test_the_child_runs_limited_and_at_a_lower_priority(clip, decoders):
    decoders.picture(request(clip, 1), later())
    [pid] = decoders.pids()
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert any(line.startswith("Max address space") and str(1 << 30) in line
               for line in limits.splitlines())
    assert os.getpriority(os.PRIO_PROCESS, pid) >= 10
    autogroup = Path(f"/proc/{pid}/autogroup")  # its session's: at 10 too, or nice is moot
    if autogroup.exists():
        assert autogroup.read_text().split()[-1] == "10", autogroup.read_text()


def test_a_child_that_cannot_run_under_its_memory_limit_fails_clearly(clip):
    """64 MiB of address space: Python itself cannot start; the request fails at once
    (no hang until the deadline), as decode_failed or resource_limit."""
    pool = Decoders(64 << 20)
    try:
        with pytest.raises(DecodeFailed) as failed:
            pool.picture(request(clip, 1), later(120))
        assert failed.value.reason in {"decode_failed", "resource_limit"}
        assert pool.pids() == []
    finally:
        pool.close()
