"""Moving a claimed file into the store (prober/store.py), on real file systems."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from prober import store
from videodrop import media
from videodrop.messages import InboxFile

SHM = Path("/dev/shm")


def key(path: Path) -> InboxFile:
    st = os.lstat(path)
    return InboxFile(path.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                     st.st_ctime_ns)


@pytest.fixture
def other_file_system(tmp_path):
    """An inbox folder on another file system than ``tmp_path`` (tmpfs)."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        why = "no second file system (/dev/shm) here"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    folder = SHM / f"vdtest-inbox-{secrets.token_hex(4)}"
    folder.mkdir()
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def test_across_file_systems_the_inbox_copy_goes_only_after_the_store_is_durable(
        tmp_path, other_file_system, monkeypatch):
    src = other_file_system / "clip.mp4"
    src.write_bytes(b"video bytes" * 1000)
    dst = tmp_path / "videos" / "file_1" / "clip.mp4"
    synced: list[tuple[Path, bool, bool]] = []
    real_fsync_dir = media.fsync_dir

    def watched(folder: Path) -> None:
        real_fsync_dir(folder)
        synced.append((folder, dst.exists(), src.exists()))

    monkeypatch.setattr(media, "fsync_dir", watched)
    store.move_into_store(src, dst, key(src))
    assert dst.read_bytes() == b"video bytes" * 1000 and not src.exists()
    # the store's folder was made durable with the file in it, the inbox copy still there
    assert (dst.parent, True, True) in synced
    assert not list(dst.parent.glob(".*.part"))


def test_within_a_file_system_a_rename_made_durable(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    src = inbox / "clip.mp4"
    src.write_bytes(b"x" * 100)
    dst = tmp_path / "media" / "videos" / "file_1" / "clip.mp4"
    synced: list[Path] = []
    monkeypatch.setattr(media, "fsync_dir", synced.append)
    ino = os.lstat(src).st_ino
    store.move_into_store(src, dst, key(src))
    assert os.lstat(dst).st_ino == ino and not src.exists()  # renamed, not copied
    assert synced == [dst.parent]
