"""Child processes and ports of a run."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group, SIGKILL it if it has not gone within ``timeout`` s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """:func:`stop_process` of each at once: SIGTERM every process group first, then wait
    for each (``timeout`` s in all), SIGKILL those still there (a system stopped as
    ``systemctl stop`` stops its units: together, not one after the other)."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_for_others() -> tuple[str, str]:
    """(a Python another user, such as ``nobody``, can run; the PYTHONPATH that shows it
    this checkout and the virtualenv's packages): the virtualenv's own interpreter may live
    under /root, which no one else may enter. A checkout or virtualenv under a folder
    others cannot enter (a clone in ``mktemp -d`` or /root) is shown through a copy that
    they can (:func:`reachable_copy`). RuntimeError when there is no such Python."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        raise RuntimeError(f"no {version} outside /root that another user could run")
    purelib = Path(sysconfig.get_paths()["purelib"])
    return python, os.pathsep.join([str(reachable_copy(REPO)), str(reachable_copy(purelib))])


def _others_may_enter(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


@functools.cache
def reachable_copy(folder: Path) -> Path:
    """``folder`` itself when every user may enter it, else a copy of it (hard links where
    the file system allows, so it costs no space) in a temporary folder every user may
    enter, removed when this process exits. Files keep their own modes."""
    if _others_may_enter(folder):
        return folder
    base = Path(tempfile.mkdtemp(prefix="vdreach-"))
    base.chmod(0o755)
    atexit.register(shutil.rmtree, base, ignore_errors=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    copy = base / folder.name
    shutil.copytree(folder, copy, symlinks=True, copy_function=link,
                    ignore=shutil.ignore_patterns(".git", ".venv", "var", "__pycache__"))
    for root, dirs, _files in os.walk(copy):
        for name in dirs:
            (Path(root) / name).chmod(0o755)
    return copy


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_until_gone(pids: Sequence[int], within: float = 5.0) -> bool:
    """Whether every one of ``pids`` is gone (or a zombie) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False
