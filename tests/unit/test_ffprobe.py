"""Running ffprobe (prober.ffprobe) and probe_file's handling of ffprobe trouble.

Fake ffprobe executables are shell scripts in tmp_path; nothing here needs a real ffprobe.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from prober.ffprobe import (
    Completed,
    FFprobeFailed,
    FFprobeMissing,
    FFprobeTimeout,
    Runner,
    default_runner,
    ffprobe_version,
    probe_json,
    run_probe,
    scan_packets,
)
from prober.probe import probe_file


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_until_gone(pids: Sequence[int], within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sleeper(tmp_path: Path) -> tuple[Path, Path]:
    """A fake ffprobe that starts a child and sleeps; it records both pids."""
    pids = tmp_path / "pids"
    fake = script(
        tmp_path / "ffprobe", f'echo $$ >> "{pids}"\nsleep 60 &\necho $! >> "{pids}"\nwait\n'
    )
    return fake, pids


def test_hanging_ffprobe_is_killed_with_its_children(sleeper: tuple[Path, Path]) -> None:
    fake, pids = sleeper
    started = time.monotonic()
    with pytest.raises(FFprobeTimeout, match=r"timed out after 1 s"):
        default_runner([str(fake), "-version"], 1.0)
    assert time.monotonic() - started < 3.0
    recorded = [int(line) for line in pids.read_text().split()]
    assert len(recorded) == 2
    assert wait_until_gone(recorded), "the fake ffprobe or its child survived"


def test_probe_file_reports_the_timeout(sleeper: tuple[Path, Path], tmp_path: Path) -> None:
    fake, pids = sleeper
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 1000)
    started = time.monotonic()
    result = probe_file(video, ffprobe=str(fake), timeout=1.0, version="fake")
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
        probe_json(tmp_path / "x.mp4", ffprobe=missing)
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


class Recorder:
    """An injected runner that answers from a list and records every call."""

    def __init__(self, *answers: Completed) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], timeout: float) -> Completed:
        assert timeout > 0
        self.calls.append(list(args))
        return self.answers.pop(0)


def ok(stdout: str | bytes, stderr: str = "", code: int = 0) -> Completed:
    out = stdout.encode() if isinstance(stdout, str) else stdout
    return Completed(code, out, stderr.encode())


def test_probe_json_arguments_are_a_list_not_a_shell() -> None:
    runner = Recorder(ok(json.dumps({"format": {"format_name": "avi"}, "streams": []})))
    data = probe_json("/in box/it's; rm -rf.mp4", ffprobe="ffprobe", timeout=5, runner=runner)
    assert data["format"]["format_name"] == "avi"
    args = runner.calls[0]
    for flag in (
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "-show_chapters",
        "-show_error",
    ):
        assert flag in args
    assert args[args.index("-v") + 1] == "error"
    assert args[-1] == "file:/in box/it's; rm -rf.mp4"


def test_probe_json_raises_with_ffprobe_error() -> None:
    answer = ok('{"error": {"code": -1094995529, "string": "Invalid data found"}}', "x", 1)
    with pytest.raises(FFprobeFailed) as caught:
        probe_json("x.mp4", runner=Recorder(answer))
    assert caught.value.error == "Invalid data found"
    assert caught.value.returncode == 1


def test_scan_reads_the_tail_and_uses_each_time_base() -> None:
    tail = ok("0,30,30,1\n1,44100,44100,1024\n1,45124,N/A,1024\n")  # video ends 31/30 s
    runner = Recorder(tail)
    summary = scan_packets("x.mkv", {0: "1/30", 1: "1/44100"}, must_see=[0], runner=runner)
    assert summary is not None
    assert summary.end == pytest.approx(46148 / 44100)
    assert summary.packets == {0: 1, 1: 2}
    assert summary.full_scan is False
    assert "-read_intervals" in runner.calls[0]
    assert len(runner.calls) == 1


def test_scan_falls_back_to_reading_everything() -> None:
    failed_seek = ok("", "Could not seek to position", 1)
    runner = Recorder(failed_seek, ok("0,0,0,1\n0,1,1,1\n"))
    summary = scan_packets("x.avi", {0: "1/25"}, must_see=[0], runner=runner)
    assert summary is not None
    assert summary.full_scan is True
    assert summary.end == pytest.approx(2 / 25)
    assert "-read_intervals" not in runner.calls[1]


def test_scan_of_a_file_without_packets() -> None:
    runner = Recorder(ok("", "Could not seek", 1), ok(""))
    summary = scan_packets("x.avi", {0: "1/100"}, must_see=[0], runner=runner)
    assert summary is not None and summary.packets == {} and summary.end is None
    runner = Recorder(ok("", "boom", 1), ok("", "boom", 1))
    assert scan_packets("x.avi", {0: "1/100"}, must_see=[0], runner=runner) is None


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
    assert result.error == "not a media file: ffprobe crashed (signal 11)"


def _scan_times_out(probe: Mapping[str, object]) -> Runner:
    def runner(args: Sequence[str], timeout: float) -> Completed:
        if "-show_format" in args:
            return ok(json.dumps(probe))
        raise FFprobeTimeout(timeout)

    return runner


VIDEO_STREAM = {
    "index": 0,
    "codec_type": "video",
    "codec_name": "h264",
    "time_base": "1/1000",
    "width": 2,
    "height": 2,
}


def test_timeout_during_the_packet_scan_without_a_duration(tmp_path: Path) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    probe = {"format": {"format_name": "matroska,webm"}, "streams": [VIDEO_STREAM]}
    result = probe_file(video, runner=_scan_times_out(probe), timeout=7, version="5.1")
    assert result.error == "timed out after 7 s"


def test_timeout_during_the_packet_scan_keeps_the_header_duration(tmp_path: Path) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    probe = {
        "format": {"format_name": "matroska,webm", "duration": "12.5"},
        "streams": [VIDEO_STREAM],
    }
    result = probe_file(video, runner=_scan_times_out(probe), timeout=7, version="5.1")
    assert result.ok
    assert result.metadata["duration"] == 12.5
    assert any("deadline" in w for w in result.metadata["warnings"])


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
    result = probe_file(video, ffprobe=str(fake), timeout=1.0)
    assert time.monotonic() - started < 3.0
    assert result.error == "timed out after 1 s"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_raises(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    video.chmod(0)
    with pytest.raises(PermissionError):
        probe_file(video, runner=Recorder(), version="5.1")


# --- one ffprobe process per good file ------------------------------------------------

HEADER = {
    "format": {"format_name": "matroska,webm", "duration": "1.040000"},
    "streams": [
        {**VIDEO_STREAM, "nb_read_packets": "2"},
        {"index": 1, "codec_type": "audio", "codec_name": "opus", "time_base": "1/48000",
         "nb_read_packets": "1"},
    ],
    "chapters": [],
}  # fmt: skip
TAIL_PACKETS = [
    {"stream_index": 0, "pts": 1000, "dts": 1000, "duration": 40},
    {"stream_index": 1, "pts": 48000, "duration": 960},  # no dts: "N/A"
    {"stream_index": 0, "pts": 1000, "dts": 1000, "duration": 40, "side_data_list": [{}]},
]


def with_tail(packets: Sequence[Mapping[str, object]]) -> Completed:
    return ok(json.dumps({"packets": list(packets), **HEADER}))


def test_a_good_file_costs_one_ffprobe_process(tmp_path: Path) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    runner = Recorder(with_tail(TAIL_PACKETS))
    result = probe_file(video, runner=runner, version="5.1")
    assert result.ok, result.error
    assert len(runner.calls) == 1
    args = runner.calls[0]
    for flag in ("-print_format", "-show_format", "-show_streams", "-show_chapters"):
        assert flag in args
    assert args[args.index("-show_entries") + 1] == "packet=stream_index,pts,dts,duration"
    assert args[args.index("-read_intervals") + 1] == "99999999%"
    assert args[-1] == f"file:{video}"
    assert result.metadata["duration"] == 1.04  # header and tail agree: no truncation
    # The raw JSON is the header's alone, as a run without the tail prints it.
    assert result.raw is not None and "packets" not in result.raw
    assert all("nb_read_packets" not in s for s in result.raw["streams"])


def test_the_tail_read_with_the_header_is_summarised() -> None:
    output = run_probe("x.mkv", runner=Recorder(with_tail(TAIL_PACKETS)), read_tail=True)
    assert output.tail is not None
    assert output.tail.packets == {0: 2, 1: 1}
    assert output.tail.end == pytest.approx(1.04)  # video: (1000 + 40) / 1000 s
    assert output.tail.full_scan is False
    plain = run_probe("x.mkv", runner=Recorder(ok(json.dumps(HEADER))))
    assert plain.tail is None


def test_a_tail_without_video_packets_reads_the_whole_file_in_a_second_run(
    tmp_path: Path,
) -> None:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    audio_only_tail = [p for p in TAIL_PACKETS if p["stream_index"] == 1]
    runner = Recorder(with_tail(audio_only_tail), ok("0,0,0,40\n0,1000,1000,40\n1,0,0,960\n"))
    result = probe_file(video, runner=runner, version="5.1")
    assert result.ok, result.error
    assert len(runner.calls) == 2
    assert "-read_intervals" not in runner.calls[1] and "-show_format" not in runner.calls[1]


def test_a_failed_seek_reads_the_header_alone_then_every_packet(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes(b"1234")
    # What ffprobe 5.1 prints when it opened the file but could not seek to the tail.
    seek_failed = ok(
        '{"packets": [], "error": {"code": -1, "string": "Operation not permitted"}}',
        "Could not seek to position 99999999000000: Operation not permitted",
        1,
    )
    runner = Recorder(seek_failed, ok(json.dumps(HEADER)), ok("0,0,0,40\n0,1000,1000,40\n"))
    result = probe_file(video, runner=runner, version="5.1")
    assert result.ok, result.error
    assert len(runner.calls) == 3
    header, whole = runner.calls[1], runner.calls[2]
    assert "-show_format" in header and "-read_intervals" not in header
    assert "-show_format" not in whole and "-read_intervals" not in whole
    assert not any("seek" in w for w in result.metadata["warnings"])  # the header run's log


def test_a_file_ffprobe_cannot_open_is_still_one_run(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    answer = ok('{"error": {"code": -1094995529, "string": "Invalid data found"}}', "", 1)
    runner = Recorder(answer)
    result = probe_file(video, runner=runner, version="5.1")
    assert result.error == "not a media file: Invalid data found"
    assert len(runner.calls) == 1


def test_a_slow_tail_still_keeps_the_header_duration(tmp_path: Path) -> None:
    """The run that reads header and tail together may overrun: the header is then read
    alone and the packet scan's timeout keeps the header's duration, as before."""
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    budgets: list[tuple[bool, float]] = []

    def runner(args: Sequence[str], timeout: float) -> Completed:
        tail = "-read_intervals" in args
        budgets.append((tail, timeout))
        if tail:
            raise FFprobeTimeout(timeout)
        return ok(json.dumps(HEADER)) if "-show_format" in args else ok("", "", 1)

    result = probe_file(video, runner=runner, timeout=10, version="5.1")
    assert result.ok, result.error
    assert result.metadata["duration"] == 1.04
    assert any("deadline" in w for w in result.metadata["warnings"])
    first_tail, first_budget = budgets[0]
    assert first_tail and 7 < first_budget <= 8  # most of the budget, not all of it
    assert budgets[1][0] is False  # then the header alone
