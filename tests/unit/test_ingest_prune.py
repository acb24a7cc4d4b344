"""Empty inbox folders (ingest/prune.py) on real folders, with a clock of the test's: gone
after a whole window empty and unchanged, never the inbox, never too shallow, never a
folder holding anything (hidden and partial files included), never a hidden staging
folder; a file that came and went restarts the window; a file created before the
removal stays where it was written. The real daemon: tests/integration/test_inbox_prune.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ingest.prune import Pruner
from videodrop.inboxpolicy import InboxPolicy
from videodrop.settings import DEFAULT_IGNORE

WINDOW = 60.0


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def info(self, event: str, **_: Any) -> None:
        self.events.append(event)

    debug = info


def pruner(inbox: Path, after: float = WINDOW, depth: int = 2) -> Pruner:
    return Pruner(inbox, after=after, depth=depth, ignored=InboxPolicy(DEFAULT_IGNORE).ignored,
                  log=Log(), shown=str)


def test_an_empty_day_folder_goes_after_a_whole_window(tmp_path: Path) -> None:
    day = tmp_path / "cam1" / "2026-11-30"
    day.mkdir(parents=True)
    p = pruner(tmp_path)
    for folder in (tmp_path, tmp_path / "cam1", day):
        p.note(folder, 0.0)
    assert list(p.waiting) == [day]  # the inbox and its own subfolders are never candidates
    assert p.prune(WINDOW - 1) == [] and day.is_dir()
    assert p.prune(WINDOW) == [day]
    assert not day.exists() and (tmp_path / "cam1").is_dir()


def test_depth_one_takes_the_inbox_subfolders_but_never_the_inbox(tmp_path: Path) -> None:
    (tmp_path / "cam1").mkdir()
    p = pruner(tmp_path, depth=1)
    p.note(tmp_path / "cam1", 0.0)
    p.note(tmp_path, 0.0)
    assert p.prune(WINDOW) == [tmp_path / "cam1"]
    assert p.prune(10 * WINDOW) == [] and tmp_path.is_dir()


def test_folders_holding_anything_and_hidden_folders_stay(tmp_path: Path) -> None:
    partial = tmp_path / "cam1" / "a"
    hidden = tmp_path / "cam1" / "b"
    staging = tmp_path / "cam1" / ".staging"
    below = tmp_path / ".incoming" / "x"
    for folder in (partial, hidden, staging, below):
        folder.mkdir(parents=True)
    (partial / "clip.mp4.part").write_bytes(b"x")
    (hidden / ".clip.mp4.Xy12").write_bytes(b"x")
    p = pruner(tmp_path)
    for folder in (partial, hidden, staging, below):
        p.note(folder, 0.0)
    assert p.prune(10 * WINDOW) == []
    assert all(f.is_dir() for f in (partial, hidden, staging, below))
    assert (partial / "clip.mp4.part").exists() and (hidden / ".clip.mp4.Xy12").exists()


def test_a_file_that_came_and_went_restarts_the_window(tmp_path: Path) -> None:
    day = tmp_path / "cam1" / "day"
    day.mkdir(parents=True)
    os.utime(day, (1, 1))  # file times tick coarsely: make the change below show
    p = pruner(tmp_path)
    p.note(day, 0.0)
    (day / "clip.mp4").write_bytes(b"x")  # a writer, its file taken meanwhile
    (day / "clip.mp4").unlink()
    assert p.prune(WINDOW) == [] and day.is_dir()  # changed: a new window from now
    assert p.prune(2 * WINDOW - 1) == []
    assert p.prune(2 * WINDOW) == [day]


def test_a_file_written_before_the_removal_stays_in_its_folder(tmp_path: Path) -> None:
    day = tmp_path / "cam1" / "day"
    day.mkdir(parents=True)
    p = pruner(tmp_path)
    p.note(day, 0.0)
    (day / "clip.mp4").write_bytes(b"frames")  # at the last moment
    assert p.prune(WINDOW) == []
    assert (day / "clip.mp4").read_bytes() == b"frames"
    assert len(p) == 0  # it comes back when the file leaves the folder
    (day / "clip.mp4").unlink()
    p.note(day, WINDOW)
    assert p.prune(2 * WINDOW) == [day]


def test_a_parent_left_empty_gets_a_window_of_its_own(tmp_path: Path) -> None:
    leaf = tmp_path / "cam1" / "2026" / "11-30"
    leaf.mkdir(parents=True)
    p = pruner(tmp_path)
    p.note(leaf, 0.0)
    assert p.prune(WINDOW) == [leaf]
    assert p.prune(2 * WINDOW - 1) == []
    assert p.prune(2 * WINDOW) == [leaf.parent]
    assert (tmp_path / "cam1").is_dir()


def test_zero_turns_it_off(tmp_path: Path) -> None:
    (tmp_path / "cam1" / "day").mkdir(parents=True)
    p = pruner(tmp_path, after=0)
    p.note(tmp_path / "cam1" / "day", 0.0)
    assert len(p) == 0 and p.prune(1e9) == []
