"""RFC 9110 byte-range parsing: pure, no I/O, no framework.

``parse_range(header, size)`` turns a ``Range`` header value into one of three answers:

* ``Whole()``: serve the whole representation with 200. Used for an absent header, a unit
  other than ``bytes``, invalid syntax (RFC 9110 §14.2 lets a server ignore an invalid
  ranges-specifier; answering 400 is never right here) and abusive range sets (§14.2,
  "Security Considerations" §17.15).
* ``Partial(ranges)``: serve 206; ``ranges`` are inclusive ``(first, last)`` byte positions,
  clamped to the file, sorted, with overlapping and adjacent ranges merged. One range means a
  plain 206 with ``Content-Range``; several mean ``multipart/byteranges``.
* ``Unsatisfiable()``: no range is satisfiable (§14.1.2); answer 416 with
  ``Content-Range: bytes */size``.

Numbers of any length are accepted: anything with more digits than a file size can have is
treated as "past the end" without converting it (``int()`` refuses strings over 4300 digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_PARTS",
    "MAX_SPECS",
    "Partial",
    "RangeResult",
    "Unsatisfiable",
    "Whole",
    "content_range",
    "parse_range",
    "unsatisfied_range",
]

#: More parts than this after merging → serve the whole file instead.
MAX_PARTS = 16
#: More comma-separated range-specs than this (before any arithmetic) → whole file.
MAX_SPECS = 100
#: More than this many ranges overlapping an earlier one (RFC 9110 §14.2: "more than two
#: overlapping ranges") → whole file.
MAX_OVERLAPS = 2
#: More than this many ranges that start before the previous one ("many small ranges ...
#: requested out of order for no apparent reason", §14.2) → whole file.
MAX_OUT_OF_ORDER = 2

# Any digit string longer than this is larger than any file size we can meet (2**64 has 20
# digits), so it is replaced by _HUGE instead of being converted.
_MAX_DIGITS = 20
_HUGE = 1 << 70

_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_OWS = " \t"


@dataclass(frozen=True, slots=True)
class Whole:
    """Ignore the Range header: send the whole representation (200)."""


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """No requested range overlaps the representation: 416."""


@dataclass(frozen=True, slots=True)
class Partial:
    """Satisfiable ranges: inclusive (first, last) pairs, sorted, disjoint, non-adjacent."""

    ranges: tuple[tuple[int, int], ...]

    @property
    def length(self) -> int:
        """Total number of content bytes over all ranges."""
        return sum(last - first + 1 for first, last in self.ranges)


RangeResult = Whole | Partial | Unsatisfiable


def _number(digits: str) -> int:
    stripped = digits.lstrip("0")
    if len(stripped) > _MAX_DIGITS:
        return _HUGE
    return int(stripped or "0")


def _parse_spec(spec: str) -> tuple[int, int | None] | None:
    """Parse one range-spec into (first, last) or (-suffix_length, None) for a suffix.

    Returns ``None`` when the spec is syntactically invalid. A suffix-range ``-n`` comes back
    as ``(-(n + 1), None)`` so that ``-0`` stays distinguishable from ``0-``.
    """
    m = _INT_RANGE.fullmatch(spec)
    if m is not None:
        first_digits, last_digits = m.group(1).lstrip("0"), m.group(2)
        if last_digits == "":
            return _number(first_digits), _HUGE
        last_digits = last_digits.lstrip("0")
        # Compare as digit strings: both may be beyond what _number() keeps exact.
        if (len(last_digits), last_digits) < (len(first_digits), first_digits):
            return None  # RFC 9110 §14.1.1: invalid int-range
        return _number(first_digits), _number(last_digits)
    m = _SUFFIX_RANGE.fullmatch(spec)
    if m is not None:
        return -(_number(m.group(1)) + 1), None
    return None


def _satisfiable(parsed: list[tuple[int, int | None]], size: int) -> list[tuple[int, int]]:
    """Clamp each spec to the file, dropping the unsatisfiable ones (RFC 9110 §14.1.2)."""
    out: list[tuple[int, int]] = []
    for first, last in parsed:
        if last is None:  # suffix-range, encoded as -(n + 1)
            suffix = -first - 1
            if suffix == 0 or size == 0:
                continue
            out.append((max(0, size - suffix), size - 1))
        elif first < size:
            out.append((first, min(last, size - 1)))
    return out


def _is_abusive(ranges: list[tuple[int, int]], size: int) -> bool:
    """Range sets that cost more than they are worth (RFC 9110 §14.2, §17.15)."""
    total = sum(last - first + 1 for first, last in ranges)
    if total > size:
        return True
    overlaps = 0
    out_of_order = 0
    prev_first = -1
    for i, (first, _last) in enumerate(ranges):
        if first < prev_first:
            out_of_order += 1
        prev_first = first
        if any(f <= ranges[i][1] and first <= la for f, la in ranges[:i]):
            overlaps += 1
    return overlaps > MAX_OVERLAPS or out_of_order > MAX_OUT_OF_ORDER


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            prev_first, prev_last = merged[-1]
            merged[-1] = (prev_first, max(prev_last, last))
        else:
            merged.append((first, last))
    return merged


def parse_range(header: str | None, size: int) -> RangeResult:
    """Interpret a ``Range`` header value against a representation of ``size`` bytes."""
    if size < 0:
        raise ValueError("size must be >= 0")
    if header is None:
        return Whole()
    unit, sep, range_set = header.strip(_OWS).partition("=")
    unit = unit.strip(_OWS)
    if not sep or not _TOKEN.fullmatch(unit) or unit.lower() != "bytes":
        return Whole()  # no "=", or a unit we do not support: ignore (§14.2)

    elements = range_set.split(",")
    if len(elements) > MAX_SPECS:
        return Whole()
    parsed: list[tuple[int, int | None]] = []
    for element in elements:
        spec = element.strip(_OWS)
        if not spec:
            continue  # the #rule lets a recipient ignore empty list elements
        one = _parse_spec(spec)
        if one is None:
            return Whole()
        parsed.append(one)
    if not parsed:
        return Whole()

    ranges = _satisfiable(parsed, size)
    if not ranges:
        return Unsatisfiable()
    if len(ranges) > 1 and _is_abusive(ranges, size):
        return Whole()
    merged = _merge(ranges)
    if len(merged) > MAX_PARTS:
        return Whole()
    return Partial(tuple(merged))


def content_range(first: int, last: int, size: int) -> str:
    """The ``Content-Range`` value for one satisfied range."""
    return f"bytes {first}-{last}/{size}"


def unsatisfied_range(size: int) -> str:
    """The ``Content-Range`` value of a 416 response."""
    return f"bytes */{size}"
