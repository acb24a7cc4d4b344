"""One ingest per inbox: an exclusive ``flock`` on ``INBOX/.videodrop-ingest.lock``.

The lock file lives in the inbox folder itself, so every ingest that watches that folder
meets the same file, wherever it is mounted: on one machine (a second ``make run`` in the
same checkout), and across machines sharing the inbox over NFS (Linux emulates ``flock``
with a whole-file NFS lock, held by the server; NFSv3 needs ``lockd``, a ``nolock`` mount
keeps locks local) or SMB (since Linux 5.5). The kernel, or the NFS server once the
client's lease expires, drops the lock when its holder dies, however it dies (``kill -9``
included): nothing stale blocks the next start. A PostgreSQL advisory lock was not taken:
the ingest does not need the database to run, and a lock keyed by the inbox's path cannot
tell one shared folder mounted at two places from two machines' own folders at one path.

The holder writes who it is (``pid``, ``host``, ``since``) into the file, for the refusal
of the next one. The name is :data:`videodrop.inboxpolicy.INGEST_LOCK`: never taken,
listed or pruned, whatever ``VIDEODROP_IGNORE_PATTERNS`` says."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from videodrop.errors import ConfigurationError
from videodrop.inboxpolicy import INGEST_LOCK


class InboxTaken(ConfigurationError):
    """Another ingest holds the inbox's lock (exit 78: a restart would not help)."""


@dataclass
class InboxLock:
    """The held lock: released when the process ends, or by :meth:`release`."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def acquire(inbox: Path) -> InboxLock:
    """Take the lock of ``inbox`` (an absolute folder, created when missing) without
    waiting. :class:`InboxTaken` naming the holder (pid, host, since) when another process
    holds it; :class:`ConfigurationError` when the lock file cannot be made or locked."""
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / INGEST_LOCK
    try:
        # O_NOFOLLOW: a writer of the inbox could plant a symlink here; 0o660: the holder
        # is readable to the writers' group, whose members may be asked who holds it
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o660)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot open the ingest lock {path}: {exc.strerror}: the service user needs to"
            f" create and write this file in the inbox (remove it if it is not a plain file"
            f" of that user)") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigurationError(f"the ingest lock {path} is not a plain file: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InboxTaken(f"the inbox {inbox} is already watched by another videodrop"
                                 f" ingest ({holder_of(fd)}; it holds {path}): stop that one,"
                                 " or give this one another VIDEODROP_INBOX") from None
            raise ConfigurationError(
                f"cannot lock {path}: {exc.strerror} (an NFS mount needs locking: NFSv4, or"
                " NFSv3 with lockd, not 'nolock')") from exc
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
    except BaseException:
        os.close(fd)
        raise
    return InboxLock(path, fd)


def holder_of(fd: int) -> str:
    """Who holds the lock, from what the holder wrote: ``pid 12 on host since …``."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"pid {int(info['pid'])} on {info['host']} since {info['since']}"
    except (OSError, ValueError, TypeError, KeyError):
        return "a holder that has not said who it is yet"
