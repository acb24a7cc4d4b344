"""Deadlines of the derive role's ffmpeg children (derive/ffmpeg.py Deadline), through the
real passes and the real ChildRunner: a pass that decodes every frame gets the base plus
an allowance per media second, bounded by what the file's bytes can hold; every other
child gets the base; each child's CPU-time limit (prlimit ``--cpu``) follows its deadline.

The children run for real; what the runner hands to prlimit is recorded on the way."""

from __future__ import annotations

import math
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from derive import poster, scenes, storyboard
from derive.ffmpeg import (
    MAX_MEDIA_SECONDS,
    MIN_BYTE_RATE,
    Deadline,
    Failed,
    FFmpeg,
    FullDecode,
)
from derive.posters import Posters
from videodrop import children
from videodrop.children import ChildLimits, ChildRunner
from videodrop.derivatives import Reason, unpack_activity

BASE, PER_SECOND, CPUS = 120.0, 0.5, 2


@pytest.fixture
def ffmpeg() -> FFmpeg:
    runner = ChildRunner(1 << 30, file_size=None, cpus=CPUS)
    return FFmpeg("ffmpeg", runner, Deadline(BASE, PER_SECOND))


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, int, list[str]]]:
    """Each child as it starts: (deadline s, prlimit's --cpu, ffmpeg's arguments)."""
    seen: list[tuple[float, int, list[str]]] = []
    real = children.run_limited

    def recording(argv: Sequence[str], timeout: float, *args: Any, **kwargs: Any
                  ) -> children.Completed:
        cpu = next(int(a.split("=", 1)[1]) for a in argv if a.startswith("--cpu="))
        seen.append((timeout, cpu, list(argv[list(argv).index("--") + 1:])))
        return real(argv, timeout, *args, **kwargs)

    monkeypatch.setattr(children, "run_limited", recording)
    return seen


def clip(folder: Path, name: str, source: str, *args: str) -> Path:
    out = folder / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *args,
                    "-pix_fmt", "yuv420p", str(out)], check=True, timeout=120)
    return out


def test_the_rule_counts_media_seconds_the_file_can_hold(tmp_path: Path):
    big = tmp_path / "big"
    big.write_bytes(bytes(int(8000 * MIN_BYTE_RATE)))  # holds 8000 media seconds
    rule = Deadline(600, 0.5)
    assert rule.of() == 600  # not a full decode
    assert rule.of(FullDecode(big, None)) == 600  # duration unknown
    assert rule.of(FullDecode(big, 0.0)) == 600
    assert rule.of(FullDecode(big, math.nan)) == 600
    assert rule.of(FullDecode(big, math.inf)) == 600 + 0.5 * 8000
    assert rule.of(FullDecode(big, 7200)) == 600 + 0.5 * 7200
    assert rule.of(FullDecode(big, 10**9)) == 600 + 0.5 * 8000  # the bytes bound it
    tiny = tmp_path / "tiny"
    tiny.write_bytes(bytes(100_000))  # a tiny file claiming ten hours
    assert rule.of(FullDecode(tiny, 36_000)) == 600 + 0.5 * 100_000 / MIN_BYTE_RATE
    assert Deadline(600, 0.0).of(FullDecode(big, 7200)) == 600  # no allowance
    huge = Deadline(10, 1.0)
    big.write_bytes(bytes(int(2 * MAX_MEDIA_SECONDS * MIN_BYTE_RATE / 1000)) * 1000)
    assert huge.of(FullDecode(big, 10 * MAX_MEDIA_SECONDS)) == 10 + MAX_MEDIA_SECONDS


def test_the_cpu_limit_allows_the_deadline_on_every_core():
    assert ChildLimits.for_deadline(600, cpus=2).cpu_seconds == 1201
    assert ChildLimits.for_deadline(600).cpu_seconds == 601


def test_a_long_scenes_pass_gets_the_scaled_deadline(
        ffmpeg: FFmpeg, launched: list[tuple[float, int, list[str]]], tmp_path: Path):
    """A file the probe says lasts two hours (its bytes can hold them): the analysis pass
    gets the base plus 0.5 s a media second; the small thumbnail child the base."""
    path = clip(tmp_path, "long.mp4", "testsrc2=size=320x180:rate=10:duration=3", "-g", "10")
    with path.open("ab") as fh:  # bytes enough for two hours, after the moov: ignored
        fh.truncate(path.stat().st_size + int(7200 * MIN_BYTE_RATE))
    facts, _ = scenes.make(ffmpeg, path, 10.0, 7200.0, tmp_path)
    assert facts["frames"] == 30
    (analysis, analysis_cpu, _), (sheets, sheets_cpu, sheet_args) = launched
    assert analysis == BASE + PER_SECOND * 7200
    assert analysis_cpu == CPUS * analysis + 1
    assert any("tile=" in a for a in sheet_args)  # the thumbnail sheets child
    assert (sheets, sheets_cpu) == (BASE, CPUS * BASE + 1)


