"""Named SQL statements, read once from the ``*.sql`` files beside this module."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def queries() -> dict[str, str]:
    named: dict[str, str] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        parts = _NAME.split(entry.read_text("utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in named:
                raise ValueError(f"SQL statement {name!r} is defined twice ({entry.name})")
            lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
            named[name] = "\n".join(lines).strip().rstrip(";")
    return named


def query(name: str) -> str:
    return queries()[name]
