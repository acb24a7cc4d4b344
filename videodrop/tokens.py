"""Access tokens and generated identifiers."""

from __future__ import annotations

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
