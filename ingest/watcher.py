"""watchdog glue: events become small tuples on a queue, read by the daemon's one thread."""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
from watchdog.observers.polling import PollingObserverVFS

# closed: a writer closed the file; moved: renamed into place; created: appeared (opened
# by a writer, or moved in from outside the inbox); modified: written to; gone: deleted or
# moved away; dir: a folder appeared (scan it); rescan: events were lost; dir_attrib: a
# folder's mode, owner or ACL changed (a permission fix, maybe).
Kind = Literal["closed", "moved", "created", "modified", "gone", "dir", "rescan", "dir_attrib"]
Event = tuple[Kind, Path, Path | None]

# File systems where inotify does not see other machines' writes.
REMOTE_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "vboxsf", "ceph", "glusterfs",
             "afs", "lustre", "gpfs", "virtiofs", "davfs", "sshfs"}


def _p(path: str | bytes) -> Path:
    return Path(os.fsdecode(path))


class Handler(FileSystemEventHandler):
    def __init__(self, events: queue.Queue[Event]) -> None:
        self.events = events

    def dispatch(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = _p(event.src_path)
        if kind == "moved":  # full events: src "" = moved in from outside, dest "" = out
            if event.src_path:
                self.events.put(("gone", src, None))
            if event.dest_path:
                dest = _p(event.dest_path)
                self.events.put(("dir" if event.is_directory else "moved", dest, src))
        elif event.is_directory:
            if kind == "created":
                self.events.put(("dir", src, None))
            elif kind == "deleted":
                self.events.put(("gone", src, None))
            elif kind == "attrib":
                self.events.put(("dir_attrib", src, None))
        elif kind == "closed":
            self.events.put(("closed", src, None))
        elif kind in {"created", "modified"}:
            self.events.put((kind, src, None))  # type: ignore[arg-type]
        elif kind == "attrib":  # chmod, touch, cp -p's utime: a fresh look, no write implied
            self.events.put(("created", src, None))
        elif kind == "deleted":
            self.events.put(("gone", src, None))


class OverflowAlarm(logging.Handler):
    """watchdog rebuilds its watches after an inotify queue overflow and only *logs* that
    events were lost; we listen to that log line and answer with a rescan at once."""

    def __init__(self, events: queue.Queue[Event], inbox: Path) -> None:
        super().__init__(logging.WARNING)
        self.events, self.inbox = events, inbox

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.events.put(("rescan", self.inbox, None))


def filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path``, from /proc/self/mounts."""
    best, fstype = "", "unknown"
    target = str(path.resolve())
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


def choose_mode(mode: str, inbox: Path, fstype: str | None = None) -> tuple[str, str]:
    """(mode, why) — auto picks poll where inotify cannot see the writers."""
    if mode != "auto":
        return mode, "configured"
    fstype = fstype or filesystem_type(inbox)
    if fstype in REMOTE_FS or fstype.startswith("fuse"):
        return "poll", f"inbox is on {fstype}: inotify cannot see other machines' writes"
    return "inotify", f"inbox is on {fstype}"


# watchdog holds every IN_MOVED_FROM for 0.5 s to pair it with its IN_MOVED_TO, and its
# queue is first in, first out: each file the prober moves out of the inbox stalls the
# events behind it (the next file dropped in) for up to 0.5 s. The kernel queues the two
# halves of a rename back to back, so a short hold still pairs them; and with full events
# an unpaired half is no loss to us (gone + moved in are what the daemon wants anyway).
MOVE_PAIRING_SECONDS = 0.05


def start_observer(inbox: Path, mode: str, events: queue.Queue[Event],
                   poll_interval: float) -> BaseObserver:
    # Full events: a file renamed in from outside the inbox comes as a move (not as a
    # creation), so it counts as finished like a rename inside the inbox.
    InotifyMoveEventGrouper.delay = MOVE_PAIRING_SECONDS
    observer: BaseObserver = (
        PollingObserverVFS(os.stat, _listdir_below(str(inbox)),
                           polling_interval=poll_interval) if mode == "poll"
        else InotifyObserver(generate_full_events=True))
    observer.schedule(Handler(events), str(inbox), recursive=True)
    alarm = OverflowAlarm(events, inbox)
    for name in ("watchdog.observers.inotify", "watchdog.observers.inotify_c"):
        logging.getLogger(name).addHandler(alarm)
    observer.start()
    return observer


def _listdir_below(inbox: str) -> Callable[[str | None], Iterator[os.DirEntry[str]]]:
    """``os.scandir`` for the polling observer, with a folder below ``inbox`` that cannot be
    listed read as empty: watchdog would fail the whole snapshot and report nothing of the
    inbox until that folder is fixed (the daemon's walk reports the folder itself). The
    inbox itself fails as before (watchdog keeps its last snapshot and tries again)."""
    def listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
        try:
            return os.scandir(path)
        except PermissionError:
            if path is None or os.fspath(path) == inbox:  # watchdog passes it as given
                raise
            return iter(())
    return listdir


def rewatch(observer: BaseObserver, inbox: Path, events: queue.Queue[Event]) -> None:
    """Watch the inbox afresh: inotify could not watch a folder the service could not read
    then (watchdog passes over it), and does not try again once it can. Events in between
    are lost: the caller rescans."""
    observer.unschedule_all()
    observer.schedule(Handler(events), str(inbox), recursive=True)


def inotify_watch_limit() -> int | None:
    try:
        return int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    except (OSError, ValueError):
        return None
