"""Settle tracking and inbox scanning on real files, with a hand-driven clock."""

import os
import socket
import threading
from pathlib import Path

from ingest.openfiles import open_for_writing
from ingest.scan import FileState, examine
from ingest.settle import SettleTracker
from videodrop.inboxpolicy import InboxPolicy, Refusal
from videodrop.settings import DEFAULT_IGNORE


def state(p: Path) -> FileState:
    return FileState.of(p.name, os.lstat(p))


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
    busy = {(st.file.dev, st.file.ino)}
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
    key = (state(f).file.dev, state(f).file.ino)
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


# --- hard links: a link-count change moves the ctime but is not a write -----------------

def next_tick(folder: Path, ctime_ns: int) -> None:
    """Return once the file system's clock stamps a ctime later than ``ctime_ns`` (its
    timestamps are coarse: two changes within a tick would look like none)."""
    probe = folder / ".tick"
    while True:
        probe.write_bytes(b"")
        if os.lstat(probe).st_ctime_ns > ctime_ns:
            probe.unlink()
            return


def test_linking_and_unlinking_other_names_does_not_restart_the_window(tmp_path):
    """cp -al, ln, and a prober removing the first name: each moves the inode's ctime under
    every name. Both names are due one window after they were seen, not one per change."""
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"x" * 100)
    t = SettleTracker(1.0, never_open)
    t.touch(a, state(a), now=0.0)
    next_tick(tmp_path, state(a).file.ctime_ns)
    os.link(a, b)  # b appears: a's ctime moves
    t.touch(b, state(b), now=0.5)
    assert state(a).file.ctime_ns != t.candidates[a].state.file.ctime_ns
    assert [c.path for c in t.due(1.0, restat)] == [a]
    seen = state(b).file.ctime_ns
    next_tick(tmp_path, seen)
    a.unlink()  # the prober took a: b's ctime moves
    assert os.lstat(b).st_ctime_ns != seen
    [due] = t.due(1.5, restat)
    assert due.path == b
    assert due.state.file.ctime_ns == os.lstat(b).st_ctime_ns  # the message carries the latest


def test_a_rewrite_with_its_mtime_put_back_still_restarts_the_window(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x" * 100)
    before = os.lstat(f)
    t = SettleTracker(1.0, never_open)
    t.touch(f, state(f), now=0.0)
    next_tick(tmp_path, before.st_ctime_ns)
    f.write_bytes(b"y" * 100)  # same size...
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and mtime put back
    assert t.due(1.0, restat) == []  # only the ctime tells: another window
    assert [c.path for c in t.due(2.0, restat)] == [f]


def test_a_candidate_holds_the_message_the_ingest_will_publish(tmp_path):
    """One claim key type: the state the ingest tracks carries the message contract's
    InboxFile (inbox-relative path and the lstat numbers), with nothing to convert."""
    from videodrop.messages import InboxFile, decode, encode

    inbox = tmp_path / "inbox"
    (inbox / "cam").mkdir(parents=True)
    (inbox / "cam" / "a.mp4").write_bytes(b"x" * 10)
    found = examine(inbox, inbox / "cam" / "a.mp4", InboxPolicy(DEFAULT_IGNORE)).state
    st = os.lstat(inbox / "cam" / "a.mp4")
    assert found is not None
    assert found.file == InboxFile("cam/a.mp4", st.st_dev, st.st_ino, 10, st.st_mtime_ns,
                                   st.st_ctime_ns)
    assert found.nlink == 1
    assert decode(encode(found.file)) == found.file
