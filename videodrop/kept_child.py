"""A long-lived child that answers requests on its stdin and stdout, one at a time (the
API's frame decoders, api/frames/decoders.py; the derive role's poster child,
derive/posters.py): started once under the limits of videodrop/children.py, so that a
request costs its work only, not a process start.

Protocol: a request is one line; its answer one JSON line (with ``"size"``: the bytes
that follow it, 0 when absent) and those bytes. Each exchange has a deadline; the caller
kills the child past it (its whole group: it runs in its own session) and starts a new
one for the next request (:class:`KeptChildren`: the idle ones of a process).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from videodrop.children import ARENAS, AutogroupNice, ChildLimits, prlimit_binary

__all__ = ["KeptChild", "KeptChildren", "Stopped", "limited_argv", "serve"]


class KeptChild:
    """One child (``argv``: its limits, then the program), run in ``cwd`` with ``env``
    added to this process's environment, and the bytes read from it not yet used.
    ``cpu``: its CPU seconds as its last answer said (``"cpu"``), 0 before. ``nice``: the
    niceness it runs at (``argv``'s ``nice``, else this thread's): above 0, its session's
    autogroup gets it too, or it would count for nothing against other sessions
    (videodrop/children.py :class:`AutogroupNice`; a write the kernel refused for now is
    tried again before a later request)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str],
                 nice: int | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     cwd=cwd, env={**os.environ,
                                                   "MALLOC_ARENA_MAX": str(ARENAS), **env})
        self.buffer = bytearray()
        self.cpu = 0.0
        own = os.getpriority(os.PRIO_PROCESS, 0)
        niceness = min(19, own + nice) if nice is not None else own
        self.autogroup: AutogroupNice | None = None
        if niceness > 0:
            self.autogroup = AutogroupNice(self.proc.pid, niceness)
            self.autogroup.attempt()

    def exchange(self, line: bytes, deadline: float) -> tuple[dict[str, Any], bytes]:
        """Send ``line`` (ending in a newline); (the answer's head, its bytes).
        EOFError when the child is gone, TimeoutError at ``deadline`` (``time.monotonic``)."""
        assert self.proc.stdin is not None
        retry = None if self.autogroup is None else self.autogroup.retry_at
        if retry is not None and time.monotonic() >= retry:
            assert self.autogroup is not None
            self.autogroup.attempt()
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


C = TypeVar("C", bound=KeptChild)
T = TypeVar("T")


class Stopped(Exception):
    """The child died during a request: ``status`` (negative: the signal);
    ``by_limit``: killed by a resource limit (address space, CPU time)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the child exited with {status}")
        self.status = status
        self.by_limit = status in (-signal.SIGKILL, -signal.SIGXCPU, -signal.SIGSEGV)


def limited_argv(memory: int, cpu_seconds: int, module: str,
                 niceness: int | None = None, *, file_size: int = 0) -> list[str]:
    """The command of a kept child running ``python -m module``: killed with the thread
    that starts it (``setpriv --pdeathsig KILL`` when installed), under prlimit's
    ``memory`` bytes of address space, ``cpu_seconds`` of CPU time for its life and
    ``file_size`` bytes per file written (0: none; videodrop/children.py's other limits),
    at ``niceness`` more than this thread's when given."""
    limits = ChildLimits(memory=memory, cpu_seconds=cpu_seconds, file_size=file_size)
    setpriv, nice = shutil.which("setpriv"), shutil.which("nice")
    return [*([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []),
            *limits.prlimit_args(prlimit_binary()),
            *([nice, "-n", str(niceness)] if nice and niceness is not None else []),
            sys.executable, "-m", module]


class KeptChildren(Generic[C]):
    """The idle children of one process, at most ``idle_kept`` of them, each retired
    (killed) once its CPU time passes half of ``cpu_seconds``; ``make`` starts one.
    Thread-safe: each request has a child to itself."""

    def __init__(self, make: Callable[[], C], idle_kept: int, cpu_seconds: int) -> None:
        self.make = make
        self.idle_kept = idle_kept
        self.cpu_seconds = cpu_seconds
        self._idle: list[C] = []
        self._lock = threading.Lock()

    def ask(self, send: Callable[[C], T],
               prefer: Callable[[C], bool] | None = None) -> T:
        """``send(child)``'s answer, on an idle child (one that ``prefer`` likes first)
        or a new one. A kept child that died while idle is replaced and the request
        sent once more. TimeoutError (the child killed), :class:`Stopped`."""
        for attempt in (0, 1):
            child, fresh = self._take(prefer)
            try:
                answer = send(child)
            except TimeoutError:
                child.kill()
                raise
            except EOFError:
                status = child.kill()
                if attempt == 0 and not fresh and status != -signal.SIGXCPU:
                    continue  # died while idle (its thread gone?): once more, fresh
                raise Stopped(status) from None
            except BaseException:
                child.kill()
                raise
            self._give_back(child)
            return answer
        raise AssertionError("unreachable")

    def _take(self, prefer: Callable[[C], bool] | None) -> tuple[C, bool]:
        """An idle child still alive (one ``prefer`` likes if any), else a new one; and
        whether it is new."""
        with self._lock:
            gone = [c for c in self._idle if not c.alive()]
            self._idle = [c for c in self._idle if c not in gone]
        for child in gone:
            child.kill()  # reaps it
        with self._lock:
            if self._idle:
                liked = [n for n, c in enumerate(self._idle) if prefer and prefer(c)]
                return self._idle.pop(liked[0] if liked else -1), False
        return self.make(), True

    def _give_back(self, child: C) -> None:
        if child.cpu > self.cpu_seconds / 2:
            child.kill()
            return
        with self._lock:
            if len(self._idle) < self.idle_kept:
                self._idle.append(child)
                return
        child.kill()

    def pids(self) -> list[int]:
        """The idle children's process ids (tests, operators)."""
        with self._lock:
            return [child.proc.pid for child in self._idle]

    def close(self) -> None:
        """Kill the idle children."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


def serve(answer: Callable[[dict[str, Any]], tuple[dict[str, Any], bytes]],
          stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The child's side: answer each JSON line of ``stdin`` (default: this process's)
    with ``answer``'s head, plus ``"cpu"`` (this process's CPU seconds so far) and its
    bytes, on ``stdout``, until ``stdin`` closes."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    for line in stdin:
        head, data = answer(json.loads(line))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        head["cpu"] = usage.ru_utime + usage.ru_stime
        stdout.write(json.dumps(head).encode() + b"\n" + data)
        stdout.flush()
