"""Retention rules, read from the TOML file ``VIDEODROP_RETENTION_FILE``.

The file (every key optional; docs/operations.md has the annotated example)::

    [global]
    max_age = "90d"        # an origin's default: expire what is older
    min_age = "1d"         # an origin's default: never expire what is younger, at any pressure
    quota = "2TiB"         # all videos together (uploads included) stay at or under this
    keep_free = "5%"       # the store keeps this free: a percentage or a size ("50GiB")
    drop_rows = false      # true: an expired video's row goes too (no tombstone)

    [uploads]              # origin 'upload'; absent: uploads are kept (no rule applies)
    max_age = "365d"

    [origins."inbox/cam1"] # a folder of the inbox and those under it
    max_age = "30d"
    min_age = "2d"
    quota = "200GiB"
    # keep = true          # exempt the whole origin from every rule (its bytes still count)

Durations: a number and a unit (``s``, ``m``, ``h``, ``d``, ``w``) or whole seconds.
Sizes: as every size setting (``100MB``, ``2GiB``, bytes). A table rules its folder and
the folders under it that have no table of their own (a camera's per-day folders: the
record's origin is the whole folder, ``inbox/cam1/2026-11-30``); its ``quota`` covers them
all together. An origin's ``max_age`` and ``min_age`` fall back to ``[global]``'s. A
problem with the file raises :class:`~videodrop.errors.ConfigurationError` naming the
file, the table and the key (the ``videodrop`` command exits 78).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from videodrop.errors import ConfigurationError
from videodrop.settings import SettingsError, parse_size

#: The rules a removal names as its reason (``expired_reason``, metrics' ``rule`` label).
RULES = ("max_age", "origin_quota", "global_quota", "free_space")
UPLOAD = "upload"

_ORIGIN_KEYS = frozenset({"max_age", "min_age", "quota", "keep"})
_GLOBAL_KEYS = frozenset({"max_age", "min_age", "quota", "keep_free", "drop_rows"})
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest age a rule may name: a pass subtracts it from today (a longer one could not
#: be a date; for "never", leave max_age out or keep the origin).
LONGEST = timedelta(days=36500)


@dataclass(frozen=True)
class OriginRule:
    """What applies to one origin: ``keep`` (no rule removes anything of it), the age
    beyond which a video expires (None: none), the age under which nothing expires, and
    the origin's quota in bytes (None: none)."""

    keep: bool = False
    max_age: timedelta | None = None
    min_age: timedelta = timedelta(0)
    quota: int | None = None


KEEP = OriginRule(keep=True)


@dataclass(frozen=True)
class Rules:
    """The whole file. ``origins`` holds the tables as written (None where a key was not
    given); :meth:`for_origin` resolves the fall-backs."""

    max_age: timedelta | None = None
    min_age: timedelta = timedelta(0)
    quota: int | None = None
    keep_free_percent: float | None = None
    keep_free_bytes: int | None = None
    drop_rows: bool = False
    uploads: dict[str, Any] | None = None
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)

    def governing(self, origin: str) -> str:
        """The table that rules ``origin``: the origin's own, else its nearest parent
        folder's (``inbox/cam1`` rules ``inbox/cam1/2026-11-30``); the origin itself when
        none does. The videos of every origin a table rules share its quota."""
        name = origin
        while name not in self.origins and "/" in name:
            name = name.rsplit("/", 1)[0]
        return name if name in self.origins else origin

    def for_origin(self, origin: str) -> OriginRule:
        """The rule of ``origin`` (``upload`` without an ``[uploads]`` table: keep), from
        the table that rules it (:meth:`governing`)."""
        if origin == UPLOAD:
            if self.uploads is None:
                return KEEP
            table = self.uploads
        else:
            table = self.origins.get(self.governing(origin), {})
        max_age = table.get("max_age", self.max_age)
        return OriginRule(keep=table.get("keep", False), max_age=max_age,
                          min_age=table.get("min_age", self.min_age), quota=table.get("quota"))

    def keep_free(self, total_bytes: int) -> int | None:
        """Bytes the store must keep free, of a store of ``total_bytes`` (None: no floor)."""
        floors = [v for v in (self.keep_free_bytes,
                              None if self.keep_free_percent is None
                              else int(total_bytes * self.keep_free_percent / 100)) if v]
        return max(floors) if floors else None

    @property
    def empty(self) -> bool:
        """No rule would ever remove anything."""
        return (self.max_age is None and self.quota is None and self.keep_free(1 << 60) is None
                and not any(self.for_origin(o).quota or self.for_origin(o).max_age
                            for o in [*self.origins, UPLOAD]))


