"""The pure parts of the frame endpoints: the timeline's rule on ffprobe's packet lines,
the .npy writer against numpy's reader, the tar members against tarfile."""

from __future__ import annotations

import io
import tarfile
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.frames.errors import FrameError, parse_time
from api.frames.extract import FrameFailed, Frames
from api.frames.packing import TAR_END, npy_header, tar_member
from api.frames.timeline import MARGIN, NoTimestamps, PastTheEnd, parse_packets
from videodrop.children import ChildRunner

# 25 fps in 1/12800 (512 a frame), B-frames (decode order), an edit list's cut-off packet,
# a start time of 1.5 s, side data after a line
LINES = """stream,1/12800,side_data,
format,1.500000
packet,18688,18688,512,KD
packet,19200,18688,512,K_,side_data,
packet,20736,19200,512,__
packet,19712,19712,512,__
packet,20224,20224,512,__
packet,21248,20736,512,K_
packet,21760,21248,512,__
program,stream,1/12800
"""


def test_the_frame_shown_at_t_is_the_last_one_at_or_before_it():
    line = parse_packets(LINES, complete=True)
    # 19200/12800 = 1.5 s: the first frame shown is at 0
    assert line.times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16, 0.2])
    assert line.keys == pytest.approx([0.0, 0.16])
    assert line.end == pytest.approx(0.24)
    assert line.at(0.0).index == 0
    assert line.at(0.0399).index == 0
    assert line.at(0.04).index == 1
    assert line.at(0.2399).index == 5
    chosen = line.at(0.13)
    assert (chosen.index, chosen.time) == (3, pytest.approx(0.12))
    assert chosen.seek == pytest.approx(0.10)
    assert chosen.start == 0.0  # its keyframe is the first
    late = line.at(0.17)
    assert late.start == pytest.approx(0.16 + MARGIN)  # just after its keyframe
    with pytest.raises(PastTheEnd):
        line.at(0.24)
    # the sentence names t as asked, not rounded to a time before the end
    with pytest.raises(PastTheEnd, match=r"t=0\.2400001 s is past the last frame"):
        line.at(0.2400001)


def test_decoding_starts_early_when_the_next_keyframe_is_decoded_before_it():
    # keyframes at 0.04 and 0.08, the second decoded at 0.01: a demuxer seeking by
    # decoding times to just after 0.04 would land on it
    line = parse_packets("stream,1/100\nformat,0\npacket,2,0,2,__\npacket,4,1,4,K_\n"
                         "packet,8,1,4,K_\npacket,6,3,2,__\n", complete=True)
    assert line.at(0.05).start == 0.0  # 0.04 - 0.07 (the reordering) - the margin, floored
    line = parse_packets("stream,1/100\nformat,0\npacket,2,0,2,__\npacket,4,2,4,K_\n"
                         "packet,16,12,4,K_\npacket,8,4,4,__\n", complete=True)
    assert line.at(0.09).start == pytest.approx(0.04 + MARGIN)


def test_a_frames_own_time_with_6_decimals_names_that_frame():
    """30 fps in 1/15360 (512 ticks a frame): frame 1 is at 0.0333333… s, written
    0.033333 (below it), frame 2 at 0.0666666…, written 0.066667 (above it). Fed back as
    written, each names its own frame, not the one before (nor the one after); a
    microsecond less is the frame before when the time was rounded down."""
    line = parse_packets("stream,1/15360\nformat,0\n" + "".join(
        f"packet,{512 * n},{512 * n},512,{'K' if n % 30 == 0 else '_'}_\n" for n in range(90)),
        complete=True)
    assert f"{line.times[1]:.6f}" == "0.033333" and f"{line.times[2]:.6f}" == "0.066667"
    for k, seconds in enumerate(line.times):
        assert line.at(float(f"{seconds:.6f}")).index == k, (k, seconds)
    assert line.at(0.033332).index == 0
    assert line.at(0.066666).index == 1  # the frame 2's rounding goes up: 0.066666 is before it
    # the last frame's end (3 s) is not moved: just before it is still the last frame
    assert line.at(2.999999).index == 89


def test_before_the_first_frame_it_is_the_first():
    line = parse_packets("stream,1/1000\nformat,0.0\npacket,300,300,40,K_\n"
                         "packet,340,340,40,__\n", complete=True)
    assert line.at(0.1).index == 0 and line.at(0.1).time == pytest.approx(0.3)


def test_packets_without_timestamps_cannot_be_placed():
    with pytest.raises(NoTimestamps):
        parse_packets("stream,1/1200000\npacket,N/A,N/A,N/A,K_\n", complete=True)


def test_an_incomplete_listing_does_not_claim_the_end():
    line = parse_packets(LINES, complete=False)
    assert line.end is None
    with pytest.raises(ValueError):
        line.at(0.3)  # beyond what was read: not known


def test_the_last_frame_without_a_duration_lasts_the_mean_spacing():
    line = parse_packets("stream,1/1000\npacket,0,0,N/A,K_\npacket,100,100,N/A,__\n"
                         "packet,200,200,N/A,__\n", complete=True)
    assert line.end == pytest.approx(0.3)


@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9))
def test_npy_is_what_numpy_reads(n, h, w):
    frames = [bytes((i * 7 + k) % 256 for k in range(h * w * 3)) for i in range(n)]
    data = npy_header((n, h, w, 3)) + b"".join(frames)
    assert (data.index(b"\n") + 1) % 64 == 0  # the header's padding
    array = np.load(io.BytesIO(data))
    assert array.dtype == np.uint8 and array.shape == (n, h, w, 3)
    assert array.tobytes() == b"".join(frames)


def test_tar_members_are_what_tarfile_reads():
    data = tar_member("000000.jpg", b"\xff\xd8jpeg") + tar_member("000000.json", b"{}") + TAR_END
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["000000.jpg", "000000.json"]
        assert tar.extractfile("000000.jpg").read() == b"\xff\xd8jpeg"  # type: ignore[union-attr]


def test_a_request_past_its_deadline_starts_no_child(tmp_path):
    frames = Frames(tmp_path / "none.mp4", ffmpeg="ffmpeg", ffprobe="ffprobe",
                    runner=ChildRunner(prlimit="/bin/false"), deadline=time.monotonic() - 1)
    with pytest.raises(FrameFailed) as failed:
        frames.timeline(1.0)
    assert failed.value.reason == "timeout"


@given(st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_a_float_as_python_prints_it_is_a_time(t):
    """``requests``/``str()`` send a float's repr (``0.30000000000000004``, up to 17
    significant digits): taken as it is, the same float."""
    text = repr(t)
    if "e" in text:  # exponents stay a 400 (docs/models.md)
        return
    assert parse_time(text) == t


@pytest.mark.parametrize("raw", ["1.6666666666666667", "0.30000000000000004",
                                 "0.00012345678901234567"])
def test_long_decimals_are_times(raw):
    assert parse_time(raw) == float(raw)


@pytest.mark.parametrize("raw", ["-1", "1e-05", "nan", "inf", "1.", ".5", "1." + "1" * 25,
                                 "1234567890"])
def test_what_is_no_plain_decimal_stays_a_400(raw):
    with pytest.raises(FrameError):
        parse_time(raw)
