"""Reading request parameters strictly: a blank value is a value (and usually a 400),
never silently "not given"; times are RFC 3339; list cursors are opaque but exact."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta

import falcon
import falcon.uri

from videodrop.catalog.lists import NEWEST, Cursor, Sort

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
MAX_NAME_IN_CURSOR = 1024  # characters of base64: a longer name is read from its row
_ID = r"_([0-9]{1,18})"
# The cursor of each sort (encode_cursor); openapi.py documents CURSOR, which takes them all.
CURSORS = {
    "added": re.compile(r"([0-9]{1,17})" + _ID),
    "name": re.compile(rf"name~(\.|[A-Za-z0-9_-]{{0,{MAX_NAME_IN_CURSOR}}})" + _ID),
    "duration": re.compile(r"duration~(-?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:e[-+]?[0-9]{1,3})?)"
                           + _ID),
    "size": re.compile(r"size~(-?[0-9]{1,19})" + _ID),
}
CURSOR = re.compile("(?:" + "|".join(p.pattern for p in CURSORS.values()) + ")")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:([0-9]{2})"
                      r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def query_params(req: falcon.Request) -> dict[str, str]:
    """The query string with blank values kept; the first value of a repeated name."""
    parsed = falcon.uri.parse_query_string(req.query_string, keep_blank=True)
    return {k: v[0] if isinstance(v, list) else v for k, v in parsed.items()}


def repeated_params(req: falcon.Request) -> list[str]:
    """Names given more than once in the query string, sorted."""
    parsed = falcon.uri.parse_query_string(req.query_string, keep_blank=True)
    return sorted(k for k, v in parsed.items() if isinstance(v, list))


def text(value: str) -> str:
    """A string PostgreSQL can store: NUL (which ``text`` cannot hold) and lone surrogates
    become U+FFFD. Nothing else changes."""
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def bad(name: str, description: str) -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(title=f"Bad {name}", description=description)


def checked_origin(origin: str) -> str:
    """``origin`` (a timeline's, docs/timeline.md) as given, or 400 for one no folder can
    be named (a NUL, other control characters): it has no recordings, and the catalog
    cannot be asked about it (PostgreSQL text holds no NUL)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in origin):
        raise bad("origin", "an origin is a folder's name: no control characters")
    return origin


def parse_int(raw: str, name: str, *, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise bad(name, f"{name} is an integer from {low} to {high}")
    return int(raw)


def parse_sort(raw: str | None) -> Sort:
    """A list's ``sort`` (videodrop.catalog.lists.SORTS); None: newest first. 400 names the
    allowed values."""
    if raw is None:
        return NEWEST
    try:
        return Sort.parse(raw)
    except ValueError as exc:
        raise bad("sort", f"{exc}, not {raw[:40]!r}") from exc


def parse_when(raw: str, name: str) -> datetime:
    """RFC 3339 (``format: date-time``): a zone is required; a leap second is the next."""
    m = _RFC3339.fullmatch(raw)
    try:
        if m is None:
            raise ValueError(raw)
        leap = m.group(1) == "60"
        text = raw[:m.start(1)] + ("59" if leap else m.group(1)) + raw[m.end(1):]
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        when = when.astimezone(UTC) + (timedelta(seconds=1) if leap else timedelta())
    except (ValueError, OverflowError) as exc:
        raise bad(name, "Use RFC 3339, e.g. 2026-11-25T12:00:00Z") from exc
    return when


def encode_cursor(cursor: Cursor, sort: Sort = NEWEST) -> str:
    """The text of a keyset cursor (a row's ``(key, id)`` in ``sort``'s order, from
    ``Sort.key_of``): URL-safe and exact. ``added``: ``<microseconds since 1970>_<id>``;
    ``duration``: ``duration~<float>_<id>``; ``size``: ``size~<bytes>_<id>``; ``name``:
    ``name~<the name in unpadded base64url>_<id>``, or ``name~._<id>`` when that would be
    longer than ``MAX_NAME_IN_CURSOR`` (the name is then read from the row:
    :func:`decode_cursor`)."""
    key, video_id = cursor
    if sort.key == "added":
        assert isinstance(key, datetime)
        return f"{(key - _EPOCH) // _MICRO}_{video_id}"
    if sort.key == "name":
        text = base64.urlsafe_b64encode(str(key).encode("utf-8")).rstrip(b"=").decode()
        return f"name~{text if len(text) <= MAX_NAME_IN_CURSOR else '.'}_{video_id}"
    return f"{sort.key}~{key!r}_{video_id}"


def decode_cursor(raw: str, sort: Sort = NEWEST) -> Cursor:
    """(key, id) of a cursor :func:`encode_cursor` made for ``sort``; the key is None for a
    name cursor that names the row only (the caller reads the row's name). 400 for
    anything else, and for a cursor of another sort."""
    pattern = CURSORS[sort.key]
    m = pattern.fullmatch(raw)
    if m is None:
        other = next((k for k, p in CURSORS.items() if p.fullmatch(raw)), None)
        if other is not None:
            raise bad("cursor", f"This cursor belongs to sort={other}, not sort={sort}; use"
                                " the 'next' link of the previous page.")
        raise bad("cursor", "Use the 'next' link of the previous page.")
    value, video_id = m.group(1), int(m.group(2))
    if sort.key == "added":
        return _EPOCH + int(value) * _MICRO, video_id
    if sort.key == "size":
        return int(value), video_id
    if sort.key == "duration":
        number = float(value)
        if not math.isfinite(number):
            raise bad("cursor", "Use the 'next' link of the previous page.")
        return number, video_id
    if value == ".":
        return None, video_id
    try:
        name = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad("cursor", "Use the 'next' link of the previous page.") from exc
    return text(name), video_id
