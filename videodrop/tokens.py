"""Access tokens and generated identifiers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

TokenFactory = Callable[[], str]
Clock = Callable[[], datetime]


def new_token() -> str:
    """256 bits from ``secrets``, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_source_id(now: datetime | None = None) -> str:
    """Unique without coordination: a UTC timestamp for order plus 48 random bits."""
    now = now or utcnow()
    return f"file_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(6)}"


def token_prefix(token: str | None) -> str:
    """What may be logged of a token: its first 6 characters."""
    return (token[:6] + "…") if token else "-"


# A token as it shows up in text (a URL path or query, a link's file name, a message quoting
# either): a run of at least a token's length (43) of the URL-safe base64 alphabet, any of
# whose characters may be %-encoded (%4A, %4a; %254A, encoded twice, is a run too).
TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2}){43,}")


def redact_tokens(text: str) -> str:
    """``text`` with every token-shaped run cut to what :func:`token_prefix` keeps
    (``/stream/Jx0iAbQ…/video.mp4``): for text that may quote a token (a request's path, an
    error message naming a stream link), before it is logged."""
    if len(text) < 43:
        return text
    return TOKEN_SHAPED.sub(lambda m: token_prefix(m.group()), text)
