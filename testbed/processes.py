"""Child processes and ports of a run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_for_others() -> tuple[str, str]:
    """(a Python another user, such as ``nobody``, can run; the PYTHONPATH that shows it
    this checkout and the virtualenv's packages): the virtualenv's own interpreter may live
    under /root, which no one else may enter. RuntimeError when there is none."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        raise RuntimeError(f"no {version} outside /root that another user could run")
    return python, os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
