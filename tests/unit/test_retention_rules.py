"""The retention file (videodrop/retention/rules.py): fall-backs, uploads kept by default,
the free-space floor, durations, and each mistake named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from videodrop.retention.rules import KEEP, OriginRule, parse, parse_duration

DAY = timedelta(days=1)


def test_an_origin_falls_back_to_global_ages_but_keeps_its_own_quota() -> None:
    rules = parse('[global]\nmax_age = "90d"\nmin_age = "1d"\nquota = "1TiB"\n'
                  '[origins."inbox/cam1"]\nmax_age = "30d"\nquota = "200GiB"\n'
                  '[origins."inbox/cam2"]\nmin_age = "2d"\n'
                  '[origins."inbox/lobby"]\nkeep = true\n')
    assert rules.for_origin("inbox/cam1") == OriginRule(max_age=30 * DAY, min_age=DAY,
                                                        quota=200 << 30)
    assert rules.for_origin("inbox/cam2") == OriginRule(max_age=90 * DAY, min_age=2 * DAY)
    assert rules.for_origin("inbox/elsewhere") == OriginRule(max_age=90 * DAY, min_age=DAY)
    assert rules.for_origin("inbox/lobby").keep
    assert rules.quota == 1 << 40


def test_a_table_rules_its_folder_and_the_folders_under_it() -> None:
    rules = parse('[origins."inbox/cam1"]\nquota = 10\n[origins."inbox/cam1/door"]\n'
                  'quota = 5\n[origins."inbox"]\nmax_age = "9d"\n')
    assert rules.governing("inbox/cam1/2026-11-30") == "inbox/cam1"
    assert rules.governing("inbox/cam1/door/2026-11-30") == "inbox/cam1/door"
    assert rules.governing("inbox/cam10") == "inbox"  # a folder, not a prefix of the name
    assert rules.governing("inbox") == "inbox"
    assert rules.for_origin("inbox/cam1/2026-11-30").quota == 10
    assert parse("").governing("inbox/cam2/x") == "inbox/cam2/x"  # no table: its own


def test_uploads_are_kept_unless_they_have_a_table() -> None:
    assert parse('[global]\nmax_age = "1d"\n').for_origin("upload") == KEEP
    rules = parse('[global]\nmax_age = "10d"\n[uploads]\nmin_age = "2d"\n')
    assert rules.for_origin("upload") == OriginRule(max_age=10 * DAY, min_age=2 * DAY)


def test_an_empty_file_removes_nothing() -> None:
    rules = parse("")
    assert rules.for_origin("inbox/cam1") == OriginRule()
    assert rules.quota is None and rules.keep_free(1 << 40) is None and not rules.drop_rows


@pytest.mark.parametrize(("text", "total", "floor"), [
    ('keep_free = "5%"', 1000, 50),
    ('keep_free = "50GiB"', 1 << 40, 50 << 30),
    ("keep_free = 1234", 1 << 40, 1234),
])
def test_the_free_space_floor(text: str, total: int, floor: int) -> None:
    assert parse(f"[global]\n{text}\n").keep_free(total) == floor


@pytest.mark.parametrize(("value", "seconds"), [
    ("45s", 45), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600),
    ("1.5h", 5400), (600, 600), ("600", 600)])
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value, "x") == timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "named"), [
    ('[global]\nmax_age = "ten days"\n', "[global] max_age: not a duration"),
    ('[global]\nmax_age = -5\n', "[global] max_age: not a duration"),
    ('[global]\nquota = "lots"\n', "[global] quota: not a size"),
    ('[global]\nquota = 0\n', "[global] quota: a size of 1 byte or more"),
    ('[global]\nkeep_free = "0%"\n', "[global] keep_free: a percentage"),
    ('[global]\ndrop_rows = "yes"\n', "[global] drop_rows: true or false"),
    ('[global]\nmax_age = "1d"\nmin_age = "1d"\n', "[global]: max_age (1 day, 0:00:00) must"),
    ('[globals]\n', "unknown table(s) globals"),
    ('[origins."upload"]\nmax_age = "1d"\n', "uploads have their own table"),
    ('[origins."cam1"]\nmax_age = "1d"\n', "an origin is 'inbox' or 'inbox/<subfolder>'"),
    ('[origins."inbox/cam1"]\nkeep = 1\n', 'inbox/cam1"] keep: true or false'),
    ('[origins."inbox/cam1"]\nretain = "1d"\n', "unknown key(s) retain"),
    ('[uploads]\nmax_age = "1h"\nmin_age = "2h"\n', "[uploads]: max_age"),
])
def test_each_mistake_is_named(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse(text)
    assert named in str(caught.value)


@pytest.mark.parametrize(("text", "named"), [
    # more than any pass can subtract from today: a named mistake, not a crash of every pass
    ('[global]\nmax_age = "99999999999d"\n', "[global] max_age: at most"),
    ('[global]\nmax_age = "1000000d"\n', "[global] max_age: at most"),
    ('[origins."inbox/cam1"]\nmin_age = "400000w"\n', 'inbox/cam1"] min_age: at most'),
    # names no record's origin can have (the rule would silently never apply)
    ('[origins."inbox/cam1/"]\nmax_age = "1d"\n', "an origin is 'inbox' or"),
    ('[origins."inbox//cam1"]\nmax_age = "1d"\n', "an origin is 'inbox' or"),
    ('[origins."inbox/../cam1"]\nmax_age = "1d"\n', "an origin is 'inbox' or"),
    ('[origins."inbox/./cam1"]\nmax_age = "1d"\n', "an origin is 'inbox' or"),
    # keep = true exempts the origin: a rule beside it would never apply
    ('[origins."inbox/lobby"]\nkeep = true\nquota = "1GB"\n',
     '[origins."inbox/lobby"]: keep = true exempts it from every rule; remove quota'),
    ('[uploads]\nkeep = true\nmax_age = "1d"\n',
     "[uploads]: keep = true exempts it from every rule; remove max_age"),
])
def test_what_no_pass_could_use_is_named(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(text)
    assert named in str(caught.value)


def test_the_longest_ages_still_make_a_cutoff() -> None:
    from datetime import UTC, datetime
    rules = parse('[global]\nmax_age = "36500d"\nmin_age = "36499d"\n')
    assert rules.max_age is not None
    assert datetime(2026, 12, 1, tzinfo=UTC) - rules.max_age > datetime(1, 1, 2, tzinfo=UTC)
