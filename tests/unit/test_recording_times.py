"""File name patterns, time zones and the origins file (videodrop/recording.py,
videodrop/origins.py); gaps and overlaps (videodrop/timeline.py). Expected moments are
written out by hand from each name, not computed by the code under test."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from videodrop.errors import ConfigurationError
from videodrop.origins import OriginRule, OriginRules
from videodrop.recording import recording_of, start_from_name
from videodrop.timeline import Span, gaps_and_overlaps

UTCZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("path", "expected", "pattern"), [
    ("cam1/2026-11-30/001/dav/10/10.05.07-10.10.07[M][0@0][0].dav",
     datetime(2026, 11, 30, 10, 5, 7, tzinfo=UTC), "dahua"),
    ("cam1/20261130/23.59.58-00.04.58[R][0@0][0].dav",
     datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC), "dahua"),
    ("RecM01_20261130_101500_102000_6E24C10_1B2F4A3.mp4",
     datetime(2026, 11, 30, 10, 15, 0, tzinfo=UTC), "reolink"),
    ("ch01_20261130101501.mp4", datetime(2026, 11, 30, 10, 15, 1, tzinfo=UTC), "channel"),
    ("CH12_20261130101501.mp4", datetime(2026, 11, 30, 10, 15, 1, tzinfo=UTC), "channel"),
    ("20261130101502_20261130102002.mp4", datetime(2026, 11, 30, 10, 15, 2, tzinfo=UTC),
     "stamp"),
    ("192.168.1.64_01_20261130101502250.mp4",
     datetime(2026, 11, 30, 10, 15, 2, 250000, tzinfo=UTC), "stamp"),
    ("front_2026-11-30_10-15-03.mkv", datetime(2026, 11, 30, 10, 15, 3, tzinfo=UTC), "iso"),
    ("2026-11-30T10:15:03.5.mp4", datetime(2026, 11, 30, 10, 15, 3, 500000, tzinfo=UTC),
     "iso"),
    ("clip_1796040904.mp4", datetime(2026, 11, 30, 12, 15, 4, tzinfo=UTC), "epoch"),
    ("clip_1796040904123.ts", datetime(2026, 11, 30, 12, 15, 4, 123000, tzinfo=UTC),
     "epoch"),
])
def test_built_in_patterns(path: str, expected: datetime, pattern: str):
    assert start_from_name(path, UTCZ) == (expected, pattern)


@pytest.mark.parametrize("path", [
    "holiday.mp4", "10.05.07-10.10.07.dav",  # Dahua without a dated folder
    "ch01_20261330101501.mp4",  # month 13
    "cam_123456789.mp4",  # 9 digits: no epoch
    "20261130_1015.mp4",
])
def test_names_without_a_moment(path: str):
    assert start_from_name(path, UTCZ) is None


def test_name_stamps_are_wall_time_of_the_zone():
    # 10:15 in Berlin is 09:15 UTC in winter, 08:15 UTC in summer
    assert start_from_name("ch01_20261130101500.mp4", BERLIN)[0] == datetime(
        2026, 11, 30, 9, 15, tzinfo=UTC)
    assert start_from_name("ch01_20260701101500.mp4", BERLIN)[0] == datetime(
        2026, 7, 1, 8, 15, tzinfo=UTC)
    # an epoch is absolute: no zone applies
    assert start_from_name("1796040904.mp4", BERLIN)[0] == datetime(
        2026, 11, 30, 12, 15, 4, tzinfo=UTC)


def test_own_patterns_come_first_and_may_take_the_folder_date():
    rules = OriginRules.parse(r"""
