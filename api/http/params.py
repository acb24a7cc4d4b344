"""Reading request parameters strictly: a blank value is a value (and usually a 400),
never silently "not given"; times are RFC 3339; list cursors are opaque but exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import falcon
import falcon.uri

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
CURSOR = re.compile(r"[0-9]{1,17}_[0-9]{1,18}")  # openapi.py documents this pattern
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


def parse_int(raw: str, name: str, *, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise bad(name, f"{name} is an integer from {low} to {high}")
    return int(raw)


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


def encode_cursor(created_at: datetime, video_id: int) -> str:
    """``<microseconds since 1970>_<id>``: exact (no float), URL-safe."""
    return f"{(created_at - _EPOCH) // _MICRO}_{video_id}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    if not CURSOR.fullmatch(raw):
        raise bad("cursor", "Use the 'next' link of the previous page.")
    micros, video_id = raw.split("_")
    return _EPOCH + int(micros) * _MICRO, int(video_id)
