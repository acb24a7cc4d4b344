"""Which ffprobe runs a probe costs, and when: the listing (header and every packet), the
head decode guessed beside it (prober/decodes.py), and the runs that follow when the guess
was not the decode the listing asks for.

The runners are fakes (tests/unit/fake_ffprobe.py) answering by the command, so the order
of the two concurrent runs does not matter; a guess that is wrong here always answers
something that would change the verdict if it were used.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from prober.decodes import GUESSED_PACKETS, GUESSED_STREAM
from prober.ffprobe import Completed, FFprobeTimeout
from prober.probe import probe_file
from tests.unit.fake_ffprobe import (
    NOT_OPENED,
    VIDEO_STREAM,
    Recorder,
    compact,
    decoding,
    is_decode,
    ok,
)
from videodrop.errorcodes import ErrorCode

HEADER = {
    "format": {"format_name": "matroska,webm", "duration": "1.040000"},
    "streams": [
        {**VIDEO_STREAM, "avg_frame_rate": "25/1", "nb_read_packets": "26"},
        {"index": 1, "codec_type": "audio", "codec_name": "opus", "time_base": "1/48000",
         "nb_read_packets": "1"},
    ],
    "chapters": [],
}  # fmt: skip
AUDIO_PACKET = {"stream_index": 1, "pts": 0, "duration": 48000}  # no dts: "N/A"


def video_packets(count: int = 26, first_key: int | None = None, index: int = 0
                  ) -> list[dict[str, object]]:
    """``count`` packets of stream ``index``, 40 ms each; the one at ``first_key`` (None:
    none) and every 10th after it flagged as keyframes."""
    return [{"stream_index": index, "pts": i * 40, "dts": i * 40, "duration": 40,
             "flags": "K_" if first_key is not None and i >= first_key
             and (i - first_key) % 10 == 0 else "__"} for i in range(count)]


PACKETS = [*video_packets(), AUDIO_PACKET]  # no keyframe flagged
KEYED = [*video_packets(first_key=0), AUDIO_PACKET]


def with_packets(packets: Sequence[Mapping[str, object]],
                 header: Mapping[str, object] = HEADER) -> Completed:
    return ok(compact({"packets": list(packets), **header}))


def option(args: Sequence[str], name: str) -> str:
    return args[list(args).index(name) + 1]


def clip(tmp_path: Path) -> Path:
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"1234")
    return video


# --- the guess used: two runs at once --------------------------------------------------


def test_a_good_file_costs_a_listing_and_the_guessed_decode(tmp_path: Path) -> None:
    video = clip(tmp_path)
    runner = Recorder(with_packets(KEYED), decodes=[decoding(2, 2)])
    result = probe_file(video, runner=runner, version="5.1")
    assert result.ok, result.error
    assert len(runner.calls) == 2
    [decode] = runner.decode_calls  # the guess, used: the first packet is a keyframe
    assert option(decode, "-select_streams") == GUESSED_STREAM == "V:0"
    assert option(decode, "-read_intervals") == f"%+#{GUESSED_PACKETS}" == "%+#2"
    assert result.stages["head_guess"] == "used"
    assert {"listing_ms", "head_guess_ms", "head_wait_ms"} <= set(result.stages)
    assert "head_ms" not in result.stages
    [args] = runner.other_calls
    for flag in ("-print_format", "-show_format", "-show_streams", "-show_chapters"):
        assert flag in args
    entries = args[args.index("-show_entries") + 1]
    assert entries == "packet=stream_index,pts,dts,duration,size,flags"
    assert "-read_intervals" not in args  # every packet, from the start
    assert args[-1] == f"file:{video}"
    assert result.metadata["duration"] == 1.04  # header and packets agree
    assert (result.metadata["nb_frames"], result.metadata["fps"]) == (26, 25.0)
    # The raw JSON is the header's alone, as a run without packets prints it.
    assert result.raw is not None and "packets" not in result.raw
    assert all("nb_read_packets" not in s for s in result.raw["streams"])


def test_a_guess_that_decodes_nothing_fails_the_file(tmp_path: Path) -> None:
    """The used guess is the verdict's evidence, as the decode after the listing was."""
    runner = Recorder(with_packets(KEYED), decodes=[decoding(2, 0)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.code == ErrorCode.NO_VIDEO_FRAMES
    assert result.error is not None and "none of the first 2 video packets" in result.error
    assert len(runner.decode_calls) == 1


def test_the_guess_runs_beside_the_listing(tmp_path: Path) -> None:
    """The listing answers only once the decode has started (a bounded wait: run one after
    the other, the decode never starts while the listing waits)."""
    started = threading.Event()
    overlapped: list[bool] = []

    def runner(args: Sequence[str], timeout: float, **_: object) -> Completed:
        if is_decode(args):
            started.set()
            return decoding(2, 2)
        overlapped.append(started.wait(10))
        return with_packets(KEYED)

    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    assert overlapped == [True]
    assert result.stages["head_guess"] == "used"


def test_a_stream_of_fewer_packets_than_the_guess_uses_it(tmp_path: Path) -> None:
    """One packet in all: the decode the listing asks for (1 packet) and the guess (2 at
    most) feed the decoder the same packet."""
    header = {**HEADER, "streams": [{**HEADER["streams"][0], "nb_read_packets": "1"},  # type: ignore[index]
                                    HEADER["streams"][1]]}  # type: ignore[index]
    runner = Recorder(with_packets([*video_packets(1, first_key=0), AUDIO_PACKET], header),
                      decodes=[decoding(1, 1)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.stages["head_guess"] == "used"
    assert len(runner.calls) == 2


# --- the guess wrong: the decode the listing asks for follows it ------------------------


def test_no_keyframe_flagged_decodes_the_first_250_packets_after_the_listing(
    tmp_path: Path,
) -> None:
    # the guess says nothing decodes: used, it would fail the file
    runner = Recorder(with_packets(PACKETS), decodes=[decoding(2, 0), decoding(26, 26)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    guess, decode = runner.decode_calls
    assert option(guess, "-select_streams") == "V:0"
    assert option(decode, "-select_streams") == "0"
    assert option(decode, "-read_intervals") == "%+#26"  # every packet, 250 at most
    assert result.stages["head_guess"] == "other packets"
    assert "head_ms" in result.stages


def test_a_later_first_keyframe_decodes_up_to_it_after_the_listing(tmp_path: Path) -> None:
    runner = Recorder(with_packets([*video_packets(first_key=3), AUDIO_PACKET]),
                      decodes=[decoding(2, 0), decoding(5, 3)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    assert option(runner.decode_calls[1], "-read_intervals") == "%+#5"  # key at 3, +2
    assert result.stages["head_guess"] == "other packets"


def test_cover_art_first_decodes_the_main_video_after_the_listing(tmp_path: Path) -> None:
    """A still picture that ffprobe does not flag as cover art is the first video stream
    ("V:0" takes it); the main video is the next one."""
    cover = {"index": 0, "codec_type": "video", "codec_name": "mjpeg", "nb_frames": "1",
             "time_base": "1/90000", "width": 600, "height": 600}
    header = {**HEADER, "streams": [cover, {**HEADER["streams"][0], "index": 1},  # type: ignore[index]
                                    {**HEADER["streams"][1], "index": 2}]}  # type: ignore[index]
    packets = [{"stream_index": 0, "pts": 0, "duration": 1, "flags": "K_"},
               *video_packets(first_key=0, index=1),
               {**AUDIO_PACKET, "stream_index": 2}]
    runner = Recorder(with_packets(packets, header),
                      decodes=[decoding(1, 0, index=0), decoding(2, 2, index=1)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    assert result.metadata["width"] == 2  # the video, not the picture
    assert option(runner.decode_calls[1], "-select_streams") == "1"
    assert option(runner.decode_calls[1], "-read_intervals") == "%+#2"
    assert result.stages["head_guess"] == "another stream"


def test_a_guess_that_failed_is_run_again_after_the_listing(tmp_path: Path) -> None:
    runner = Recorder(with_packets(KEYED), decodes=[NOT_OPENED, decoding(2, 2)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    assert [option(c, "-select_streams") for c in runner.decode_calls] == ["V:0", "0"]
    assert result.stages["head_guess"] == "failed (FFprobeFailed)"


def test_a_guess_that_decoded_no_stream_is_not_used(tmp_path: Path) -> None:
    """"V:0" matched nothing (every video stream flagged cover art, say): no index."""
    runner = Recorder(with_packets(KEYED),
                      decodes=[ok('{"streams": []}'), decoding(2, 2)])
    result = probe_file(clip(tmp_path), runner=runner, version="5.1")
    assert result.ok, result.error
    assert len(runner.decode_calls) == 2
    assert result.stages["head_guess"] == "another stream"


# --- the guess never outlives its probe -------------------------------------------------


def test_a_hanging_guess_holds_the_probe_until_its_deadline_not_after(tmp_path: Path) -> None:
    """The listing fails at once; the guess hangs until its deadline (a real child is
    killed there): the probe returns after the guess ended, never before."""
    events: list[str] = []
    budgets: list[float] = []

    def runner(args: Sequence[str], timeout: float, **_: object) -> Completed:
        if not is_decode(args):
            return NOT_OPENED
        budgets.append(timeout)
        threading.Event().wait(timeout)  # (nothing sets it: a child that hangs)
        events.append("guess ended")
        raise FFprobeTimeout(timeout)

    result = probe_file(clip(tmp_path), runner=runner, timeout=0.5, version="5.1")
    events.append("probe returned")
    assert result.code == ErrorCode.NOT_MEDIA  # the listing's verdict
    assert events == ["guess ended", "probe returned"]
    assert len(budgets) == 1 and 0 < budgets[0] <= 0.5  # the probe's own deadline


# --- the other runs -----------------------------------------------------------------------


def test_a_slow_full_read_falls_back_to_the_header_and_the_tail(tmp_path: Path) -> None:
    """The full read may overrun (a huge file on a slow disk): it gets most of the budget,
    not all; then the header and the packets after the last keyframe are read."""
    budgets: list[tuple[bool, float]] = []

    def runner(args: Sequence[str], timeout: float, **_: object) -> Completed:
        if is_decode(args):
            return decoding(2, 2)
        tail = "-read_intervals" in args
        budgets.append((tail, timeout))
        if not tail:
            raise FFprobeTimeout(timeout)
        return with_packets(PACKETS[-2:])

    result = probe_file(clip(tmp_path), runner=runner, timeout=10, version="5.1")
    assert result.ok, result.error
    assert result.metadata["duration"] == 1.04
    assert result.metadata["nb_frames"] is None  # not counted: the header has none
    full, first_budget = budgets[0]
    assert not full and 7 < first_budget <= 8  # most of the budget, not all of it
    assert budgets[1][0] is True


def test_a_file_ffprobe_cannot_open_is_one_listing_and_the_guess(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"1234")
    runner = Recorder(NOT_OPENED)
    result = probe_file(video, runner=runner, version="5.1")
    assert (result.error, result.code) == ("not a media file: Invalid data found",
                                           ErrorCode.NOT_MEDIA)
    assert len(runner.other_calls) == 1 and len(runner.decode_calls) == 1


def test_a_refused_format_is_named_by_a_second_run(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"#EXTM3U\n")
    refused = ok('{"error": {"code": -22, "string": "Invalid argument"}}',
                 "[hls @ 0x5] Format not on whitelist 'avi,...'\n", 1)
    named = ok("", "[hls @ 0x5] Format hls probed with size=2048 and score=100\n"
                   "[hls @ 0x5] Format not on whitelist 'avi,...'\n", 1)
    runner = Recorder(refused, named)
    result = probe_file(video, runner=runner, version="5.1")
    assert result.code == ErrorCode.UNSUPPORTED_CONTAINER
    assert result.error is not None and "HLS playlist" in result.error
    second = runner.other_calls[1]
    assert second[second.index("-v") + 1] == "debug"
    assert "-format_whitelist" in second  # still refused before it opens anything
