"""A long-lived child that answers requests on its stdin and stdout, one at a time (the
API's frame decoders, api/frames/decoders.py; the derive role's poster child,
derive/posters.py): started once under the limits of videodrop/children.py, so that a
request costs its work only, not a process start.

Protocol: a request is one line; its answer one JSON line (with ``"size"``: the bytes
that follow it, 0 when absent) and those bytes. Each exchange has a deadline; the caller
kills the child past it (its whole group: it runs in its own session) and starts a new
one for the next request.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from videodrop.children import ARENAS

__all__ = ["KeptChild"]


class KeptChild:
    """One child (``argv``: its limits, then the program), run in ``cwd`` with ``env``
    added to this process's environment, and the bytes read from it not yet used.
    ``cpu``: its CPU seconds as its last answer said (``"cpu"``), 0 before."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     cwd=cwd, env={**os.environ,
                                                   "MALLOC_ARENA_MAX": str(ARENAS), **env})
        self.buffer = bytearray()
        self.cpu = 0.0

    def exchange(self, line: bytes, deadline: float) -> tuple[dict[str, Any], bytes]:
        """Send ``line`` (ending in a newline); (the answer's head, its bytes).
        EOFError when the child is gone, TimeoutError at ``deadline`` (``time.monotonic``)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise EOFError("the child is gone") from exc
        while b"\n" not in self.buffer:
            self._read(deadline)
        end = self.buffer.index(b"\n")
        head = json.loads(bytes(self.buffer[:end]))
        del self.buffer[:end + 1]
        size = int(head.get("size", 0))
        while len(self.buffer) < size:
            self._read(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        self.cpu = float(head.get("cpu", 0.0))
        return head, data

    def _read(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError
        chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
        if not chunk:
            raise EOFError("the child is gone")
        self.buffer += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int:
        """Kill its group, reap it: its exit status (negative: the signal)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
