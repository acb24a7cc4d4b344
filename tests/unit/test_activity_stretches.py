"""Stretches of activity (videodrop/activity.py) from the scenes' packed levels: a second
at or over the threshold is active, close ones join, the last is cut at the duration."""

from __future__ import annotations

import pytest

from videodrop.activity import JOIN, Stretch, stretches
from videodrop.derivatives import pack_activity


def test_seconds_at_or_over_the_threshold_make_stretches() -> None:
    levels = [0.0] * 20 + [9.0, 25.0, 4.0] + [0.0] * 30 + [1.0] + [0.0] * 10
    assert stretches(pack_activity(levels), 4.0) == [Stretch(20.0, 23.0, 25.0)]
    # a lower threshold takes the lone second too (far from the rest: its own stretch)
    assert stretches(pack_activity(levels), 1.0) == [Stretch(20.0, 23.0, 25.0),
                                                     Stretch(53.0, 54.0, 1.0)]
    assert stretches(pack_activity(levels), 30.0) == []
    assert stretches(pack_activity([]), 1.0) == []


def test_close_seconds_are_one_stretch() -> None:
    pause = int(JOIN) - 1  # quiet seconds between two active ones: under JOIN apart
    levels = [4.0] + [0.0] * pause + [4.0] + [0.0] * (int(JOIN) + 1) + [4.0]
    found = stretches(pack_activity(levels), 2.0)
    assert found == [Stretch(0.0, pause + 2.0, 4.0),
                     Stretch(float(len(levels) - 1), float(len(levels)), 4.0)]


def test_the_duration_cuts_the_last_second() -> None:
    found = stretches(pack_activity([0.0, 4.0, 4.0]), 1.0, duration=2.4)
    assert found == [Stretch(1.0, 2.4, 4.0)]
    assert found[0].seconds == 1.4
    assert found[0].as_json() == {"offset": 1.0, "seconds": 1.4, "peak": 4.0}


@pytest.mark.parametrize("packed", ["not base64!", "QQ"])
def test_activity_that_does_not_decode_has_no_stretches(packed: str) -> None:
    assert stretches(packed, 1.0) == []