[origins."inbox/cam9"]
timezone = "America/New_York"
patterns = ['^cam9-(?P<hour>\d\d)h(?P<minute>\d\d)m(?P<second>\d\d)s']
""")
    rule = rules.rule("inbox/cam9")
    found = start_from_name("cam9/2026-11-30/cam9-07h08m09s.mp4", rule.timezone,
                            rule.patterns)
    assert found == (datetime(2026, 11, 30, 12, 8, 9, tzinfo=UTC), "own:0")


def test_sources_in_order():
    local = OriginRule(timezone=BERLIN, creation_time="local")
    mtime = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)
    received = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    # MOV local time: the digits 10:00:00 are Berlin time
    rec = recording_of(local, path="cam/ch01_20261130110000.mp4", duration=60.5,
                       creation_time="2026-11-30T10:00:00Z", mtime=mtime, received=received)
    assert (rec.start, rec.end, rec.source, rec.estimated) == (
        datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 9, 1, 0, 500000, tzinfo=UTC), "creation_time", False)
    utc = OriginRule()
    rec = recording_of(utc, path="cam/x.mp4", duration=10, creation_time="2026-11-30T10:00:00Z",
                       mtime=mtime, received=received)
    assert rec.start == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    ignore = OriginRule(creation_time="ignore")
    rec = recording_of(ignore, path="cam/ch01_20261130110000.mp4", duration=10,
                       creation_time="2026-11-30T10:00:00Z", mtime=mtime, received=received)
    assert (rec.start, rec.source, rec.pattern) == (
        datetime(2026, 11, 30, 11, 0, tzinfo=UTC), "file_name", "channel")
    rec = recording_of(utc, path="cam/x.mp4", duration=10, creation_time=None, mtime=mtime,
                       received=received)
    assert (rec.start, rec.end, rec.source, rec.estimated) == (
        mtime - timedelta(seconds=10), mtime, "mtime", True)
    rec = recording_of(utc, path="x.mp4", duration=10, creation_time=None, mtime=None,
                       received=received)
    assert (rec.end, rec.source, rec.estimated) == (received, "received", True)


def test_timeline_origin():
    rules = OriginRules.parse('[origins."inbox/nvr/ch01"]\ngap_tolerance = 2.5\n')
    assert rules.timeline_origin("inbox/nvr/ch01/2026-11-30") == "inbox/nvr/ch01"
    assert rules.timeline_origin("inbox/nvr/ch010") == "inbox/nvr"
    assert rules.timeline_origin("inbox/cam1/2026-11-30/001") == "inbox/cam1"
    assert rules.timeline_origin("inbox") == "inbox"
    assert rules.timeline_origin("upload") == "upload"
    assert rules.rule("inbox/nvr/ch01").gap_tolerance == 2.5
    assert rules.rule("inbox/cam1").gap_tolerance == 1.0
    assert rules.rule("inbox/cam1").activity_threshold == 1.0


@pytest.mark.parametrize(("text", "says"), [
    ("[defaults]\ntimezone = 'Mars/Olympus'", "no IANA time zone"),
    ("[defaults]\ncreation_time = 'maybe'", "creation_time must be"),
    ("[defaults]\ngap_tolerance = -1", "gap_tolerance"),
    ("[defaults]\nactivity_threshold = 0", "activity_threshold must be over 0"),
    ("[defaults]\nactivity_threshold = 256", "activity_threshold must be over 0"),
    ("[defaults]\npatterns = ['(?P<year>\\d{4})']", "neither"),
    ("[defaults]\npatterns = ['(']", "no regular expression"),
    ("[defaults]\ncolour = 'red'", "unknown key"),
    ("[origins.'cam1']\ntimezone = 'UTC'", "is no origin"),
    ("[retention]\n", "unknown table"),
    ("defaults = [", "not TOML"),
])
def test_bad_origins_files_are_named(text: str, says: str):
    with pytest.raises(ConfigurationError, match=says):
        OriginRules.parse(text, "origins.toml")


T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_gaps_and_overlaps_with_the_tolerance():
    spans = [Span(1, _at(0), _at(10.2)),  # jitter: 200 ms past the next start
             Span(2, _at(10), _at(19.8)),  # jitter: 200 ms short
             Span(3, _at(20), _at(30)),
             Span(4, _at(31), _at(40)),  # a gap of exactly 1 s
             Span(5, _at(35), _at(50)),  # an overlap of 5 s
             Span(6, _at(650), _at(660))]  # a gap of 600 s
    gaps, overlaps = gaps_and_overlaps(spans, 1.0)
    assert [(g.start, g.end, g.before, g.after) for g in gaps] == [
        (_at(30), _at(31), 3, 4), (_at(50), _at(650), 5, 6)]
    assert [(o.start, o.end, o.seconds) for o in overlaps] == [(_at(35), _at(40), 5.0)]
    # a 1.5 s tolerance: the 1 s gap is a join
    gaps, _ = gaps_and_overlaps(spans, 1.5)
    assert [g.seconds for g in gaps] == [600.0]


def test_a_long_recording_covers_the_short_ones_inside_it():
    spans = [Span(1, _at(0), _at(100)), Span(2, _at(10), _at(20)), Span(3, _at(50), _at(60)),
             Span(4, _at(100.5), _at(110))]
    gaps, overlaps = gaps_and_overlaps(spans, 1.0)
    assert gaps == []
    assert [(o.before, o.after) for o in overlaps] == [(1, 2), (1, 3)]


def test_the_documented_example_file_loads():
    from pathlib import Path
    rules = OriginRules.load(Path(__file__).resolve().parents[2] / "deploy" / "origins.toml")
    assert sorted(rules.named) == ["inbox/dashcam", "inbox/garden", "inbox/nvr1/ch01"]
    assert rules.rule("inbox/nvr1/ch01").gap_tolerance == 2.0
    assert rules.rule("inbox/dashcam").creation_time == "local"
    assert rules.rule("inbox/garden").activity_threshold == 3.0


@pytest.mark.parametrize(("closed", "expected"), [
    # closed when the second pass's recording ended: the second pass (CET)
    (datetime(2026, 10, 25, 1, 30, 10, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    # closed when the first pass's ended: the first (CEST)
    (datetime(2026, 10, 25, 0, 30, 10, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    # copied in 40 minutes late: before the second pass's end, so the first
    (datetime(2026, 10, 25, 1, 10, 10, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    # no mtime (an upload): the first, as documented
    (None, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
])
def test_the_repeated_hour_is_told_apart_by_the_mtime(closed, expected):
    rule = OriginRule(timezone=BERLIN)
    rec = recording_of(rule, path="cam/ch01_20261025023000.mp4", duration=10,
                       creation_time=None, mtime=closed,
                       received=datetime(2026, 10, 25, 3, tzinfo=UTC))
    assert (rec.start, rec.source) == (expected, "file_name")
    local = OriginRule(timezone=BERLIN, creation_time="local")
    rec = recording_of(local, path="cam/x.mov", duration=10,
                       creation_time="2026-10-25T02:30:00.000000Z", mtime=closed,
                       received=datetime(2026, 10, 25, 3, tzinfo=UTC))
    assert (rec.start, rec.source) == (expected, "creation_time")


@pytest.mark.parametrize("creation_time", ["9999-12-31T23:59:59.000000Z",
                                           "1970-01-01T00:00:05.000000Z",
                                           "0001-01-01T00:00:00.000000Z"])
def test_a_recorder_clock_beyond_belief_is_passed_over(creation_time):
    for rule in (OriginRule(), OriginRule(timezone=BERLIN, creation_time="local")):
        rec = recording_of(rule, path="cam/ch01_20261130100000.mov", duration=10,
                           creation_time=creation_time, mtime=None,
                           received=datetime(2026, 12, 1, tzinfo=UTC))
        assert rec.source == "file_name", (rule, creation_time)


def test_an_own_pattern_catching_too_many_digits_is_no_moment():
    rule = OriginRule(patterns=(re.compile(r"(?P<epoch>\d+)"),))
    rec = recording_of(rule, path="cam/99999999999999999999.mp4", duration=float("inf"),
                       creation_time=None, mtime=datetime(2026, 12, 1, tzinfo=UTC),
                       received=datetime(2026, 12, 1, tzinfo=UTC))
    assert rec.source == "mtime"


def test_an_epoch_stamp_is_a_moment_whatever_the_mtime():
    # 00:30 UTC is 02:30 CEST, the first pass of Berlin's repeated hour; the file came in
    # an hour later (mtime at the second pass's end): an epoch stamp still says 00:30
    stamp = int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())
    for rule in (OriginRule(timezone=BERLIN),
                 OriginRule(timezone=BERLIN, patterns=(re.compile(r"cam(?P<epoch>\d+)"),))):
        rec = recording_of(rule, path=f"x/cam{stamp}.mp4", duration=10, creation_time=None,
                           mtime=datetime(2026, 10, 25, 1, 30, 10, tzinfo=UTC),
                           received=datetime(2026, 10, 25, 3, tzinfo=UTC))
        assert rec.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC), rule
