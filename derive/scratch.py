"""The local scratch folder of a derive process whose store has no local files (s3):
where ffmpeg writes posters, sheets, packet indexes and renditions before they are put
into the store (derive/output.py).

``$TMPDIR/videodrop-derive-<uid>/`` (0700, ours) holds one folder per process,
``<pid>-<random>/``, which the process holds an exclusive ``flock`` on for its life
(``.lock``); each job makes a folder inside it, removed after the job. A process that
starts removes the folders no live process holds (those of killed processes: the kernel
drops a dead process's locks), so what a SIGKILL left is cleaned at the next start. The
space needed is one job's output per worker at once (a rendition: its whole file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from videodrop.errors import ConfigurationError

__all__ = ["ScratchRoot"]

_LOCK = ".lock"
#: A process folder without its lock file this old is one whose process died making it.
UNLOCKED_SECONDS = 60.0


def _own_folder(path: Path) -> Path:
    """``path``, made 0700 when missing; ConfigurationError unless it is a folder of ours
    (not a link, not another user's: a shared /tmp)."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=False)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigurationError(f"derive scratch folder {path} is not a folder of this user;"
                                 " set TMPDIR to one")
    return path


class ScratchRoot:
    """This process's scratch folder (module docstring), made and locked at once; the
    folders of dead processes beside it are removed first. ``parent``: where the
    process folders live (default ``$TMPDIR/videodrop-derive-<uid>``)."""

    def __init__(self, parent: Path | None = None) -> None:
        base = Path(tempfile.gettempdir()) / f"videodrop-derive-{os.getuid()}"
        self.parent = _own_folder(parent or base)
        self.removed = self.sweep()
        self.path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.parent))
        self._lock = os.open(self.path / _LOCK, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def sweep(self) -> list[str]:
        """Remove the process folders no live process holds; their names."""
        removed = []
        for folder in self.parent.iterdir():
            if folder.is_symlink() or not folder.is_dir():
                continue
            try:
                fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:  # made, not yet locked: or its process died then
                if time.time() - folder.lstat().st_mtime < UNLOCKED_SECONDS:
                    continue
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process's
                finally:
                    os.close(fd)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        return removed

    @contextlib.contextmanager
    def job(self, prefix: str) -> Iterator[Path]:
        """A new empty folder for one job (``prefix`` starts its name); removed after."""
        temp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
        try:
            yield temp
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def close(self) -> None:
        """Remove this process's folder (a clean stop)."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._lock)