def test_a_tiny_file_claiming_a_huge_duration_gets_a_bounded_deadline(
        ffmpeg: FFmpeg, launched: list[tuple[float, int, list[str]]], tmp_path: Path):
    path = clip(tmp_path, "tiny.mp4", "testsrc2=size=160x90:rate=10:duration=2", "-g", "10")
    facts, _ = scenes.make(ffmpeg, path, 10.0, 1e9, tmp_path)
    # the activity: one value a second only as far as the bytes can hold seconds
    held = path.stat().st_size / MIN_BYTE_RATE
    assert 2 <= len(unpack_activity(facts["activity"])) <= math.ceil(held)
    analysis = launched[0][0]
    assert analysis == BASE + PER_SECOND * path.stat().st_size / MIN_BYTE_RATE
    assert analysis < BASE + 500  # a few kB: a few minutes more at most
    launched.clear()
    scenes.make(ffmpeg, path, 10.0, None, tmp_path)  # no duration: the base
    assert launched[0][0] == BASE


def test_the_storyboards_full_decode_fallback_gets_the_scaled_deadline(
        ffmpeg: FFmpeg, launched: list[tuple[float, int, list[str]]], tmp_path: Path):
    path = clip(tmp_path, "onekey.mp4", "testsrc2=size=320x180:rate=10:duration=60",
                "-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0")
    board = tmp_path / "board"
    board.mkdir()
    facts, _ = storyboard.make(ffmpeg, path, 60.0, True, board)
    assert facts["decode"] == "full"
    (keyframes, _, key_args), (full, full_cpu, full_args) = launched
    assert "nokey" in key_args and "nokey" not in full_args
    assert keyframes == BASE
    seconds = min(60.0, path.stat().st_size / MIN_BYTE_RATE)
    assert full == pytest.approx(BASE + PER_SECOND * seconds)
    assert full_cpu == math.ceil(CPUS * full) + 1


def test_a_poster_request_gets_the_deadline_of_its_full_decode_fallback(tmp_path: Path):
    path = clip(tmp_path, "black.mp4", "color=black:size=320x240:rate=10:duration=3",
                "-g", "10")
    posters = Posters(1 << 30, Deadline(BASE, PER_SECOND))
    assert posters.timeout(path, poster.FULL_SECONDS) == pytest.approx(
        BASE + PER_SECOND * min(poster.FULL_SECONDS, path.stat().st_size / MIN_BYTE_RATE))
    assert posters.timeout(path, None) == BASE


def test_a_poster_child_past_its_deadline_is_killed_and_the_next_gets_a_fresh_one(
        tmp_path: Path):
    path = clip(tmp_path, "picture.mp4", "testsrc2=size=320x240:rate=10:duration=3",
                "-g", "10")
    posters = Posters(1 << 30, Deadline(1e-9))
    try:
        with pytest.raises(Failed) as caught:
            poster.make(posters, path, 3.0, tmp_path / "p.jpg")
        assert caught.value.reason == Reason.TIMEOUT
        assert posters.pids() == []  # killed, not kept
        posters.deadline = Deadline(BASE)
        facts = poster.make(posters, path, 3.0, tmp_path / "p.jpg")
        assert facts["decode"] == "keyframes"
        [first] = posters.pids()
        os.kill(first, signal.SIGKILL)  # dies while idle: replaced, the request answered
        assert poster.make(posters, path, 3.0, tmp_path / "q.jpg") == facts
        assert posters.pids() != [first]
    finally:
        posters.close()



def test_frames_far_apart_in_a_tiny_file_are_not_repeated_for_the_claimed_hours(
        ffmpeg: FFmpeg, launched: list[tuple[float, int, list[str]]], tmp_path: Path):
    """Three frames of a few kB, the last at 1000 s: the scenes pass (the ``fps`` filter
    repeats a frame over a gap) reads no further than the bytes can hold seconds, so it
    does not analyse 25,000 frames of one repeated picture; the scenes still run to the
    video's end."""
    path = tmp_path / "gaps.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=160x90:rate=1", "-frames:v", "3",
                    "-vf", "setpts='if(eq(N,2),1000/TB,N/TB)'", "-fps_mode", "passthrough",
                    "-c:v", "libx264", "-g", "1", str(path)], check=True, timeout=60)
    held = path.stat().st_size / MIN_BYTE_RATE
    assert held < 100, held  # a few kB: under 100 s of the 1000 claimed
    facts, _ = scenes.make(ffmpeg, path, 25.0, 1001.0, tmp_path)
    assert 25 <= facts["frames"] <= math.ceil(held * 25) + 1, facts["frames"]
    assert facts["duration"] == 1001.0
    analysis_args = launched[0][2]
    assert analysis_args[analysis_args.index("-t") + 1] == f"{held:.3f}"
