"""Removing empty folders of the inbox (``cam1/2026-11-30/`` once its files are stored).

A folder is removed once it has been empty, and unchanged, for ``after`` seconds
(``VIDEODROP_INBOX_PRUNE_AFTER``; 0 turns this off) — never the inbox itself, never a
folder less than ``depth`` deep (``VIDEODROP_INBOX_PRUNE_DEPTH``: at 2 the inbox's own
subfolders, often a writer's configured target, stay), never a folder with a hidden or
temporary name or below one (a writer's staging folder), never one holding anything
(hidden and partial files included).

Safe against a writer at the same instant: "unchanged" compares the folder's inode, mtime
and ctime, which every entry made or removed in it moves, so a file that came and went
restarts the window; and the removal is ``rmdir(2)``, which fails on a folder that holds
anything, so a file created at that very moment stays, in its folder. A writer that made
the folder and creates its file only after a pause longer than the window finds it gone
(its open fails: ENOENT) and must make it again, as ``mkdir -p`` and most cameras do. A
folder made again is seen (watched again) like any new folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videodrop import metrics

Key = tuple[int, int, int, int]  # dev, inode, mtime_ns, ctime_ns of the folder


class Pruner:
    """Candidates (folders that looked empty) with the time their window started."""

    def __init__(self, inbox: Path, *, after: float, depth: int,
                 ignored: Callable[[str], bool], log: Any, shown: Callable[[Path], str]) -> None:
        self.inbox, self.after, self.depth = inbox, after, depth
        self.ignored, self.log, self.shown = ignored, log, shown
        self.waiting: dict[Path, tuple[Key, float]] = {}
        self.next_due = float("inf")  # no candidate's window ends before this

    def __len__(self) -> int:
        return len(self.waiting)

    def eligible(self, folder: Path) -> bool:
        if self.after <= 0:
            return False
        try:
            parts = folder.relative_to(self.inbox).parts
        except ValueError:
            return False
        return len(parts) >= self.depth and not any(self.ignored(p) for p in parts)

    def note(self, folder: Path, now: float) -> None:
        """``folder`` may be empty now (a file left it, it appeared, a walk found it
        empty): its window starts, unless it is running already for this very state."""
        if not self.eligible(folder):
            return
        key = empty_key(folder)
        if key is None:
            self.waiting.pop(folder, None)
        elif folder not in self.waiting or self.waiting[folder][0] != key:
            self.waiting[folder] = (key, now)
            self.next_due = min(self.next_due, now + self.after)

    def prune(self, now: float) -> list[Path]:
        """Remove the folders empty and unchanged for a whole window; the folders removed.
        A parent left empty starts a window of its own."""
        removed: list[Path] = []
        if now < self.next_due:
            return removed
        self.next_due = float("inf")
        for folder, (key, since) in list(self.waiting.items()):
            if now - since < self.after:
                self.next_due = min(self.next_due, since + self.after)
                continue
            del self.waiting[folder]
            current = empty_key(folder)
            if current is None:
                continue  # not empty (it comes back when a file leaves it), or gone
            if current != key:  # something came and went: a new window
                self.waiting[folder] = (current, now)
                self.next_due = min(self.next_due, now + self.after)
                continue
            try:
                os.rmdir(folder)  # fails on a folder that holds anything: nothing is lost
            except OSError as exc:
                self.log.debug("empty folder kept", path=self.shown(folder), error=exc.strerror)
                continue
            removed.append(folder)
            metrics.FOLDERS_REMOVED.inc()
            self.log.info("empty folder removed", path=self.shown(folder),
                          empty_for=round(now - since, 1))
            self.note(folder.parent, now)
        return removed

    def forget(self, path: Path) -> None:
        """``path`` is gone: so are the candidates at and below it."""
        for known in [p for p in self.waiting if p == path or path in p.parents]:
            del self.waiting[known]


def empty_key(folder: Path) -> Key | None:
    """The folder's :data:`Key` when it is a folder (not a link) holding nothing; else
    None (gone, not a folder, not listable, or holding any entry)."""
    try:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            return None
        with os.scandir(folder) as entries:
            if next(entries, None) is not None:
                return None
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
