"""The inbox lock (ingest/lock.py) in one process: a second holder is refused naming the
first, a released lock is free again, and a planted symlink is never followed.
Across processes, and after kill -9: tests/integration/test_ingest_lock.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ingest import lock
from videodrop.errors import ConfigurationError
from videodrop.inboxpolicy import INGEST_LOCK, InboxPolicy


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = lock.acquire(tmp_path / "inbox")  # made when missing
    try:
        with pytest.raises(lock.InboxTaken) as taken:
            lock.acquire(tmp_path / "inbox")
        text = str(taken.value)
        assert f"pid {os.getpid()} on {socket.gethostname()} since " in text
        assert str(tmp_path / "inbox") in text and "VIDEODROP_INBOX" in text
    finally:
        first.release()
    lock.acquire(tmp_path / "inbox").release()  # free again


def test_a_symlink_in_place_of_the_lock_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / INGEST_LOCK).symlink_to(target)
    with pytest.raises(ConfigurationError, match="cannot open the ingest lock"):
        lock.acquire(tmp_path / "inbox")
    assert target.read_text() == "keep me"


def test_the_lock_file_is_never_a_file_to_take() -> None:
    everything = InboxPolicy(ignore=(), extensions=frozenset({"*"}))
    assert everything.ignored(INGEST_LOCK)
    assert not everything.ignored("clip.mp4")
