"""Validators and RFC 9110 §13 precondition evaluation."""

from __future__ import annotations

import calendar
import os
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.files.conditional import (
    Precondition,
    Validators,
    evaluate_preconditions,
    http_date,
    if_range_matches,
    make_etag,
    parse_etags,
    parse_http_date,
    validators_for,
)

LM = calendar.timegm((2024, 3, 1, 12, 0, 0, 0, 0, 0))  # Fri, 01 Mar 2024 12:00:00 GMT
LM_HTTP = "Fri, 01 Mar 2024 12:00:00 GMT"
ETAG = make_etag(1000, LM * 1_000_000_000)
V = Validators(etag=ETAG, last_modified=LM)
NOW = LM + 3600


# --- validators -------------------------------------------------------------------------

def test_etag_is_strong_quoted_hex() -> None:
    assert make_etag(1000, LM * 10**9) == f'"{LM:x}-3e8"'  # nginx's: mtime, size in hex


@pytest.mark.parametrize("changed", [(1001, LM * 10**9), (1000, (LM + 1) * 10**9)])
def test_etag_changes_with_size_and_mtime(changed: tuple[int, int]) -> None:
    assert make_etag(*changed) != ETAG
    assert make_etag(1000, LM * 10**9 + 999) == ETAG


def test_validators_for_a_real_file(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "f")
    with open(path, "wb") as f:
        f.write(b"x" * 10)
    os.utime(path, ns=(LM * 10**9 + 123, LM * 10**9 + 123))
    st_ = os.stat(path)
    v = validators_for(st_, now=NOW)
    assert v.last_modified == LM
    assert v.last_modified_http == LM_HTTP
    assert v.etag == make_etag(10, LM * 10**9 + 123)


def test_last_modified_in_the_future_is_clamped_to_now(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "f")
    open(path, "wb").close()
    os.utime(path, (NOW + 1000, NOW + 1000))
    assert validators_for(os.stat(path), now=NOW).last_modified == NOW


# --- dates ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_parse_http_date_all_three_formats(text: str) -> None:
    assert parse_http_date(text) == 784111777


@pytest.mark.parametrize(
    "text",
    [None, "", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
     "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "784111777",
     "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"],
)
def test_parse_http_date_rejects(text: str | None) -> None:
    assert parse_http_date(text) is None


@settings(max_examples=300, database=None)
@given(st.integers(0, 2**33))
def test_http_date_round_trips_and_matches_stdlib(ts: int) -> None:
    text = http_date(ts)
    assert text == formatdate(ts, usegmt=True)
    assert parse_http_date(text) == ts


# --- entity-tags ------------------------------------------------------------------------

def test_parse_etags() -> None:
    assert parse_etags('"a", W/"b" ,"c,d"') == [(False, '"a"'), (True, '"b"'), (False, '"c,d"')]
    assert parse_etags('"a",,"b"') == [(False, '"a"'), (False, '"b"')]
    assert parse_etags("a") is None
    assert parse_etags('"a" "b"') is None
    assert parse_etags('w/"a"') is None


# --- §13.2.2 ----------------------------------------------------------------------------

def ev(method: str = "GET", **headers: str) -> Precondition:
    return evaluate_preconditions(method, V, **headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Precondition.PROCEED),
        # If-None-Match: weak comparison, "*", lists
        ({"if_none_match": ETAG}, Precondition.NOT_MODIFIED),
        ({"if_none_match": "W/" + ETAG}, Precondition.NOT_MODIFIED),
        ({"if_none_match": f'"x", {ETAG}'}, Precondition.NOT_MODIFIED),
        ({"if_none_match": "*"}, Precondition.NOT_MODIFIED),
        ({"if_none_match": '"other"'}, Precondition.PROCEED),
        ({"if_none_match": "garbage"}, Precondition.PROCEED),
        # If-Modified-Since
        ({"if_modified_since": LM_HTTP}, Precondition.NOT_MODIFIED),
        ({"if_modified_since": http_date(LM + 10)}, Precondition.NOT_MODIFIED),
        ({"if_modified_since": http_date(LM - 1)}, Precondition.PROCEED),
        ({"if_modified_since": "not a date"}, Precondition.PROCEED),
        # If-None-Match present → If-Modified-Since ignored (both directions)
        ({"if_none_match": '"other"', "if_modified_since": LM_HTTP}, Precondition.PROCEED),
        ({"if_none_match": ETAG, "if_modified_since": http_date(LM - 1)},
         Precondition.NOT_MODIFIED),
        # If-Match: strong comparison
        ({"if_match": ETAG}, Precondition.PROCEED),
        ({"if_match": "*"}, Precondition.PROCEED),
        ({"if_match": f'"x", {ETAG}'}, Precondition.PROCEED),
        ({"if_match": "W/" + ETAG}, Precondition.FAILED),
        ({"if_match": '"other"'}, Precondition.FAILED),
        # If-Unmodified-Since (ignored when If-Match is present)
        ({"if_unmodified_since": LM_HTTP}, Precondition.PROCEED),
        ({"if_unmodified_since": http_date(LM - 1)}, Precondition.FAILED),
        ({"if_unmodified_since": "bad"}, Precondition.PROCEED),
        ({"if_match": ETAG, "if_unmodified_since": http_date(LM - 1)}, Precondition.PROCEED),
        # 412 wins over 304 (step 1 before step 3)
        ({"if_match": '"other"', "if_none_match": ETAG}, Precondition.FAILED),
    ],
)
def test_evaluate_preconditions(headers: dict[str, str], expected: Precondition) -> None:
    assert ev(**headers) == expected


def test_head_gets_304_too() -> None:
    assert ev("HEAD", if_none_match=ETAG) == Precondition.NOT_MODIFIED
    assert ev("HEAD", if_modified_since=LM_HTTP) == Precondition.NOT_MODIFIED


def test_unsafe_methods_get_412_not_304() -> None:
    assert ev("PUT", if_none_match=ETAG) == Precondition.FAILED
    assert ev("POST", if_modified_since=LM_HTTP) == Precondition.PROCEED


# --- If-Range ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (None, True),
        (ETAG, True),
        (f" {ETAG} ", True),
        ('"stale"', False),
        ("W/" + ETAG, False),  # weak tags never match If-Range
        (f"{ETAG}, {ETAG}", False),  # a single entity-tag only
        (LM_HTTP, True),
        ("Friday, 01-Mar-24 12:00:00 GMT", True),
        (http_date(LM + 1), False),  # exact equality, not "not modified since"
        (http_date(LM - 1), False),
        ("garbage", False),
    ],
)
def test_if_range(if_range: str | None, expected: bool) -> None:
    assert if_range_matches(if_range, V, now=NOW) is expected


def test_if_range_date_needs_a_strong_last_modified() -> None:
    # Last-Modified within the current second is a weak validator (RFC 9110 §8.8.2.2).
    assert if_range_matches(LM_HTTP, V, now=LM + 0.5) is False
    assert if_range_matches(LM_HTTP, V, now=LM + 1) is True
