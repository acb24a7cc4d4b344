"""Which frames a clip holds, on a timeline built from ffprobe's packet lines: ``exact``
the frames whose time is in [start, end), ``copy`` whole GOPs around them."""

from __future__ import annotations

import pytest

from api.frames.cut import NoFrames, NoKeyframe, copy_span, exact_span
from api.frames.timeline import PastTheEnd, Timeline, parse_packets

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


def test_copy_without_a_keyframe_to_cut_at():
    partial = parse_packets(LINES, complete=False)  # read only part of the stream
    with pytest.raises(NoKeyframe):
        copy_span(partial, 0.33, 0.35)  # no keyframe after 0.35 among what was read
    late_key = parse_packets("stream,1/100\nformat,0\npacket,0,0,4,__\npacket,4,4,4,__\n"
                             "packet,8,8,4,K_\n", complete=True)
    with pytest.raises(NoKeyframe):
        copy_span(late_key, 0.0, 0.05)  # the only keyframe is after the end
    assert copy_span(late_key, 0.0, 0.1).first == 2  # from the first keyframe
