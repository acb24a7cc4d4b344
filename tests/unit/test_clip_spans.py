"""Which frames a clip holds, on a timeline built from ffprobe's packet lines: ``exact``
the frames whose time is in [start, end), ``copy`` whole GOPs around them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from api.frames.cut import NoFrames, NoKeyframe, copy_span, exact_span
from api.frames.index import Loaded
from api.frames.stitch import Pieces, pieces
from api.frames.timeline import PastTheEnd, Timeline, parse_packets
from videodrop.packets import KEY, PacketIndex, to_npy

# 10 frames at 25 fps (1/100 s ticks), keyframes at 0, 0.16 and 0.32 (decoded 0.04 earlier)
LINES = "stream,1/100\nformat,0\n" + "".join(
    f"packet,{4 * n},{4 * n - 4},4,{'K' if n in (0, 4, 8) else '_'}_\n" for n in range(10))


def line() -> Timeline:
    return parse_packets(LINES, complete=True)


def test_exact_takes_the_frames_whose_time_is_in_the_span():
    span = exact_span(line(), 0.05, 0.20)
    assert (span.first, span.count) == (2, 3)  # 0.08, 0.12, 0.16: 0.20 is excluded
    assert (span.start, span.end) == (pytest.approx(0.08), pytest.approx(0.20))
    last = exact_span(line(), 0.3, 5)
    assert (last.first, last.count, last.end) == (8, 2, pytest.approx(0.40))
    with pytest.raises(NoFrames):
        exact_span(line(), 0.081, 0.119)  # between two frames
    with pytest.raises(PastTheEnd):
        exact_span(line(), 0.40, 1)


def test_copy_takes_whole_gops_and_knows_where_to_stop_reading():
    span = copy_span(line(), 0.2, 0.3)
    assert (span.first, span.count) == (4, 4)  # the GOP of 0.16, up to the keyframe 0.32
    assert (span.start, span.end) == (pytest.approx(0.16), pytest.approx(0.32))
    assert span.cut == pytest.approx(0.28)  # the ending keyframe's decoding time
    on_keys = copy_span(line(), 0.16, 0.32)
    assert (on_keys.first, on_keys.count) == (4, 4)
    to_end = copy_span(line(), 0.3, 0.35)
    assert (to_end.first, to_end.count, to_end.end, to_end.cut) == (
        4, 6, pytest.approx(0.40), None)


# 30 fps in 1/15360 (512 ticks a frame), keyframes every 4 frames: frame 4 is at
# 0.1333333… s (written 0.133333, below it), frame 8 at 0.2666666… (written 0.266667, above)
THIRTY = "stream,1/15360\nformat,0\n" + "".join(
    f"packet,{512 * n},{512 * n},512,{'K' if n % 4 == 0 else '_'}_\n" for n in range(30))


def test_bounds_at_a_frames_time_with_6_decimals_are_that_frames_time():
    line = parse_packets(THIRTY, complete=True)
    written = [float(f"{t:.6f}") for t in line.times]
    assert (written[4], written[8]) == (0.133333, 0.266667)
    for k in (4, 8, 13):  # rounded down, up, and up (0.433333… → 0.433333: down)
        for j in (k + 1, k + 5):
            span = exact_span(line, written[k], written[j])
            assert (span.first, span.count) == (k, j - k), (k, j)
    # copy: a keyframe's written time as start starts there, as end ends there
    for k in (4, 8):
        span = copy_span(line, written[k], written[k + 4])
        assert (span.first, span.count) == (k, 4), k
    assert copy_span(line, 0.14, written[8]).count == 4  # not the GOP of frame 8 too


def test_a_range_bounded_at_frames_times_with_6_decimals():
    """/range/ on the same stream as a stored index (packet n at byte 1000 n):
    ``start`` at frame 8's written time (above it) is frame 8, in the GOP of frame 8;
    ``end`` at frame 13's (0.433333, below it) leaves frame 13 out, at frame 10's
    (0.333333, below it) leaves 10 out."""
    index = PacketIndex(Fraction(1, 15360), Fraction(0), [512 * n for n in range(30)],
                        [512 * n for n in range(30)], [512] * 30, [1000 * n for n in range(30)],
                        [100] * 30, [KEY if n % 4 == 0 else 0 for n in range(30)])
    loaded = Loaded(index, to_npy(index), 30_000)
    written = [float(f"{t:.6f}") for t in parse_packets(THIRTY, complete=True).times]
    span = loaded.span(written[8], written[13])
    assert (span.chosen.index, span.key, span.last) == (8, 8, 12)
    assert (span.first_byte, span.last_byte) == (8000, 12999)  # to the next packet's offset
    span = loaded.span(written[4], written[10])
    assert (span.chosen.index, span.key, span.last) == (4, 4, 9)


def test_copy_without_a_keyframe_to_cut_at():
    partial = parse_packets(LINES, complete=False)  # read only part of the stream
    with pytest.raises(NoKeyframe):
        copy_span(partial, 0.33, 0.35)  # no keyframe after 0.35 among what was read
    late_key = parse_packets("stream,1/100\nformat,0\npacket,0,0,4,__\npacket,4,4,4,__\n"
                             "packet,8,8,4,K_\n", complete=True)
    with pytest.raises(NoKeyframe):
        copy_span(late_key, 0.0, 0.05)  # the only keyframe is after the end
    assert copy_span(late_key, 0.0, 0.1).first == 2  # from the first keyframe


def packets(*rows: tuple[int, int, str]) -> Timeline:
    """A timeline of packets (pts, dts, flags) in decoding order, 1/100 s ticks."""
    return parse_packets("stream,1/100\nformat,0\n" + "".join(
        f"packet,{p},{d},4,{f}_\n" for p, d, f in rows), complete=True)


def test_clean_cuts_are_keyframes_no_frame_crosses():
    # closed GOPs with a B-frame: I0 P8 B4 | I12 P20 B16: every keyframe is a clean cut
    closed = packets((0, -4, "K"), (8, 0, "_"), (4, 4, "_"), (12, 8, "K"), (20, 12, "_"),
                     (16, 16, "_"))
    assert closed.clean == [True, True]
    # an open GOP: the keyframe at 12 is decoded before the B-frame shown at 8
    leading = packets((0, -4, "K"), (4, 0, "_"), (12, 4, "K"), (8, 8, "_"), (16, 12, "_"))
    assert leading.clean == [True, False]
    # a frame of the GOP before shown after the keyframe
    late = packets((0, -4, "K"), (16, 0, "_"), (12, 4, "K"), (20, 8, "_"))
    assert late.clean == [True, False]


def test_pieces_cut_at_the_first_and_last_clean_keyframes_in_the_span():
    span = exact_span(line(), 0.05, 0.38)  # frames 0.08 … 0.36; keyframes 0.16, 0.32
    cut = pieces(line(), span)
    assert isinstance(cut, Pieces)
    assert cut.head is not None and (cut.head.first, cut.head.count) == (2, 2)
    assert (cut.middle.first, cut.middle.count) == (4, 4)
    assert cut.middle.cut == pytest.approx(0.28)  # stop reading before K2's packet
    assert cut.tail is not None and (cut.tail.first, cut.tail.count) == (8, 2)
    assert cut.leads == (pytest.approx(0.04), pytest.approx(0.04))
    exact_keys = pieces(line(), exact_span(line(), 0.16, 0.32))
    assert isinstance(exact_keys, Pieces)
    assert exact_keys.head is None and exact_keys.tail is None
    assert isinstance(pieces(line(), exact_span(line(), 0.05, 0.27)), str)  # one key inside
    unknown = Timeline(line().times, line().end, line().keys, 0.04, line().key_decoded)
    assert isinstance(pieces(unknown, span), str)  # cleanness not known: not stitched


def test_the_reason_not_to_stitch_is_true():
    """A span shorter than a GOP of closed GOPs says so, not "open GOP"; a span over
    keyframes with leading frames says open GOP."""
    short = pieces(line(), exact_span(line(), 0.05, 0.11))  # frame 0.08 only: no keyframe
    assert isinstance(short, str) and "no keyframe" in short and "open" not in short
    one = pieces(line(), exact_span(line(), 0.1, 0.25))  # the keyframe at 0.16 only
    assert isinstance(one, str) and "(1 keyframe " in one and "open" not in one
    # open GOPs: each keyframe (12, 24) decoded before a B-frame shown before it
    leading = packets((0, -4, "K"), (4, 0, "_"), (12, 4, "K"), (8, 8, "_"), (16, 12, "_"),
                      (24, 16, "K"), (20, 20, "_"), (28, 24, "_"))
    open_gop = pieces(leading, exact_span(leading, 0.04, 0.3))
    assert isinstance(open_gop, str) and "open GOP" in open_gop and "2 keyframes" in open_gop
