"""Empty camera folders (issue 17): once the prober has moved their files out, day folders
of the inbox are removed after VIDEODROP_INBOX_PRUNE_AFTER, never the inbox's own
subfolders (depth 1), never a folder holding a partial file or a hidden staging folder;
a folder made again is watched again; and a writer racing the removal never loses a file
(it may have to make the folder again, as cameras do). Real ingest and prober processes."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

from tests.harness import System, wait_for

CLIP = "tiny_av1.mp4"


def removed(system: System) -> list[str]:
    return [e["path"] for e in system.log_events("ingest", "empty folder removed")]


def published(system: System) -> list[str]:
    return [e["path"] for e in system.log_events("ingest", "published")]


def drop(folder: Path, name: str, data: bytes) -> None:
    """As a camera: the folder made when missing, the file written under a temporary name
    and renamed into place; a folder removed under it is made again."""
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f".{name}.part").write_bytes(data)
            os.rename(folder / f".{name}.part", folder / name)
            return
        except FileNotFoundError:
            continue  # removed between our mkdir and our write: make it again


def test_empty_day_folders_go_and_nothing_else(make_system, samples) -> None:
    system: System = make_system(VIDEODROP_INBOX_PRUNE_AFTER="1",
                                 VIDEODROP_RESCAN_SECONDS="3600")
    data = (samples / CLIP).read_bytes()
    inbox = system.inbox
    (inbox / "cam1" / "2026-11-29").mkdir(parents=True)  # left empty by an earlier run
    (inbox / "cam1" / "partial").mkdir()
    (inbox / "cam1" / "partial" / "clip.mp4.part").write_bytes(b"half")
    (inbox / "cam1" / ".staging").mkdir()
    (inbox / "empty-top").mkdir()
    system.start("prober", "ingest")
    wait_for(lambda: "cam1/2026-11-29" in removed(system), what="the empty day folder removed")

    drop(inbox / "cam2" / "2026-11-30", "clip.mp4", data)
    wait_for(lambda: "cam2/2026-11-30" in removed(system), timeout=60,
             what="the day folder removed once its file was stored")
    assert "cam2/2026-11-30/clip.mp4" in published(system)
    drop(inbox / "cam2" / "2026-11-30", "again.mp4", data)  # the same folder, made again
    wait_for(lambda: removed(system).count("cam2/2026-11-30") == 2, timeout=60,
             what="the folder made again watched, its file taken, and removed again")
    assert "cam2/2026-11-30/again.mp4" in published(system)
    for kept in ("cam1", "cam2", "empty-top", "cam1/partial", "cam1/.staging"):
        assert (inbox / kept).is_dir(), kept
    assert (inbox / "cam1" / "partial" / "clip.mp4.part").read_bytes() == b"half"
    assert set(removed(system)) == {"cam1/2026-11-29", "cam2/2026-11-30"}


def test_a_writer_racing_the_removal_never_loses_a_file(make_system, samples) -> None:
    """Removal as soon as a folder is empty (a window of 1 ms), while a camera writes its
    next file each time the prober has taken the last one, i.e. just when the folder
    turns empty: whether its write comes before the removal, after it, or between its
    mkdir and its file, each file it wrote is stored, once."""
    system: System = make_system(VIDEODROP_INBOX_PRUNE_AFTER="0.001",
                                 VIDEODROP_RESCAN_SECONDS="3600")
    data = (samples / CLIP).read_bytes()
    system.start()
    folder = system.inbox / "cam" / "day"
    names = [f"race-{i:02d}.mp4" for i in range(30)]
    pace, pauses = threading.Event(), random.Random(17)
    for name in names:
        drop(folder, name, data)
        wait_for(lambda n=name: not (folder / n).exists(), what=f"{name} taken")
        pace.wait(pauses.uniform(0, 0.3))  # the camera's pace: before, at or after a removal
    items = system.wait_done(len(names), timeout=180)
    assert sorted(v["original_filename"] for v in items) == names
    assert {v["status"] for v in items} == {"ready"}
    assert sorted(published(system)) == [f"cam/day/{n}" for n in names]
    wait_for(lambda: "cam/day" in removed(system), what="the folder removed once empty")
