"""Validators and conditional requests (RFC 9110 §8.8, §13): pure, no framework.

* ``make_etag(size, mtime_ns)`` → a strong entity-tag ``"<mtime hex>-<size hex>"`` (nginx's).
* ``http_date(ts)`` / ``parse_http_date(text)`` → IMF-fixdate out, all three RFC 9110 §5.6.7
  formats in (IMF-fixdate, obsolete RFC 850, asctime), locale-independent.
* ``evaluate_preconditions(...)`` → the §13.2.2 order: If-Match, If-Unmodified-Since (412),
  If-None-Match, If-Modified-Since (304 for GET/HEAD).
* ``if_range_matches(...)`` → §13.1.5: does a Range header still apply?
"""

from __future__ import annotations

import calendar
import enum
import os
import re
import time
from dataclasses import dataclass

__all__ = [
    "Precondition",
    "Validators",
    "evaluate_preconditions",
    "http_date",
    "if_range_matches",
    "make_etag",
    "parse_etags",
    "parse_http_date",
    "validators_for",
]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTHS)}

_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_RFC850 = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    r"([0-9]{2})-([A-Z][a-z]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_ASCTIME = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ 0-9][0-9]) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})"
)
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc excludes DQUOTE but allows commas.
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


class Precondition(enum.Enum):
    """What the preconditions say to do with a GET/HEAD."""

    PROCEED = "proceed"
    NOT_MODIFIED = "304"
    FAILED = "412"


@dataclass(frozen=True, slots=True)
class Validators:
    """The validators of one representation."""

    etag: str  # strong, quoted: '"…"'
    last_modified: int  # whole seconds since the epoch (HTTP dates have no fractions)

    @property
    def last_modified_http(self) -> str:
        return http_date(self.last_modified)


def make_etag(size: int, mtime_ns: int) -> str:
    """A strong ETag, spelled as nginx spells it (``"<mtime hex>-<size hex>"``), so that a
    client sees one validator whichever server answers: the API alone, nginx after
    ``X-Accel-Redirect``, or nginx from a stream link (``videodrop/links.py``). Seconds and
    size are enough because a stored file is never rewritten in place: it is written under
    another name and renamed into place once, then only read.
    """
    return f'"{mtime_ns // 1_000_000_000:x}-{size:x}"'


def validators_for(st: os.stat_result, *, now: float | None = None) -> Validators:
    """Validators from an ``os.fstat`` result.

    A Last-Modified in the future is replaced by the current time (RFC 9110 §8.8.2.1).
    """
    current = time.time() if now is None else now
    return Validators(
        etag=make_etag(st.st_size, st.st_mtime_ns),
        last_modified=min(st.st_mtime_ns // 1_000_000_000, int(current)),
    )


def http_date(ts: float) -> str:
    """IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT`` (locale-independent)."""
    t = time.gmtime(int(ts))
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch for a valid HTTP-date, otherwise ``None``."""
    if value is None:
        return None
    text = value.strip(" \t")
    fields: tuple[str, ...]
    if m := _IMF_FIXDATE.fullmatch(text):
        day, month, year, hh, mm, ss = m.groups()
    elif m := _RFC850.fullmatch(text):
        day, month, yy, hh, mm, ss = m.groups()
        # RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past.
        this_year = time.gmtime().tm_year
        year_n = this_year - this_year % 100 + int(yy)
        if year_n > this_year + 50:
            year_n -= 100
        year = str(year_n)
    elif m := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = m.groups()
    else:
        return None
    fields = (year, month, day.strip(), hh, mm, ss)
    month_n = _MONTH_NUMBER.get(fields[1])
    if month_n is None:
        return None
    y, d, h, mi, s = (int(fields[i]) for i in (0, 2, 3, 4, 5))
    if not 1 <= d <= calendar.monthrange(y, month_n)[1] or h > 23 or mi > 59 or s > 60:
        return None
    return calendar.timegm((y, month_n, d, h, mi, min(s, 59), 0, 0, 0))


def parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """Parse ``1#entity-tag`` into ``[(weak, opaque_tag), …]``; ``None`` if malformed."""
    tags: list[tuple[bool, str]] = []
    pos = 0
    text = value.strip(" \t")
    while pos < len(text):
        if text[pos] == ",":  # empty list element
            pos += 1
            continue
        m = _ENTITY_TAG.match(text, pos)
        if m is None:
            return None
        tags.append((m.group(1) is not None, m.group(2)))
        pos = m.end()
    return tags


def _weak_match(header: str, etag: str) -> bool:
    """If-None-Match: ``*`` or any tag equal by weak comparison (§8.8.3.2)."""
    if header.strip(" \t") == "*":
        return True
    tags = parse_etags(header)
    return tags is not None and any(tag == etag for _weak, tag in tags)


def _strong_match(header: str, etag: str) -> bool:
    """If-Match: ``*`` or any strong tag equal to ours (strong comparison)."""
    if header.strip(" \t") == "*":
        return True
    tags = parse_etags(header)
    return tags is not None and any(not weak and tag == etag for weak, tag in tags)


def evaluate_preconditions(
    method: str,
    validators: Validators,
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
) -> Precondition:
    """RFC 9110 §13.2.2 steps 1-4 for a representation that exists."""
    safe = method in ("GET", "HEAD")
    if if_match is not None:  # step 1
        if not _strong_match(if_match, validators.etag):
            return Precondition.FAILED
    elif if_unmodified_since is not None:  # step 2
        date = parse_http_date(if_unmodified_since)
        if date is not None and validators.last_modified > date:
            return Precondition.FAILED
    if if_none_match is not None:  # step 3
        if _weak_match(if_none_match, validators.etag):
            return Precondition.NOT_MODIFIED if safe else Precondition.FAILED
    elif safe and if_modified_since is not None:  # step 4
        date = parse_http_date(if_modified_since)
        if date is not None and validators.last_modified <= date:
            return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def if_range_matches(if_range: str | None, validators: Validators,
                     *, now: float | None = None) -> bool:
    """RFC 9110 §13.1.5 / §13.2.2 step 5: True when a Range header should be honoured.

    An entity-tag matches by strong comparison only (a weak tag never matches). An HTTP-date
    matches when it equals Last-Modified exactly *and* Last-Modified is a strong validator,
    i.e. at least one second older than the response's Date (§8.8.2.2); otherwise a file
    rewritten twice within one second could be resumed with the wrong bytes.
    """
    if if_range is None:
        return True
    value = if_range.strip(" \t")
    if value.startswith(('"', "W/")):
        tags = parse_etags(value)
        return (tags is not None and len(tags) == 1 and not tags[0][0]
                and tags[0][1] == validators.etag)
    date = parse_http_date(value)
    current = time.time() if now is None else now
    return (date is not None and date == validators.last_modified
            and validators.last_modified <= int(current) - 1)
