"""Settle tracking: a candidate becomes *settled* once nothing has happened to it for a
settle window, its size/mtime/ctime are unchanged across that window (a ctime moved by a
link-count change alone does not count: ``FileState.unchanged``), and no local process
holds it open for writing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.scan import FileState

OpenForWriting = Callable[[set[tuple[int, int]]], set[tuple[int, int]]]


@dataclass
class Candidate:
    """A file being watched until it settles: its path, its state at the last look."""

    path: Path
    state: FileState
    quiet_since: float  # monotonic time of the last event or change
    writing: bool = False  # inotify saw a write and no close yet


class SettleTracker:
    """The candidates by path. ``settle_seconds``: the quiet window; ``open_for_writing``
    answers which (dev, ino) pairs a local process holds open for writing."""

    def __init__(self, settle_seconds: float, open_for_writing: OpenForWriting) -> None:
        self.settle = settle_seconds
        self.open_for_writing = open_for_writing
        self.candidates: dict[Path, Candidate] = {}

    def __len__(self) -> int:
        return len(self.candidates)

    def touch(self, path: Path, state: FileState, now: float,
              writing: bool | None = None, *, finished: bool = False) -> bool:
        """Something happened to ``path``: (re)start its window. True if it is new.
        ``writing`` True: a writer has it open (wait for its close); None: unchanged.
        ``finished``: the event itself says the file is complete (renamed into place), so
        no window: it is due at once (``due`` still re-stats it and asks /proc whether a
        local process holds it open for writing)."""
        quiet_since = now - self.settle if finished else now
        known = self.candidates.get(path)
        if known is None:
            self.candidates[path] = Candidate(path, state, quiet_since, bool(writing))
            return True
        known.state, known.quiet_since = state, quiet_since
        if writing is not None:
            known.writing = writing
        return False

    def forget(self, path: Path) -> None:
        self.candidates.pop(path, None)

    def forget_below(self, folder: Path) -> None:
        for path in [p for p in self.candidates if folder in p.parents]:
            del self.candidates[path]

    def due(self, now: float, restat: Callable[[Path], FileState | None]) -> list[Candidate]:
        """Candidates that have settled; they are removed from tracking."""
        ripe = [c for c in self.candidates.values()
                if not c.writing and now - c.quiet_since >= self.settle]
        if not ripe:
            return []
        checked: list[Candidate] = []
        for cand in ripe:
            current = restat(cand.path)
            if current is None:  # gone (renamed away, deleted) or no longer a regular file
                del self.candidates[cand.path]
            elif not cand.state.unchanged(current):  # still changing: another window
                cand.state, cand.quiet_since = current, now
            else:
                cand.state = current  # the latest ctime goes into the message
                checked.append(cand)
        busy = self.open_for_writing({(c.state.file.dev, c.state.file.ino) for c in checked})
        settled = []
        for cand in checked:
            if (cand.state.file.dev, cand.state.file.ino) in busy:
                cand.quiet_since = now  # an open writer: wait for its close
            else:
                del self.candidates[cand.path]
                settled.append(cand)
        return settled
