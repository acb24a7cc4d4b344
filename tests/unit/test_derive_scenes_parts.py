"""The scenes kind's parts that need no service: the boundary finder (derive/shots.py) on
frames made here, the activity and its packing, the JSON and the WebVTT chapters, and
the corpus scorer (testbed/cuts.py)."""

from __future__ import annotations

import random

import pytest

from api.derivatives.scenes import scenes_view, scenes_vtt
from derive import scenes, shots
from testbed import cuts
from videodrop.derivatives import pack_activity, unpack_activity

SIZE = 160 * 90 * 3


def texture(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


def blend(a: bytes, b: bytes, share: float) -> bytes:
    return bytes(round(x * (1 - share) + y * share) for x, y in zip(a, b, strict=True))


def run(frames: list[bytes], lag: int = 8) -> tuple[shots.Shots, list[int], dict[int, bytes]]:
    kept: dict[int, bytes] = {}
    found = shots.Shots(lag, kept.__setitem__)
    for frame in frames:
        found.add(frame)
    return found, found.finish(), kept


def test_a_hard_cut_is_found_at_its_frame_with_a_thumbnail_from_each_scene():
    a, b = texture(1), texture(2)
    found, starts, kept = run([a] * 30 + [b] * 30)
    assert starts == [0, 30] and found.cuts == [30]
    assert kept[0] == a and kept[30] == b


def test_a_dissolve_is_found_in_its_middle_and_is_gradual():
    a, b = texture(3), texture(4)
    frames = [a] * 40 + [blend(a, b, (k + 1) / 11) for k in range(10)] + [b] * 40
    found, starts, _ = run(frames)
    assert found.cuts == [] and len(found.graduals) == 1
    # frame 45 is the first at least half b: the dissolve's boundary, ±1 frame
    assert abs(found.graduals[0] - 45) <= 1 and starts == [0, found.graduals[0]]


def test_motion_that_goes_on_is_no_cut():
    """Every frame differs from the one before as much as a cut would: no jump."""
    frames = [texture(k) for k in range(40)]
    found, starts, _ = run(frames)
    assert starts == [0] and found.cuts == []


def test_activity_per_second_leaves_out_the_first_frame_of_a_scene():
    d1 = [0.0, 2.0, 2.0, 90.0, 4.0, 4.0]
    assert shots.activity(d1, 3.0, [0, 3]) == [2.0, 4.0]
    assert shots.activity(d1, 3.0, []) == [pytest.approx(4 / 3), pytest.approx(98 / 3)]
    assert shots.activity([], 25.0, []) == []


def test_activity_packs_one_byte_a_second_on_a_square_root_scale():
    levels = [0.0, 0.01, 0.3, 1.0, 30.0, 254.0, 300.0]
    packed = pack_activity(levels)
    assert len(packed) == 12  # base64 of 7 bytes
    back = unpack_activity(packed)
    assert back[0] == 0.0 and back[-1] == back[-2] == pytest.approx(254, abs=0.1)
    for level, got in zip(levels[1:5], back[1:5], strict=True):
        assert got == pytest.approx(level, rel=0.15, abs=0.01)


def data() -> dict[str, object]:
    return {"rate": 25.0, "frames": 250, "duration": 10.0, "starts": [0, 100, 180],
            "transitions": ["cut", "gradual"], "width": 160, "height": 90, "columns": 10,
            "rows": 1, "sheets": ["derivatives/x/scenes-00.jpg"],
            "activity": pack_activity([1.0] * 10), "activity_scale": 16}


def test_scenes_json_and_webvtt_chapters():
    view = scenes_view(data(), "http://h", "TOKEN")
    assert view["count"] == 3 and view["activity"] == [1.0] * 10
    first, second, last = view["scenes"]
    assert (first["start"], first["end"], first["start_frame"], first["end_frame"]) == (
        0.0, 4.0, 0, 100)
    assert first["transition"] is None and second["transition"] == "cut"
    assert last["transition"] == "gradual" and (last["end"], last["end_frame"]) == (10.0, 250)
    assert last["thumbnail"] == {"url": "http://h/api/video/TOKEN/scenes/0.jpg", "x": 320,
                                 "y": 0, "w": 160, "h": 90}
    assert view["vtt_url"] == "http://h/api/video/TOKEN/scenes.vtt"
    assert scenes_vtt(view).splitlines()[:6] == [
        "WEBVTT", "", "00:00:00.000 --> 00:00:04.000", "Scene 1", "",
        "00:00:04.000 --> 00:00:07.200"]


def test_the_last_scene_and_chapter_end_with_the_video():
    """Sound 0.3 s past the picture (the record's duration 10.3 s): the last scene and
    its chapter end at 10.3 s, its end frame stays the last analysed one."""
    view = scenes_view({**data(), "duration": 10.3}, "http://h", "TOKEN")
    last = view["scenes"][-1]
    assert (last["end"], last["end_frame"]) == (10.3, 250)
    assert scenes_vtt(view).splitlines()[-2:] == ["00:00:07.200 --> 00:00:10.300", "Scene 3"]


def test_the_corpus_scorer_matches_within_the_tolerance_once():
    truth = [cuts.Transition(40, 40), cuts.Transition(70, 80)]
    assert [t.boundary for t in truth] == [40, 75]
    assert cuts.score(truth, [0, 41, 74]).recall == 1.0
    assert cuts.score(truth, [0, 41, 76]).recall == 1.0
    missed = cuts.score(truth, [0, 42, 40, 73, 77, 60])  # a dissolve: its middle, ±1
    assert missed.matched == 1 and missed.missed == (truth[1],)
    assert missed.extra == (42, 60, 73, 77) and missed.precision == pytest.approx(1 / 5)
    clip = cuts.Clip("c", "64x36", 25, (40, 30, 45), (0, 10))
    assert clip.transitions() == [cuts.Transition(40, 40), cuts.Transition(60, 70)]
    assert clip.frames == 105


def test_a_flash_that_returns_is_no_cut():
    a, flash = texture(5), bytes([250]) * SIZE
    found, starts, _ = run([a] * 30 + [flash] + [a] * 30)
    assert starts == [0] and found.cuts == []


def test_repeated_frames_of_a_low_frame_rate_hide_neither_motion_nor_cuts():
    """15 frames/s analysed at 30: each frame twice. Motion going on is no cut; a cut
    still is one."""
    moving = [texture(100 + k) for k in range(20) for _ in range(2)]
    found, starts, _ = run(moving)
    assert starts == [0], found.cuts
    a, b = texture(7), texture(8)
    wobble = [bytes(min(255, x + (k % 2)) for x in a) for k in range(10)]
    frames = [f for f in wobble for _ in range(2)] + [b] * 20
    _, starts, _ = run(frames)
    assert starts == [0, 20]


@pytest.mark.parametrize("lead", [1, 3])
def test_a_black_first_frame_starts_no_scene_of_its_own(lead: int):
    """A frame or three of black before the picture (sandwich-av-mp4a.40.5.mov): no scene
    that short at the start, and no gradual transition made of the cut's own bump (it was
    reported half a lag in, where nothing happens)."""
    picture = texture(5)
    found, starts, kept = run([bytes(SIZE)] * lead + [picture] * 40)
    assert starts == [0] and found.cuts == [] and found.graduals == []
    assert kept[0] == picture


def test_a_black_last_frame_starts_no_scene_of_its_own():
    picture = texture(6)
    found, starts, _ = run([picture] * 40 + [bytes(SIZE)])
    assert starts == [0] and found.cuts == [] and found.graduals == []


def test_a_cut_soon_after_the_start_still_counts_when_the_scene_is_long_enough():
    a, b = texture(7), texture(8)
    found, starts, _ = run([a] * 6 + [b] * 40)  # lag 8: a scene of 6 frames is kept
    assert starts == [0, 6] and found.cuts == [6]


@pytest.mark.parametrize("step", [1, 3, 8])
def test_a_brightness_ramp_moves_the_histograms_by_its_step_not_a_whole_bin(step: int):
    """Flat colour a few levels under a bin's edge, brightened by ``step`` levels: every
    pixel crosses the edge in the same frame, yet the histograms move by at most
    ``step / HIST_WIDTH`` (hard bins moved them all: a false cut mid-fade over flat
    colour bars, issue 18)."""
    for edge in (16, 128, 240):
        before = bytes([edge - 1 - step // 2]) * SIZE
        after = bytes([edge - 1 - step // 2 + step]) * SIZE
        moved = shots._moved(shots._histogram(before), shots._histogram(after))
        assert moved <= step / shots.HIST_WIDTH + 1e-9, (edge, moved)
    assert shots._moved(shots._histogram(texture(1)), shots._histogram(texture(2))) < 0.05
    assert shots._moved(shots._histogram(bytes(SIZE)), shots._histogram(bytes([255]) * SIZE)
                        ) == pytest.approx(1.0)


@pytest.mark.parametrize("length", [6, 10, 16])
def test_a_fade_to_black_at_the_very_end_is_no_transition(length: int):
    """The rise of ``dk`` with no fall seen (the video ends within the lag) is no gradual
    transition: the last scene would be the fade's own second half."""
    picture = texture(9)
    fade = [blend(picture, bytes(SIZE), (k + 1) / length) for k in range(length)]
    found, starts, _ = run([picture] * 40 + fade)
    assert starts == [0] and found.graduals == [], found.graduals


def test_activity_has_one_value_per_started_second_when_told_the_duration():
    d1 = [0.0, 2.0, 2.0, 90.0, 4.0, 4.0, 6.0]  # 3 frames/s: seconds 0, 1 and a frame of 2
    assert shots.activity(d1, 3.0, [0, 3], seconds=2) == [2.0, 4.0]
    assert shots.activity(d1, 3.0, [0, 3], seconds=4) == [2.0, 4.0, 6.0, 0.0]


def test_the_scenes_span_the_videos_duration():
    """(frames, seconds): the frames of the pass that start before the probe's duration,
    and that duration; without it, the frames' own."""
    assert scenes.span(63, 7.22, 8.725503) == (63, 8.725503)  # cursed-vfr.mp4
    assert scenes.span(47, 24.0, 2.005333) == (47, 2.005333)  # the picture stops short
    assert scenes.span(7, 12.0, 0.5) == (6, 0.5)  # a frame past the end: left out
    assert scenes.span(250, 25.0, 10.0) == (250, 10.0)
    assert scenes.span(48, 24.0, None) == (48, 2.0)
    assert scenes.span(5, 25.0, 0.001) == (1, 0.001)


@pytest.mark.parametrize("fade_in", [10, 20, 30])
def test_the_thumbnail_after_a_fade_through_black_is_the_shot_faded_in(fade_in: int):
    """a fades out to black, b fades in over ``fade_in`` frames (up to almost 4 lags):
    b's scene keeps a frame at least 85 % as bright as b, not the black middle of the
    transition nor a frame of the fade in."""
    a, b = texture(5), texture(6)
    black = bytes(SIZE)
    frames = ([a] * 40 + [blend(a, black, (k + 1) / 10) for k in range(10)] + [black] * 4
              + [blend(black, b, (k + 1) / fade_in) for k in range(fade_in)] + [b] * 40)
    _, starts, kept = run(frames)
    last = kept[starts[-1]]
    assert sum(last) >= 0.85 * sum(b), (starts, sum(last) / sum(b))


def test_a_dark_shot_still_has_a_thumbnail():
    """A shot too dark to be settled keeps its brightest frame, once."""
    dim = bytes(v // 10 for v in texture(7))
    _, starts, kept = run([dim] * 60)
    assert starts == [0] and kept == {0: dim}
