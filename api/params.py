"""Reading request parameters strictly: a blank value is a value (and usually a 400),
never silently "not given"; times are ISO 8601; list cursors are opaque but exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import falcon
import falcon.uri

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_CURSOR = re.compile(r"(-?[0-9]{1,18})_([0-9]{1,19})")
_MAX_ID = 2**63 - 1


def query_params(req: falcon.Request) -> dict[str, str]:
    """The query string with blank values kept; the first value of a repeated name."""
    parsed = falcon.uri.parse_query_string(req.query_string, keep_blank=True)
    return {k: v[0] if isinstance(v, list) else v for k, v in parsed.items()}


def bad(name: str, description: str) -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(title=f"Bad {name}", description=description)


def parse_int(raw: str, name: str, *, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise bad(name, f"{name} is an integer from {low} to {high}")
    return int(raw)


def parse_when(raw: str, name: str) -> datetime:
    """ISO 8601 / RFC 3339; a time without a zone is UTC."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.,+\-Zz]*)?", raw):
            raise ValueError(raw)
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when.astimezone(UTC)  # out of range once moved to UTC → OverflowError
    except (ValueError, OverflowError) as exc:
        raise bad(name, "Use ISO 8601, e.g. 2026-11-25T12:00:00Z") from exc
    return when


def encode_cursor(created_at: datetime, video_id: int) -> str:
    """``<microseconds since 1970>_<id>``: exact (no float), URL-safe."""
    return f"{(created_at - _EPOCH) // _MICRO}_{video_id}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    m = _CURSOR.fullmatch(raw)
    try:
        if m is None or int(m.group(2)) > _MAX_ID:
            raise ValueError(raw)
        return _EPOCH + int(m.group(1)) * _MICRO, int(m.group(2))
    except (ValueError, OverflowError) as exc:
        raise bad("cursor", "Use the 'next' link of the previous page.") from exc
