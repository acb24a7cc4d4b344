"""Running ffprobe (prober.ffprobe) and probe_file's handling of ffprobe trouble.

Fake ffprobe executables are shell scripts in tmp_path; nothing here needs a real ffprobe.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import pytest

from prober.ffprobe import (
    Completed,
    FFprobeFailed,
    FFprobeMissing,
    FFprobeTimeout,
    ffprobe_version,
    run_probe,
)
from prober.packets import Listing
from prober.probe import probe_file
from testbed.processes import python_for_others, wait_until_gone
from tests.unit.fake_ffprobe import (
    NOT_OPENED,
    VIDEO_STREAM,
    Recorder,
    compact,
    is_decode,
    ok,
)
from videodrop.children import ChildRunner
from videodrop.errorcodes import ErrorCode
from videodrop.formats import DEMUXERS


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def sleeper(tmp_path: Path) -> tuple[Path, Path]:
    """A fake ffprobe that starts a child and sleeps; it records both pids."""
    pids = tmp_path / "pids"
    fake = script(
        tmp_path / "ffprobe", f'echo $$ >> "{pids}"\nsleep 60 &\necho $! >> "{pids}"\nwait\n'
    )
    return fake, pids


# The fakes record their pids in a file: they may write files (ffprobe may not).
WRITER = ChildRunner(file_size=None)


def test_hanging_ffprobe_is_killed_with_its_children(sleeper: tuple[Path, Path]) -> None:
    fake, pids = sleeper
    started = time.monotonic()
    with pytest.raises(FFprobeTimeout, match=r"timed out after 1 s"):
        ffprobe_version(str(fake), WRITER, timeout=1.0)
    assert time.monotonic() - started < 3.0
    recorded = [int(line) for line in pids.read_text().split()]
    assert len(recorded) == 2
    assert wait_until_gone(recorded), "the fake ffprobe or its child survived"


def test_probe_file_reports_the_timeout(sleeper: tuple[Path, Path], tmp_path: Path) -> None:
    fake, pids = sleeper
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 1000)
    started = time.monotonic()
    result = probe_file(video, ffprobe=str(fake), timeout=1.0, version="fake", runner=WRITER)
    assert time.monotonic() - started < 3.0
    assert (result.ok, result.error) == (False, "timed out after 1 s")
    assert result.metadata["size"] == 1000
    assert result.metadata["extension"] == "mp4"
    assert result.raw is None
    assert wait_until_gone([int(p) for p in pids.read_text().split()])


def test_missing_binary(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-ffprobe")
    with pytest.raises(FFprobeMissing) as caught:
        ffprobe_version(missing)
    message = str(caught.value)
    assert missing in message
    assert "apt-get install ffmpeg" in message and "VIDEODROP_FFPROBE" in message
    with pytest.raises(FFprobeMissing):
        run_probe(tmp_path / "x.mp4", ffprobe=missing)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"data")
    with pytest.raises(FFprobeMissing):
        probe_file(video, ffprobe=missing, timeout=5)
    with pytest.raises(FFprobeMissing):
        probe_file(video, ffprobe=missing, timeout=5, version="known")


def test_binary_that_is_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "ffprobe"
    plain.write_text("not a program")
    with pytest.raises(FFprobeMissing, match="not executable"):
        ffprobe_version(str(plain))


def test_version_from_a_fake_binary(tmp_path: Path) -> None:
    fake = script(
        tmp_path / "ffprobe",
        'echo "ffprobe version 5.1.9-0+deb12u1 Copyright (c) 2007-2026 the FFmpeg developers"\n',
    )
    assert ffprobe_version(str(fake)) == "5.1.9-0+deb12u1"


def test_run_probe_arguments_are_a_list_not_a_shell() -> None:
    runner = Recorder(ok(json.dumps({"format": {"format_name": "avi"}, "streams": []})))
    output = run_probe("/in box/it's; rm -rf.mp4", ffprobe="ffprobe", timeout=5, runner=runner)
    assert output.data["format"]["format_name"] == "avi"
    args = runner.calls[0]
    for flag in ("-print_format", "-show_format", "-show_streams", "-show_chapters",
                 "-show_error"):
        assert flag in args
    assert args[args.index("-v") + 1] == "warning"  # (demuxers say "Packet corrupt" there)
    assert args[-1] == "file:/in box/it's; rm -rf.mp4"


def test_every_read_is_limited_to_files_and_the_accepted_demuxers() -> None:
    runner = Recorder(ok(json.dumps({"format": {"format_name": "avi"}, "streams": []})))
    run_probe("x.mp4", runner=runner)
    args = runner.calls[0]
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert set(args[args.index("-format_whitelist") + 1].split(",")) == DEMUXERS
    assert {"hls", "concat", "image2", "gif", "srt"}.isdisjoint(DEMUXERS)


def test_run_probe_raises_with_ffprobe_error() -> None:
    answer = ok('{"error": {"code": -1094995529, "string": "Invalid data found"}}', "x", 1)
    with pytest.raises(FFprobeFailed) as caught:
        run_probe("x.mp4", runner=Recorder(answer))
    assert caught.value.error == "Invalid data found"
    assert caught.value.returncode == 1


LISTING = b"""{
    "packets": [
        { "stream_index": 0, "pts": 0, "dts": -2, "duration": 1, "size": "5173", "flags": "K_" },
        { "stream_index": 1, "pts": -1024, "dts": -1024, "duration": 1024, "flags": "KD",
            "side_data_list": [
                {  }
            ] },
        { "stream_index": 1, "pts": 0, "dts": 0, "duration": 1024, "size": "300", "flags": "K_" },
        { "stream_index": 0, "pts": 2, "dts": -1, "duration": 1, "size": "100", "flags": "__" },
        { "stream_index": 0, "pts": 1, "dts": 0, "duration": 1, "size": "100", "flags": "__" },
        { "stream_index": 2, "duration": 40000, "size": "10", "flags": "K_" },
        { "stream_index": 2, "duration": 40000, "size": "10", "flags": "__" }
    ],
    "streams": [
        { "index": 0, "codec_type": "video", "time_base": "1/25" }
    ],
    "format": { "format_name": "mov,mp4,m4a,3gp,3g2,mj2" }
}
"""


def test_the_listing_folds_packets_and_keeps_the_header() -> None:
    listing = Listing()
    for at in range(0, len(LISTING), 7):  # chunks cut anywhere, mid-line included
        listing.feed(LISTING[at : at + 7])
    header = listing.header()
    assert header == {"streams": [{"index": 0, "codec_type": "video", "time_base": "1/25"}],
                      "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"}}
    summary = listing.summary()
    video, audio, raw = summary.streams[0], summary.streams[1], summary.streams[2]
    assert (video.count, video.keyframes, video.size) == (3, 1, 5373)
    assert (video.first, video.last, video.end) == (0, 2, 3)  # by pts, not dts
    assert (audio.count, audio.discarded) == (1, 1)  # the D (priming) packet is left out
    assert raw.timed == 0 and raw.seconds(Fraction(1, 1_200_000)) == (0.0, 80000 / 1_200_000)


def test_durations_too_short_for_the_timeline_are_not_believed() -> None:
    """AVI written with a 1/600 time base: 5 fps frames 120 ticks apart, each 1 tick long."""
    listing = Listing()
    lines = [f'        {{ "stream_index": 0, "pts": {i * 120}, "duration": 1, "size": "9" }},'
             for i in range(50)]
    listing.feed(("{\n    \"packets\": [\n" + "\n".join(lines) + "\n    ],\n"
                  '    "format": {}\n}\n').encode())
    assert listing.summary().streams[0].seconds(Fraction(1, 600)) == (0.0, 10.0)


def test_empty_file_never_reaches_ffprobe(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mkv"
    empty.touch()
    runner = Recorder()
    result = probe_file(empty, runner=runner, version="5.1")
    assert (result.ok, result.error, result.raw) == (False, "empty file", None)
    assert result.metadata["size"] == 0 and result.metadata["extension"] == "mkv"
    assert runner.calls == []


def test_unreadable_file_raises_for_the_worker_to_retry(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        probe_file(tmp_path / "gone.mp4", runner=Recorder(), version="5.1")


def test_garbage_output_from_ffprobe_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    result = probe_file(video, runner=Recorder(ok("not json"), ok("", "", 1)), version="5.1")
    assert result.ok is False and result.error


def test_ffprobe_crash_is_reported(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    result = probe_file(video, runner=Recorder(ok("", "", -11)), version="5.1")
    assert (result.error, result.code) == ("ffprobe crashed (signal 11)", ErrorCode.UNREADABLE)
    result = probe_file(video, runner=Recorder(ok("", "", -9)), version="5.1")
    assert result.code == ErrorCode.RESOURCE_LIMIT and "limit" in (result.error or "")
    answer = ok('{"error": {"code": -12, "string": "Cannot allocate memory"}}', "", 1)
    result = probe_file(video, runner=Recorder(answer), version="5.1")
    assert result.code == ErrorCode.RESOURCE_LIMIT


def _full_read_times_out(probe: Mapping[str, object]) -> Callable[..., Completed]:
    def runner(args: Sequence[str], timeout: float, **_: object) -> Completed:
        if is_decode(args):
            return NOT_OPENED
        if "-read_intervals" in args:
            return ok(compact(probe))
        raise FFprobeTimeout(timeout)

    return runner


def test_a_full_read_that_overruns_without_a_video_tail_times_out(tmp_path: Path) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    probe = {"format": {"format_name": "matroska,webm"}, "streams": [VIDEO_STREAM]}
    result = probe_file(video, runner=_full_read_times_out(probe), timeout=7, version="5.1")
    assert (result.error, result.code) == ("timed out after 7 s", ErrorCode.TIMEOUT)


def test_a_full_read_that_overruns_falls_back_to_the_tail(tmp_path: Path) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    probe = {
        "packets": [{"stream_index": 0, "pts": 12000, "duration": 500}],
        "format": {"format_name": "matroska,webm", "duration": "12.5"},
        "streams": [{**VIDEO_STREAM, "avg_frame_rate": "25/1"}],
    }
    result = probe_file(video, runner=_full_read_times_out(probe), timeout=7, version="5.1")
    assert result.ok, result.error
    assert result.metadata["duration"] == 12.5
    assert result.metadata["fps"] == 25.0
    assert any("header's" in w for w in result.metadata["warnings"])


def test_version_is_looked_up_when_not_given(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    answer = '{"error": {"code": -1094995529, "string": "Invalid data found"}}'
    runner = Recorder(ok("ffprobe version 6.1 Copyright"), ok(answer, "", 1))
    result = probe_file(video, runner=runner)
    assert result.metadata["ffprobe_version"] == "6.1"
    assert result.error == "not a media file: Invalid data found"
    assert runner.calls[0][-1] == "-version"


def test_empty_file_needs_no_version_lookup(tmp_path: Path) -> None:
    empty = tmp_path / "clip.mp4"
    empty.touch()
    result = probe_file(empty, runner=Recorder())
    assert result.error == "empty file"
    assert result.metadata["ffprobe_version"] is None


def test_hanging_version_lookup_counts_against_the_deadline(
    sleeper: tuple[Path, Path], tmp_path: Path
) -> None:
    fake, _ = sleeper
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    started = time.monotonic()
    result = probe_file(video, ffprobe=str(fake), timeout=1.0, runner=WRITER)
    assert time.monotonic() - started < 3.0
    assert result.error == "timed out after 1 s"


# As another user: PermissionError exits 0; ffprobe run (no permission check) exits 1.
PROBE_AS_ANOTHER_USER = """
import sys
from pathlib import Path
from prober.probe import probe_file
def runner(*args, **kwargs):
    sys.exit("ffprobe was run on a file its user may not read")
try:
    probe_file(Path(sys.argv[1]), runner=runner, version="5.1")
except PermissionError:
    sys.exit(0)
sys.exit("no PermissionError")
"""


def test_permission_denied_raises(tmp_path: Path) -> None:
    """A file the prober may not read raises PermissionError (the worker retries it).
    Root reads any file: as root, the probe runs in a child as ``nobody``, in a folder it
    may enter, so that only the file's mode (0600, root's) stands in its way."""
    if os.geteuid() != 0:
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"1234")
        video.chmod(0)
        with pytest.raises(PermissionError):
            probe_file(video, runner=Recorder(), version="5.1")
        return
    folder = Path(tempfile.mkdtemp(prefix="vdprobe-"))
    try:
        folder.chmod(0o755)
        video = folder / "clip.mp4"
        video.write_bytes(b"1234")
        video.chmod(0o600)
        python, path = python_for_others()
        done = subprocess.run(
            [python, "-c", PROBE_AS_ANOTHER_USER, str(video)], capture_output=True, text=True,
            timeout=60, cwd=folder, env={"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
            user=65534, group=65534, extra_groups=[])
        assert done.returncode == 0, done.stderr
    finally:
        shutil.rmtree(folder)
