"""Reading ffprobe's JSON values, which come as strings, numbers, "N/A" or not at all."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

__all__ = ["as_float", "as_int", "as_rate", "tag"]


def tag(item: Mapping[str, Any], name: str) -> str | None:
    """Tag ``name`` of a stream/format/chapter, any case; ``DURATION-eng`` counts as
    ``DURATION`` (Matroska statistics tags carry a language suffix)."""
    wanted = name.lower()
    for key, value in (item.get("tags") or {}).items():
        if key.lower() == wanted or key.lower().split("-")[0] == wanted:
            return str(value)
    return None


def as_rate(text: Any) -> Fraction | None:
    """``"30000/1001"`` -> Fraction; None for ``0/0``, garbage, a rate <= 0 or one no float
    can hold."""
    try:
        value = Fraction(str(text)) if text else None
        if value is None or value <= 0 or not math.isfinite(float(value)):
            return None
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value


def as_float(value: Any) -> float | None:
    """A finite float; None for "N/A", garbage, "inf" or "nan" (JSON holds neither)."""
    try:
        number = float(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None
