"""Per-origin settings of the timeline (docs/timeline.md): which folder is one camera's
timeline, its recorders' time zone, whether its containers' ``creation_time`` is UTC or
local wall time, file name patterns of its own, the gap tolerance, and the activity level
its day strip marks (videodrop/activity.py).

Read from the TOML file ``VIDEODROP_ORIGINS_FILE`` (example: ``deploy/origins.toml``)
once at a role's edge; no file means the defaults for every origin::

    [defaults]                      # every origin not named below
    timezone = "UTC"                # IANA name: file name stamps are wall time there
    creation_time = "utc"           # utc | local (the digits are wall time) | ignore
    gap_tolerance = 1.0             # seconds: shorter holes and overlaps are joins
    patterns = []                   # regular expressions, tried before the built-in ones
    activity_threshold = 1.0        # levels (0..255): a second at or over it is activity

    [origins."inbox/cam1"]          # this folder and everything under it
    timezone = "Europe/Berlin"
    creation_time = "local"

A pattern is a Python regular expression searched in the file's name, with named groups
``year``, ``month``, ``day``, ``hour``, ``minute``, ``second`` and optional ``fraction``
(digits after the second), or ``epoch`` (Unix seconds; ``epoch_ms`` milliseconds). A
pattern without the date groups takes the date from the nearest folder named
``YYYY-MM-DD`` or ``YYYYMMDD`` (as the Dahua pattern does).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from videodrop.errors import ConfigurationError

CREATION_TIMES = ("utc", "local", "ignore")
DEFAULT_TOLERANCE = 1.0  # seconds
#: The scenes' activity (mean absolute difference of consecutive frames, levels) at or over
#: which a second counts as activity on the day strip: over a still camera's noise.
DEFAULT_ACTIVITY_THRESHOLD = 1.0
_KEYS = {"timezone", "creation_time", "gap_tolerance", "patterns", "activity_threshold"}
_TIME_GROUPS = {"hour", "minute", "second"}


@dataclass(frozen=True)
class OriginRule:
    """How one origin's recordings get their wall-clock times."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    creation_time: str = "utc"  # one of CREATION_TIMES
    gap_tolerance: float = DEFAULT_TOLERANCE  # seconds, ≥ 0
    patterns: tuple[re.Pattern[str], ...] = ()
    activity_threshold: float = DEFAULT_ACTIVITY_THRESHOLD  # levels, over 0, at most 255


@dataclass(frozen=True)
class OriginRules:
    """The rules of every origin named in the file, and the defaults of the others."""

    default: OriginRule = field(default_factory=OriginRule)
    named: Mapping[str, OriginRule] = field(default_factory=dict)

    def timeline_origin(self, origin: str) -> str:
        """The origin whose timeline a video of ``origin`` (``inbox/cam1/2026-11-30``) is
        on: the longest origin named in the file that is ``origin`` or a folder above it;
        else the inbox's first-level folder (``inbox/cam1``); else ``origin`` itself
        (``inbox``, ``upload``)."""
        for name in sorted(self.named, key=len, reverse=True):
            if origin == name or origin.startswith(name + "/"):
                return name
        parts = origin.split("/")
        if parts[0] == "inbox" and len(parts) > 1:
            return "/".join(parts[:2])
        return origin

    def rule(self, timeline_origin: str) -> OriginRule:
        return self.named.get(timeline_origin, self.default)

    @classmethod
    def load(cls, path: Path | None) -> OriginRules:
        """The rules of the TOML file at ``path`` (None: the defaults everywhere).
        :class:`ConfigurationError` naming the file and the key when it cannot be used."""
        if path is None:
            return cls()
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"VIDEODROP_ORIGINS_FILE={path}: cannot read it: {exc}"
                                     ) from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, where: str = "origins file") -> OriginRules:
        """The rules of a TOML text (see the module); :class:`ConfigurationError` names
        ``where`` and what is wrong."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{where}: not TOML: {exc}") from exc
        unknown = set(data) - {"defaults", "origins"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}"
                                     " (use [defaults] and [origins.\"<folder>\"])")
        default = _rule(data.get("defaults", {}), OriginRule(), f"{where} [defaults]")
        origins = data.get("origins", {})
        if not isinstance(origins, dict):
            raise ConfigurationError(f"{where}: origins must be a table of tables")
        named = {}
        for name, table in origins.items():
            clean = name.strip("/")
            if not (clean in {"upload", "inbox"} or clean.startswith("inbox/")):
                raise ConfigurationError(f"{where}: origin {name!r} is no origin: 'upload',"
                                         " 'inbox' or 'inbox/<folder>[/<folder>…]'")
            named[clean] = _rule(table, default, f"{where} [origins.{name!r}]")
        return cls(default, named)


def _rule(table: Any, base: OriginRule, where: str) -> OriginRule:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}"
                                 f" (known: {', '.join(sorted(_KEYS))})")
    zone = base.timezone
    if "timezone" in table:
        try:
            zone = ZoneInfo(str(table["timezone"]))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"{where}: timezone {table['timezone']!r} is no IANA"
                                     " time zone (e.g. 'Europe/Berlin', 'UTC')") from exc
    creation = table.get("creation_time", base.creation_time)
    if creation not in CREATION_TIMES:
        raise ConfigurationError(f"{where}: creation_time must be one of"
                                 f" {', '.join(CREATION_TIMES)}")
    tolerance = table.get("gap_tolerance", base.gap_tolerance)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
            0 <= tolerance <= 3600):
        raise ConfigurationError(f"{where}: gap_tolerance must be 0 to 3600 seconds")
    patterns = base.patterns
    if "patterns" in table:
        given = table["patterns"]
        if not isinstance(given, list) or not all(isinstance(p, str) for p in given):
            raise ConfigurationError(f"{where}: patterns must be a list of strings")
        patterns = tuple(_pattern(p, where) for p in given)
    threshold = table.get("activity_threshold", base.activity_threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            0 < threshold <= 255):
        raise ConfigurationError(f"{where}: activity_threshold must be over 0 and at most"
                                 " 255 levels")
    return OriginRule(zone, creation, float(tolerance), patterns, float(threshold))


def _pattern(text: str, where: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise ConfigurationError(f"{where}: pattern {text!r} is no regular expression: {exc}"
                                 ) from exc
    groups = set(pattern.groupindex)
    if not ({"epoch", "epoch_ms"} & groups or groups >= _TIME_GROUPS):
        raise ConfigurationError(f"{where}: pattern {text!r} names neither (?P<epoch>…) nor"
                                 " the groups hour, minute and second")
    return pattern
