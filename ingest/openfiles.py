"""Which candidate files some process still holds open for writing (local writers only).

inotify's close_write tells us when a writer closed a file; a file found by a scan has
no such event, and a writer may pause for seconds with the file open. One sweep of
/proc per settle tick answers "is anybody still writing this?" for all candidates at
once. Processes of other users are invisible without privileges, and writers on other
machines (NFS, SMB) always are: there the settle window is the guard."""

from __future__ import annotations

import os

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def open_for_writing(candidates: set[tuple[int, int]], proc: str = "/proc") -> set[tuple[int, int]]:
    """The subset of (dev, ino) pairs that an fd somewhere has open for writing."""
    if not candidates:
        return set()
    found: set[tuple[int, int]] = set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    me = str(os.getpid())
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in candidates or key in found:
                continue
            if _writable(f"{proc}/{pid}/fdinfo/{fd}"):
                found.add(key)
    return found


def _writable(fdinfo: str) -> bool:
    try:
        with open(fdinfo) as fh:
            for line in fh:
                if line.startswith("flags:"):
                    flags = int(line.split()[1], 8)
                    return (flags & os.O_ACCMODE) in _WRITE_MODES
    except (OSError, ValueError, IndexError):
        return True  # can't tell: assume it is being written, the settle window decides
    return False
