"""Settle tracking and inbox scanning on real files, with a hand-driven clock."""

import os
import socket
import threading
from pathlib import Path

from ingest.openfiles import open_for_writing
from ingest.policy import InboxPolicy, Refusal
from ingest.scan import FileState, examine
from ingest.settle import SettleTracker
from videodrop.settings import DEFAULT_IGNORE


def state(p: Path) -> FileState:
    return FileState.of(os.lstat(p))


def restat(p: Path):
    try:
        return state(p)
    except FileNotFoundError:
        return None


def never_open(keys):
    return set()


def test_a_quiet_unchanged_file_settles_after_the_window(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x" * 10)
    t = SettleTracker(2.0, never_open)
    t.touch(f, state(f), now=100.0)
    assert t.due(101.9, restat) == []
    assert [c.path for c in t.due(102.0, restat)] == [f]
    assert len(t) == 0


def test_a_change_inside_the_window_starts_it_again(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    t = SettleTracker(2.0, never_open)
    t.touch(f, state(f), now=0.0)
    with f.open("ab") as fh:
        fh.write(b"more")
    assert t.due(2.0, restat) == []  # size changed: another window from now
    assert t.due(3.9, restat) == []
    assert [c.path for c in t.due(4.0, restat)] == [f]


def test_a_file_open_for_writing_waits(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    st = state(f)
    busy = {(st.dev, st.ino)}
    t = SettleTracker(1.0, lambda keys: keys & busy)
    t.touch(f, st, now=0.0)
    assert t.due(5.0, restat) == []
    busy.clear()
    assert [c.path for c in t.due(6.0, restat)] == [f]


def test_writing_flag_waits_for_close(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    t = SettleTracker(1.0, never_open)
    t.touch(f, state(f), now=0.0, writing=True)
    assert t.due(10.0, restat) == []
    t.touch(f, state(f), now=10.0, writing=False)
    assert [c.path for c in t.due(11.0, restat)] == [f]


def test_vanished_files_are_dropped(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    t = SettleTracker(1.0, never_open)
    t.touch(f, state(f), now=0.0)
    f.unlink()
    assert t.due(5.0, restat) == []
    assert len(t) == 0


def test_open_for_writing_sees_a_real_writer(tmp_path):
    f = tmp_path / "w.mp4"
    f.write_bytes(b"x")
    key = (state(f).dev, state(f).ino)
    # Our own process is skipped on purpose, so the writer is a child process.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold the file open for writing until told to stop
        os.close(w)
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        os.read(r, 1)
        os.close(fd)
        os._exit(0)
    os.close(r)
    try:
        deadline = threading.Event()
        for _ in range(200):
            if open_for_writing({key}):
                break
            deadline.wait(0.01)
        assert open_for_writing({key}) == {key}
    finally:
        os.write(w, b"x")
        os.waitpid(pid, 0)
    assert open_for_writing({key}) == set()


def test_examine_refuses_what_must_never_be_published(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    (inbox / "link.mp4").symlink_to(outside)
    os.mkfifo(inbox / "x.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(inbox / "s.mp4"))
    (inbox / "dir.mp4").mkdir()
    (inbox / ".hidden.mp4").write_bytes(b"x")
    (inbox / "ok.mp4").write_bytes(b"x")
    (inbox / "clip.XML").write_bytes(b"<x/>")
    (inbox / "noext").write_bytes(b"x")
    policy = InboxPolicy(DEFAULT_IGNORE)

    def refusal(name: str) -> tuple[str, str] | None:
        found = examine(inbox, inbox / name, policy).refusal
        return (found.code, found.reason) if found else None
    try:
        assert refusal("link.mp4") == ("symlink", "symlink pointing outside the inbox")
        assert refusal("x.mp4") == ("special_file", "not a regular file (FIFO)")
        assert refusal("s.mp4") == ("special_file", "not a regular file (socket)")
        assert examine(inbox, inbox / "dir.mp4", policy).state is None
        hidden = examine(inbox, inbox / ".hidden.mp4", policy)
        assert hidden.state is None and hidden.refusal is None
        assert examine(inbox, inbox / "ok.mp4", policy).state is not None
        assert examine(inbox, outside, policy).state is None  # outside the inbox
        assert refusal("clip.XML") == (
            "extension", "not a video: .xml is not one of VIDEODROP_INBOX_EXTENSIONS")
        assert refusal("noext") == (
            "extension", "not a video: no extension is not one of VIDEODROP_INBOX_EXTENSIONS")
        everything = InboxPolicy(DEFAULT_IGNORE, extensions=frozenset({"*"}))
        assert examine(inbox, inbox / "noext", everything).state is not None
    finally:
        sock.close()


def test_the_policy_by_size():
    policy = InboxPolicy(max_size=1000)
    assert policy.by_size(0) == Refusal("empty", "empty file")
    assert policy.by_size(1000) is None
    assert policy.by_size(1001) == Refusal(
        "too_large", "1001 bytes, over VIDEODROP_INBOX_MAX_FILE_SIZE (1000 bytes)")
    assert InboxPolicy().by_size(10**15) is None  # no limit by default
