"""A recording's wall-clock start and end (docs/timeline.md): from the container's
``creation_time``, else from the file's name, else from its mtime minus its duration.

:func:`recording_of` is pure: the prober gives it what it knows of a probed file and
records the answer on the row (``recorded_start``, ``recorded_end``, ``recorded_source``,
``timeline_origin``) and in the metadata (``recording``).

Sources, in order:

- ``creation_time``: the container's creation time (``metadata.creation_time``), as UTC,
  or as wall time in the origin's time zone when the origin says ``creation_time =
  "local"`` (many cameras write local time into MOV/MP4 headers); ``"ignore"`` skips it.
- ``file_name``: the origin's own patterns, then the built-in ones (:data:`BUILT_IN`),
  read as wall time in the origin's time zone (epoch stamps are absolute).
- ``mtime``: the file's modification time minus its duration (a recorder closes the file
  when the recording ends); ``estimated`` is true.
- ``received``: an upload without a name stamp: when it was received minus its duration;
  ``estimated`` is true.

The end is always the start plus the probed duration (never a stamp in the name: those
are rounded to the second, and a rounded end makes phantom gaps).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from videodrop.origins import OriginRule

#: The years a recorder's clock (creation_time, a stamp in a name) is believed in; outside
#: them the next source is used.
FIRST_YEAR, LAST_YEAR = 2000, 2100
#: The longest duration a recording is given (a header may claim any): 100 years.
LONGEST = timedelta(days=36525)
#: How far a file's mtime (the server's clock) may lie before the end its recorder's clock
#: gives it, when the mtime tells which of a repeated hour's moments a wall time is.
CLOCK_SLACK = timedelta(minutes=5)
SOURCES = ("creation_time", "file_name", "mtime", "received")
ESTIMATED_SOURCES = frozenset({"mtime", "received"})  # not the recorder's own clock
_D = r"(?<!\d)"  # no digit before
_ND = r"(?!\d)"  # no digit after
_STAMP = (r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
          r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})")

#: The built-in file name patterns, tried in this order (each searched in the name):
#: name → pattern. Dates come from the nearest dated folder where the name has none.
BUILT_IN: dict[str, re.Pattern[str]] = {
    # Dahua NVRs: 2026-11-30/001/dav/10/10.00.00-10.05.00[M][0@0][0].dav
    "dahua": re.compile(r"^(?P<hour>\d{2})\.(?P<minute>\d{2})\.(?P<second>\d{2})"
                        r"-\d{2}\.\d{2}\.\d{2}"),
    # Reolink: RecM01_20261130_100000_100500_6E24C10_1B2F4A3.mp4
    "reolink": re.compile(r"Rec\w\d+_(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})_"
                          r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})_\d{6}"),
    # ch01_20261130100000.mp4 (many NVR exports)
    "channel": re.compile(r"(?i:ch)\d+_" + _STAMP + _ND),
    # Hikvision-style stamps: 20261130100000_20261130100500.mp4,
    # 192.168.1.64_01_20261130100000123.mp4 (milliseconds after the seconds)
    "stamp": re.compile(_D + _STAMP + r"(?P<fraction>\d{3})?" + _ND),
    # ISO-like: 2026-11-30_10-00-00.mp4, 2026-11-30T10:00:00.250.mkv
    "iso": re.compile(_D + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T _.-]"
                      r"(?P<hour>\d{2})[-:.h](?P<minute>\d{2})[-:.m](?P<second>\d{2})"
                      r"(?:[.,](?P<fraction>\d{1,6}))?" + _ND),
    # Unix epoch seconds (2001-09-09 to 2033-05-18), optionally milliseconds
    "epoch": re.compile(_D + r"(?P<epoch>1\d{9})(?P<epoch_ms>\d{3})?" + _ND),
}
_FOLDER_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


@dataclass(frozen=True)
class Recording:
    """When a recording ran, by the wall clock (UTC), and how we know."""

    start: datetime  # aware, UTC
    end: datetime  # start + duration
    source: str  # one of SOURCES
    estimated: bool  # from the mtime or the arrival: not from the recorder's own clock
    pattern: str | None = None  # the file name pattern that matched (source file_name)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return text + "Z"


def recording_of(rule: OriginRule, *, path: str, duration: float | None,
                 creation_time: str | None, mtime: datetime | None,
                 received: datetime) -> Recording:
    """The recording of a probed file: ``path`` its inbox-relative path (or its name, for
    an upload), ``duration`` seconds (None counts as 0), ``creation_time`` the metadata's
    (``2026-11-30T10:00:00Z``, UTC digits), ``mtime`` the file's modification time
    (None for uploads), ``received`` when the row was made. Sources as the module says."""
    seconds = duration if duration is not None and math.isfinite(duration) else 0.0
    length = timedelta(seconds=min(max(0.0, seconds), LONGEST.total_seconds()))
    start = _from_creation_time(creation_time, rule)
    if start is not None and rule.creation_time == "local":
        start = second_pass(start, rule.timezone, length, mtime)
    if start is not None and (end := _end(start, length)) is not None:
        return Recording(start, end, "creation_time", False)
    named = start_from_name(path, rule.timezone, rule.patterns)
    if named is not None and not _absolute(named[1], rule):  # a wall time, not epoch
        named = (second_pass(named[0], rule.timezone, length, mtime), named[1])
    if named is not None and (end := _end(named[0], length)) is not None:
        return Recording(named[0], end, "file_name", False, named[1])
    if mtime is not None:
        return Recording(mtime - length, mtime, "mtime", True)
    return Recording(received - length, received, "received", True)


def _absolute(label: str, rule: OriginRule) -> bool:
    """Whether the pattern ``label`` (``epoch``, ``own:<n>``…) reads a Unix time: a moment,
    not a wall time a clock change can repeat."""
    pattern = (rule.patterns[int(label[4:])] if label.startswith("own:")
               else BUILT_IN[label])
    return bool({"epoch", "epoch_ms"} & set(pattern.groupindex))


def second_pass(start: datetime, zone: ZoneInfo, length: timedelta,
                mtime: datetime | None) -> datetime:
    """``start`` (a wall time in ``zone`` read as the first of its moments) or, when that
    wall time came twice (the hour a clock goes back) and the file was closed
    (``mtime``) no earlier than :data:`CLOCK_SLACK` before the second moment's end and
    nearer it than the first's, the second moment: a recorder writing through the
    repeated hour is told from one writing the first time through it."""
    local = start.astimezone(zone)
    later = local.replace(fold=1).astimezone(UTC)
    if later == start or mtime is None:
        return start
    first_end, later_end = start + length, later + length
    if mtime >= later_end - CLOCK_SLACK and abs(mtime - later_end) < abs(mtime - first_end):
        return later
    return start


def _end(start: datetime, length: timedelta) -> datetime | None:
    """The end of a recording from a recorder's clock, or None when that clock cannot be
    believed: the recording must run within :data:`FIRST_YEAR`..:data:`LAST_YEAR` (a
    camera whose clock was never set says 1970; a hostile header says 9999, whose end is
    no date)."""
    if not FIRST_YEAR <= start.year <= LAST_YEAR:
        return None
    end = start + length  # under 100 years after at most 2100: a date
    return end if end.year <= LAST_YEAR else None


def _from_creation_time(text: str | None, rule: OriginRule) -> datetime | None:
    if not text or rule.creation_time == "ignore":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if rule.creation_time == "local":  # the digits are wall time in the origin's zone
            return _wall(moment.replace(tzinfo=None), rule.timezone)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # no moment, or none UTC can say (year 1, 9999)
        return None


def start_from_name(path: str, zone: ZoneInfo, own: tuple[re.Pattern[str], ...] = ()
                    ) -> tuple[datetime, str] | None:
    """``(start in UTC, pattern name)`` from the file name of ``path`` by the first of
    ``own`` (named ``own:<n>``) and then :data:`BUILT_IN` that gives a valid moment; None
    when none does."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else path
    named = [(f"own:{i}", p) for i, p in enumerate(own)] + list(BUILT_IN.items())
    for label, pattern in named:
        for match in pattern.finditer(name):
            moment = _moment(match.groupdict(), parts[:-1], zone)
            if moment is not None:
                return moment, label
    return None