def load(path: Path) -> Rules:
    """The rules of the TOML file at ``path``; ConfigurationError naming the problem."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"VIDEODROP_RETENTION_FILE={path}: cannot read it: {exc}"
                                 ) from exc
    try:
        return parse(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigurationError(f"VIDEODROP_RETENTION_FILE={path}: {exc}") from exc


def parse(text: str) -> Rules:
    """The rules of a TOML document; ValueError naming the table and key at fault."""
    doc = tomllib.loads(text)
    unknown = sorted(set(doc) - {"global", "uploads", "origins"})
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}; known: global, uploads,"
                         " origins")
    top = _table(doc, "global", "[global]")
    _only(top, _GLOBAL_KEYS, "[global]")
    base = _origin_table(top, "[global]", keys=_ORIGIN_KEYS - {"keep", "quota"})
    percent, floor = _keep_free(top.get("keep_free"))
    drop_rows = top.get("drop_rows", False)
    if not isinstance(drop_rows, bool):
        raise ValueError("[global] drop_rows: true or false")
    origins: dict[str, dict[str, Any]] = {}
    for name, table in _table(doc, "origins", "[origins]").items():
        where = f'[origins."{name}"]'
        if name == UPLOAD:
            raise ValueError(f"{where}: uploads have their own table, [uploads]")
        if name != "inbox" and not (name.startswith("inbox/") and all(
                part not in ("", ".", "..") for part in name.split("/")[1:])):
            raise ValueError(f"{where}: an origin is 'inbox' or 'inbox/<subfolder>'"
                             " (as the record's origin says)")
        if not isinstance(table, dict):
            raise ValueError(f"{where}: a table of max_age, min_age, quota, keep")
        origins[name] = _origin_table(table, where)
    uploads = (_origin_table(_table(doc, "uploads", "[uploads]"), "[uploads]")
               if "uploads" in doc else None)
    rules = Rules(max_age=base.get("max_age"), min_age=base.get("min_age", timedelta(0)),
                  quota=_size(top, "quota", "[global]"), keep_free_percent=percent,
                  keep_free_bytes=floor, drop_rows=drop_rows, uploads=uploads, origins=origins)
    for origin in [*origins, UPLOAD]:
        rule = rules.for_origin(origin)
        if rule.max_age is not None and rule.max_age <= rule.min_age:
            where = "[uploads]" if origin == UPLOAD else f'[origins."{origin}"]'
            raise ValueError(f"{where}: max_age ({rule.max_age}) must be longer than min_age"
                             f" ({rule.min_age})")
    if rules.max_age is not None and rules.max_age <= rules.min_age:
        raise ValueError(f"[global]: max_age ({rules.max_age}) must be longer than min_age"
                         f" ({rules.min_age})")
    return rules


def parse_duration(value: object, where: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` or whole seconds → a timedelta
    of at most :data:`LONGEST`; ValueError naming ``where`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise ValueError(f"{where}: not a duration: {value!r} (use e.g. 30d, 12h, 90m or"
                             " seconds)")
        seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"{where}: at most {LONGEST.days}d: {value!r} (for no limit, leave"
                         " it out)")
    return timedelta(seconds=seconds)


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a table")
    return value


def _only(table: dict[str, Any], keys: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known:"
                         f" {', '.join(sorted(keys))}")


def _origin_table(table: dict[str, Any], where: str, keys: frozenset[str] = _ORIGIN_KEYS
                  ) -> dict[str, Any]:
    """A table's keys, parsed (only the keys given)."""
    if where != "[global]":
        _only(table, keys, where)
    out: dict[str, Any] = {}
    for key in ("max_age", "min_age"):
        if key in table:
            out[key] = parse_duration(table[key], f"{where} {key}")
    if "quota" in keys and "quota" in table:
        out["quota"] = _size(table, "quota", where)
    if "keep" in keys and "keep" in table:
        if not isinstance(table["keep"], bool):
            raise ValueError(f"{where} keep: true or false")
        out["keep"] = table["keep"]
        beside = sorted(set(out) - {"keep"})
        if out["keep"] and beside:
            raise ValueError(f"{where}: keep = true exempts it from every rule; remove"
                             f" {', '.join(beside)}")
    return out


def _size(table: dict[str, Any], key: str, where: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    try:
        size = parse_size(value) if isinstance(value, str) else 0
    except SettingsError as exc:
        raise ValueError(f"{where} {key}: {exc}") from exc
    if size <= 0:
        raise ValueError(f"{where} {key}: a size of 1 byte or more (e.g. 200GiB): {value!r}")
    return size


def _keep_free(value: object) -> tuple[float | None, int | None]:
    """``keep_free``: ``"5%"`` → (5.0, None); ``"50GiB"`` → (None, 53687091200)."""
    if value is None:
        return None, None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent < 100:
            raise ValueError(f"[global] keep_free: a percentage over 0 and under 100: {value!r}")
        return percent, None
    return None, _size({"keep_free": value}, "keep_free", "[global]")


__all__ = ["KEEP", "RULES", "UPLOAD", "OriginRule", "Rules", "load", "parse", "parse_duration"]
