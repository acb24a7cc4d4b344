"""Permission problems in the inbox: paths the service cannot use, held back until fixed.

A prober takes a file by reading it and moving it out of its folder, as the same user as
the ingest. So before a settled file is published, the ingest asks the kernel
(``access(2)`` with the effective ids: modes, ACLs, groups) whether that user may read the
file and write its folder; and a folder the walk cannot list is one too. Such a path is

* logged once (``inbox permission problem``: the path, what is wrong, the command that
  fixes it) and counted (``videodrop_ingest_permission_errors_total{kind}``; the gauge
  ``videodrop_ingest_blocked_paths`` holds how many wait now);
* not published meanwhile: a prober could only retry it, endlessly;
* looked at again after :data:`FIRST_RETRY` seconds, then twice as long each time up to
  :data:`LONGEST_RETRY` (at once when a change of its mode or ACL is seen), and once it is
  usable, its files are taken (``inbox permission problem fixed``).

Kinds: ``list`` (a folder that cannot be read or entered), ``move`` (a folder files cannot
be moved out of: no write), ``read`` (a file that cannot be read). A root service passes
every such check, as its probers would."""

from __future__ import annotations

import os
import pwd
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videodrop import metrics

FIRST_RETRY = 5.0  # seconds
LONGEST_RETRY = 300.0

PROBLEMS = {
    "list": "the service cannot list this folder (it needs read and execute on it)",
    "move": "the service cannot move files out of this folder (it needs write and execute"
            " on it)",
    "read": "the service cannot read this file",
}
_NEEDS = {"list": os.R_OK | os.X_OK, "move": os.W_OK | os.X_OK, "read": os.R_OK}
_BITS = {"list": "rwx", "move": "rwx", "read": "r"}
_EFFECTIVE = os.access in os.supports_effective_ids  # faccessat(AT_EACCESS): ACLs included


def allowed(path: Path, kind: str) -> bool:
    """The service may do with ``path`` what ``kind`` needs (False when it is gone)."""
    return os.access(path, _NEEDS[kind], effective_ids=_EFFECTIVE)


def fix_for(path: Path, kind: str) -> str:
    """A command that fixes ``kind`` on ``path``: ``chmod g+…`` when the service is in the
    path's group (the inbox's setgid group), else a ``setfacl`` entry for its user."""
    bits, quoted = _BITS[kind], shlex.quote(str(path))
    try:
        gid = os.stat(path).st_gid
    except OSError:
        gid = -1
    if gid == os.getegid() or gid in os.getgroups():
        command = f"chmod g+{bits} {quoted}"
    else:
        command = f"setfacl -m u:{_user()}:{bits} {quoted}"
    return (f"{command} (writers must leave new folders group-writable and files"
            " group-readable: docs/inbox.md, 'Writers and permissions')")


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass
class Blocked:
    path: Path
    kind: str  # list | move | read
    since: float  # clock seconds
    retry_at: float
    wait: float  # seconds until the next look after this one fails


class AccessWatch:
    """The blocked paths of one inbox. ``allowed`` decides (tests give their own);
    ``clock`` is the daemon's monotonic clock."""

    def __init__(self, log: Any, shown: Callable[[Path], str], *,
                 allowed: Callable[[Path, str], bool] = allowed) -> None:
        self.log = log
        self.shown = shown
        self.allowed = allowed
        self.blocked: dict[Path, Blocked] = {}
        # folders found usable at the tick ``_usable_at``: one look a folder per tick
        self._usable: set[Path] = set()
        self._usable_at = float("nan")

    def __len__(self) -> int:
        return len(self.blocked)

    def holds(self, path: Path, now: float) -> bool:
        """True when the settled file at ``path`` must wait: its folder or itself is
        blocked (found now: logged and counted)."""
        folder = path.parent
        if folder in self.blocked or path in self.blocked:
            return True
        if now != self._usable_at:
            self._usable.clear()
            self._usable_at = now
        if folder not in self._usable:
            if not self.allowed(folder, "move"):
                self.block(folder, "move", now)
                return True
            self._usable.add(folder)
        if not self.allowed(path, "read"):
            self.block(path, "read", now)
            return True
        return False

    def block(self, path: Path, kind: str, now: float) -> None:
        """``path`` cannot be used: logged and counted unless it is known already."""
        if path in self.blocked:
            return
        self.blocked[path] = Blocked(path, kind, now, now + FIRST_RETRY, FIRST_RETRY)
        metrics.PERMISSION_ERRORS.labels(kind).inc()
        metrics.BLOCKED_PATHS.set(len(self.blocked))
        self.log.warning("inbox permission problem", path=self.shown(path), kind=kind,
                         problem=PROBLEMS[kind], fix=fix_for(path, kind),
                         retry_in=FIRST_RETRY)

    def nudge(self, path: Path, now: float) -> None:
        """The mode or ACL of ``path`` changed: look again at the next tick."""
        found = self.blocked.get(path)
        if found is not None:
            found.retry_at = now

    def forget(self, path: Path) -> None:
        """``path`` is gone (deleted, moved away): so are its blocks and those below it."""
        for known in [p for p in self.blocked if p == path or path in p.parents]:
            del self.blocked[known]
        metrics.BLOCKED_PATHS.set(len(self.blocked))

    def fixed(self, now: float) -> list[Blocked]:
        """The blocked paths due for a look that are usable now (no longer blocked); the
        others wait twice as long as last time, up to LONGEST_RETRY."""
        usable = []
        for found in [b for b in self.blocked.values() if now >= b.retry_at]:
            if not os.path.lexists(found.path):
                del self.blocked[found.path]
            elif self.allowed(found.path, found.kind):
                del self.blocked[found.path]
                self.log.info("inbox permission problem fixed", path=self.shown(found.path),
                              kind=found.kind, seconds=round(now - found.since, 1))
                usable.append(found)
            else:
                found.wait = min(LONGEST_RETRY, found.wait * 2)
                found.retry_at = now + found.wait
        metrics.BLOCKED_PATHS.set(len(self.blocked))
        return usable