def _moment(groups: dict[str, str | None], folders: tuple[str, ...], zone: ZoneInfo
            ) -> datetime | None:
    try:  # an origin's own pattern may catch any digits: 99999999999999 is no moment
        if groups.get("epoch"):
            seconds = int(groups["epoch"] or 0) + int(groups.get("epoch_ms") or 0) / 1000
            return _bounded(datetime.fromtimestamp(seconds, UTC))
        if groups.get("epoch_ms") and not groups.get("epoch"):
            return _bounded(datetime.fromtimestamp(int(groups["epoch_ms"] or 0) / 1000, UTC))
    except (ValueError, OverflowError, OSError):
        return None
    try:
        if groups.get("year") and groups.get("month") and groups.get("day"):
            day = date(int(groups["year"] or 0), int(groups["month"] or 0),
                       int(groups["day"] or 0))
        else:
            found = folder_date(folders)
            if found is None:
                return None
            day = found
        fraction = (groups.get("fraction") or "0")[:6].ljust(6, "0")
        wall = datetime(day.year, day.month, day.day, int(groups["hour"] or 0),
                        int(groups["minute"] or 0), int(groups["second"] or 0), int(fraction))
    except (ValueError, TypeError):
        return None  # 2026-13-45, 25:61:00: not a moment, try the next pattern
    if not FIRST_YEAR <= wall.year <= LAST_YEAR:
        return None
    return _wall(wall, zone)


def _bounded(moment: datetime) -> datetime | None:
    return moment if FIRST_YEAR <= moment.year <= LAST_YEAR else None


def folder_date(folders: tuple[str, ...]) -> date | None:
    """The date of the nearest folder named ``YYYY-MM-DD`` or ``YYYYMMDD`` (deepest
    first), None when there is none."""
    for folder in reversed(folders):
        match = _FOLDER_DATE.fullmatch(folder) or _FOLDER_DATE.search(folder)
        if match is None:
            continue
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            continue
    return None


def _wall(wall: datetime, zone: ZoneInfo) -> datetime:
    """Wall time ``wall`` (naive) in ``zone`` as UTC. In the hour a clock goes back the
    first of the two moments is taken (``fold=0``); in the hour it skips, the moment as if
    the clock had not moved yet."""
    return wall.replace(tzinfo=zone).astimezone(UTC)
