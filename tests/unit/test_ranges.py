"""RFC 9110 Range parsing: table tests and a property test."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.files.ranges import (
    MAX_PARTS,
    Partial,
    Unsatisfiable,
    Whole,
    content_range,
    parse_range,
    unsatisfied_range,
)

HUGE = "9" * 30


def P(*ranges: tuple[int, int]) -> Partial:
    return Partial(tuple(ranges))


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        # absent / not ours
        (None, 100, Whole()),
        ("", 100, Whole()),
        ("items=0-5", 100, Whole()),
        ("bytes 0-5", 100, Whole()),
        ("bytes", 100, Whole()),
        # the three forms
        ("bytes=0-1", 100, P((0, 1))),  # Safari's probe: two bytes
        ("bytes=10-19", 100, P((10, 19))),
        ("bytes=10-", 100, P((10, 99))),
        ("bytes=-10", 100, P((90, 99))),
        ("bytes=0-", 100, P((0, 99))),
        ("bytes=99-99", 100, P((99, 99))),
        # unit and whitespace tolerance
        ("Bytes=0-1", 100, P((0, 1))),
        ("BYTES=0-1", 100, P((0, 1))),
        ("  bytes=0-1  ", 100, P((0, 1))),
        ("bytes=0-1 , 5-6", 100, P((0, 1), (5, 6))),
        ("bytes=0-1,,5-6", 100, P((0, 1), (5, 6))),  # empty list elements are ignored
        ("bytes=007-008", 100, P((7, 8))),  # leading zeros are still 1*DIGIT
        # clamping and huge numbers
        ("bytes=50-1000", 100, P((50, 99))),
        (f"bytes=0-{HUGE}", 100, P((0, 99))),
        (f"bytes=0-{'9' * 5000}", 100, P((0, 99))),  # beyond int()'s 4300-digit limit
        (f"bytes=-{HUGE}", 100, P((0, 99))),
        ("bytes=-1000", 100, P((0, 99))),
        (f"bytes={HUGE}-", 100, Unsatisfiable()),
        # unsatisfiable
        ("bytes=100-", 100, Unsatisfiable()),
        ("bytes=100-200", 100, Unsatisfiable()),
        ("bytes=-0", 100, Unsatisfiable()),
        ("bytes=100-,200-300,-0", 100, Unsatisfiable()),
        # empty representation: nothing is satisfiable (RFC 9110 §14.1.2)
        ("bytes=0-", 0, Unsatisfiable()),
        ("bytes=0-0", 0, Unsatisfiable()),
        ("bytes=-5", 0, Unsatisfiable()),
        (None, 0, Whole()),
        # some satisfiable: keep those
        ("bytes=0-1,200-300", 100, P((0, 1))),
        ("bytes=-0,5-6", 100, P((5, 6))),
        # invalid syntax → ignored
        ("bytes=5-2", 100, Whole()),
        ("bytes=-", 100, Whole()),
        ("bytes=a-b", 100, Whole()),
        ("bytes=1-2-3", 100, Whole()),
        ("bytes=+1-2", 100, Whole()),
        ("bytes=1 -2", 100, Whole()),
        ("bytes=0-1,x", 100, Whole()),
        ("bytes=0x10-", 100, Whole()),
        ("bytes=\u0661-", 100, Whole()),  # ARABIC-INDIC DIGIT ONE is not DIGIT
        ("bytes=", 100, Whole()),
        ("bytes=,", 100, Whole()),
        ("b ytes=0-1", 100, Whole()),
        # several ranges: sorted, overlapping and adjacent ones merged
        ("bytes=0-1,5-6", 100, P((0, 1), (5, 6))),
        ("bytes=5-6,0-1", 100, P((0, 1), (5, 6))),
        ("bytes=0-10,5-15", 100, P((0, 15))),
        ("bytes=0-4,5-9", 100, P((0, 9))),
        ("bytes=0-1,3-4,2-2", 100, P((0, 4))),
        ("bytes=0-0,-1", 100, P((0, 0), (99, 99))),
        ("bytes=0-9,90-", 100, P((0, 9), (90, 99))),
        # abusive sets → whole file
        ("bytes=0-,0-", 100, Whole()),  # total exceeds the size
        ("bytes=0-60,40-99", 100, Whole()),  # total exceeds the size
        ("bytes=0-10,1-11,2-12,3-13", 1000, Whole()),  # more than two overlapping
        ("bytes=50-51,40-41,30-31,20-21", 1000, Whole()),  # out of order, tiny
        (",".join(["bytes=0-0"] + [f"{i * 3}-{i * 3}" for i in range(1, 17)]), 1000, Whole()),
        ("bytes=" + ",".join(["0-0"] * 101), 1000, Whole()),
    ],
)
def test_parse_range_table(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


def test_sixteen_parts_are_allowed() -> None:
    header = "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(MAX_PARTS))
    result = parse_range(header, 1000)
    assert isinstance(result, Partial)
    assert len(result.ranges) == MAX_PARTS
    assert result.length == MAX_PARTS


def test_seventeen_parts_are_not() -> None:
    header = "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(MAX_PARTS + 1))
    assert parse_range(header, 1000) == Whole()


def test_negative_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_range("bytes=0-1", -1)


def test_header_values() -> None:
    assert content_range(0, 1, 10) == "bytes 0-1/10"
    assert unsatisfied_range(10) == "bytes */10"


def test_results_are_hashable_values() -> None:
    assert hash(P((0, 1))) == hash(P((0, 1)))
    assert Whole() == Whole()
    assert Unsatisfiable() != Whole()


# --- property ---------------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(0, 200),
    st.integers(0, 2**64),
    st.integers(10**29, 10**31),
).map(str)
_spec = st.one_of(
    st.tuples(_numbers, st.just("-"), _numbers).map("".join),
    st.tuples(_numbers, st.just("-")).map("".join),
    st.tuples(st.just("-"), _numbers).map("".join),
    st.text(alphabet="0123456789-, x", max_size=6),
)
_headers = st.one_of(
    st.none(),
    st.lists(_spec, min_size=1, max_size=25).map(lambda specs: "bytes=" + ",".join(specs)),
    st.text(max_size=40),
)


@settings(max_examples=1000, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers, size=st.one_of(st.integers(0, 300), st.integers(0, 2**63)))
def test_parse_range_properties(header: str | None, size: int) -> None:
    result = parse_range(header, size)
    if isinstance(result, Whole | Unsatisfiable):
        if header is None:
            assert result == Whole()
        return
    assert isinstance(result, Partial)
    assert 1 <= len(result.ranges) <= MAX_PARTS
    previous_last = -2
    for first, last in result.ranges:
        assert 0 <= first <= last < size
        assert first > previous_last + 1  # sorted, disjoint and not adjacent
        previous_last = last
    assert result.length <= size
