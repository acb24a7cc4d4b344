"""The decoding children of one API worker (api/frames/decoder.py is the child): started
when first needed and kept, so that a frame costs its decoding only (no process start, no
probing of the input, which stays open in the child for the next request).

Each child runs as every child reading untrusted media (videodrop/children.py): an
argument list, hard limits (address space VIDEODROP_CHILD_MEMORY, open files, no file
written, CPU time), its own session, killed with the thread that started it, and at a
lower CPU priority (``nice`` :data:`NICENESS`) so that decoding yields the cores to the
worker's lookups and streams. A request has a deadline: past it the child is killed (its
whole group) and the next request starts a fresh one. A child whose CPU time nears its
limit (:data:`CPU_SECONDS`) is retired after its answer; one that died between two
requests is replaced and the request sent once more.

How many children work at once is the caller's slots (VIDEODROP_FRAME_CONCURRENCY):
this pool keeps at most :data:`IDLE_KEPT` idle ones beyond what is in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.frames.source import Original, as_original, redacted
from videodrop.children import ARENAS, ChildLimits, prlimit_binary

__all__ = ["CPU_SECONDS", "DecodeFailed", "Decoders", "Request"]

#: CPU seconds a child may use in its life (RLIMIT_CPU); retired at half of it.
CPU_SECONDS = 3600
#: The children's niceness: the worker's own threads come first on a busy machine.
NICENESS = 10
#: Idle children kept by one worker.
IDLE_KEPT = 4
_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m api.frames.decoder`` runs


class DecodeFailed(Exception):
    """No picture: ``reason`` is ``timeout``, ``resource_limit`` (the child was stopped
    by a limit) or ``decode_failed``; the sentence says more."""

    def __init__(self, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.reason = reason


@dataclass(frozen=True)
class Request:
    """One picture (api/frames/decoder.py's protocol): the original (a local file's
    path, or an :class:`~api.frames.source.Original`), ``start``/``seek``/``time`` as
    :class:`~api.frames.timeline.Chosen` gives them (s; ``time`` None: not known, the
    child never drains its decoder), the widest ``width`` (px), ``raw``, the format
    (``jpeg``, ``png``, ``ppm``), and ``ahead``: a later frame of this GOP is asked
    next (the child keeps its decoder going)."""

    source: Path | Original
    start: float
    seek: float
    width: int
    raw: bool
    format: str
    time: float | None = None
    ahead: bool = False

    @property
    def key(self) -> str:
        """What the children keep the input open by: the file's path, the object's key."""
        return as_original(self.source).key

    def line(self, left: float) -> bytes:
        """The request's line, for a request done within ``left`` seconds: a local file
        by its path; an object by its key, its stamp, a presigned URL made now and when
        that URL expires and when the request ends (``time.time()``): a child keeps the
        input open while its URL outlives the request, else opens it afresh."""
        original = as_original(self.source)
        where: dict[str, Any]
        if original.path is not None:
            where = {"path": str(original.path)}
        else:
            url, expires = original.remote_input(2 * left)
            where = {"key": original.key, "stamp": list(original.stamp or ()), "url": url,
                     "expires": expires, "until": time.time() + left}
        return json.dumps({**where, "start": self.start, "seek": self.seek,
                           "time": self.time, "ahead": self.ahead,
                           "width": self.width, "raw": self.raw,
                           "format": self.format}).encode() + b"\n"


class _Child:
    """One decoding child and the bytes read from it not yet used."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     cwd=_ROOT, env={**os.environ,
                                                     "MALLOC_ARENA_MAX": str(ARENAS),
                                                     "PYTHONPATH": str(_ROOT)})
        self.buffer = bytearray()
        self.cpu = 0.0
        self.recent: list[str] = []  # the inputs it last read (it keeps them open), by key

    def ask(self, request: Request, deadline: float) -> tuple[dict[str, Any], bytes]:
        """(the answer's head, its bytes); EOFError when the child is gone,
        TimeoutError at ``deadline`` (``time.monotonic``)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(request.line(max(0.0, deadline - time.monotonic())))
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise EOFError("the decoder is gone") from exc
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
        self.recent = [request.key, *(k for k in self.recent if k != request.key)][:4]
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
            raise EOFError("the decoder is gone")
        self.buffer += chunk

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


class Decoders:
    """The decoding children of this worker, each child ``memory`` bytes of address
    space at most. Thread-safe: each call has a child to itself."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._argv: list[str] | None = None

    def argv(self) -> list[str]:
        if self._argv is None:
            limits = ChildLimits(memory=self.memory, cpu_seconds=CPU_SECONDS)
            setpriv = shutil.which("setpriv")
            nice = shutil.which("nice")
            self._argv = [*([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []),
                          *limits.prlimit_args(prlimit_binary()),
                          *([nice, "-n", str(NICENESS)] if nice else []),
                          sys.executable, "-m", "api.frames.decoder"]
        return self._argv

    def picture(self, request: Request, deadline: float) -> tuple[float, bytes]:
        """(the time of the frame decoded, s; its picture's bytes), by ``deadline``
        (``time.monotonic``); :class:`DecodeFailed`."""
        for attempt in (0, 1):
            child, fresh = self._take(request.key)
            try:
                head, data = child.ask(request, deadline)
            except TimeoutError:
                child.kill()
                raise DecodeFailed("timeout", "the decoder did not finish in time") from None
            except EOFError:
                status = child.kill()
                if attempt == 0 and not fresh and status != -signal.SIGXCPU:
                    continue  # died while idle (its thread gone?): once more, fresh
                if status in (-signal.SIGKILL, -signal.SIGXCPU, -signal.SIGSEGV):
                    raise DecodeFailed("resource_limit",
                                       "the decoder was stopped by a resource limit") from None
                raise DecodeFailed("decode_failed",
                                   f"the decoder exited with {status}") from None
            except BaseException:
                child.kill()
                raise
            self._give_back(child)
            if not head.get("ok"):
                raise DecodeFailed(str(head.get("reason", "decode_failed")),
                                   redacted(str(head.get("sentence", "no frame"))))
            return float(head["time"]), data
        raise AssertionError("unreachable")

    def _take(self, key: str) -> tuple[_Child, bool]:
        """An idle child, one that has the input ``key`` open if any; else a new one."""
        gone: list[_Child] = []
        with self._lock:
            if self._idle:
                gone = [c for c in self._idle if c.proc.poll() is not None]
                self._idle = [c for c in self._idle if c not in gone]
        for child in gone:
            child.kill()  # reaps it
        with self._lock:
            if self._idle:
                has = [n for n, c in enumerate(self._idle) if key in c.recent]
                return self._idle.pop(has[0] if has else -1), False
        return _Child(self.argv()), True

    def _give_back(self, child: _Child) -> None:
        if child.cpu > CPU_SECONDS / 2:
            child.kill()
            return
        with self._lock:
            if len(self._idle) < IDLE_KEPT:
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
