"""Child processes that read untrusted media (ffprobe now, ffmpeg in derive/): a deadline,
hard resource limits, typed errors.

Limits are set by util-linux ``prlimit`` exec'ing the real command: the child is limited
before its first instruction, and nothing runs between fork and exec in this process (a
``preexec_fn`` is unsafe in a threaded process such as the prober; ``resource.prlimit``
on the pid after the spawn leaves the child running unlimited for a moment).

``ChildRunner(memory)(args, timeout, on_stdout=None) -> Completed``: stdout is collected,
or handed chunk by chunk to ``on_stdout`` (bounded memory for long listings); stderr is
kept up to :data:`STDERR_LIMIT` bytes (its head). Each child runs in its own session and
its whole process group is killed when the deadline passes.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MEMORY",
    "STDERR_LIMIT",
    "ChildError",
    "ChildLimits",
    "ChildMissing",
    "ChildRunner",
    "ChildTimeout",
    "Completed",
    "prlimit_binary",
]

#: Address space a child may map (bytes): VIDEODROP_CHILD_MEMORY's default, 1 GiB.
DEFAULT_MEMORY = 1 << 30
#: Open files a child may hold (its input, pipes, shared libraries being loaded).
OPEN_FILES = 64
#: stderr kept per child (bytes); the rest is read and dropped.
STDERR_LIMIT = 1 << 20
_CHUNK = 1 << 16
_PRLIMIT_HINT = "install util-linux (it provides prlimit)"


class ChildError(Exception):
    """Base of every problem running a child."""


class ChildTimeout(ChildError):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g} s")


class ChildMissing(ChildError):
    """The program (or prlimit, which applies the limits) cannot be run."""

    def __init__(self, binary: str, why: str = "not found", hint: str = "") -> None:
        self.binary = binary
        super().__init__(f"{binary!r} {why}" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class Completed:
    returncode: int  # negative: killed by that signal
    stdout: bytes  # empty when it went to ``on_stdout``
    stderr: bytes
    max_rss: int = 0  # peak resident memory of the child, bytes (0 when unknown)


@dataclass(frozen=True)
class ChildLimits:
    """Hard limits of one child (setrlimit soft = hard).

    ``memory``: RLIMIT_AS, bytes of address space. ``cpu_seconds``: RLIMIT_CPU (SIGKILL
    past it; derived from the deadline, a backstop for a wall clock that did not fire).
    ``open_files``: RLIMIT_NOFILE. ``file_size``: RLIMIT_FSIZE, 0 for a child whose output
    goes to pipes only (ffprobe). No core dumps.
    """

    memory: int = DEFAULT_MEMORY
    cpu_seconds: int = 31
    open_files: int = OPEN_FILES
    file_size: int | None = 0  # RLIMIT_FSIZE; None: unlimited (a child that writes files)

    @classmethod
    def for_deadline(cls, timeout: float, memory: int = DEFAULT_MEMORY,
                     file_size: int | None = 0) -> ChildLimits:
        return cls(memory=memory, cpu_seconds=max(1, math.ceil(timeout)) + 1,
                   file_size=file_size)

    def prlimit_args(self, prlimit: str) -> list[str]:
        fsize = [] if self.file_size is None else [f"--fsize={self.file_size}"]
        return [prlimit, f"--as={self.memory}", f"--cpu={self.cpu_seconds}",
                f"--nofile={self.open_files}", "--core=0", *fsize, "--"]


def prlimit_binary() -> str:
    """The prlimit program's path; ChildMissing when util-linux is not installed."""
    found = shutil.which("prlimit")
    if found is None:
        raise ChildMissing("prlimit", "not found", _PRLIMIT_HINT)
    return found


class ChildRunner:
    """Runs children under :class:`ChildLimits` with ``memory`` bytes of address space."""

    def __init__(self, memory: int = DEFAULT_MEMORY, *, file_size: int | None = 0,
                 prlimit: str | None = None) -> None:
        self.memory = memory
        self.file_size = file_size
        self._prlimit = prlimit

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        if timeout <= 0:
            raise ChildTimeout(timeout)
        if self._prlimit is None:
            self._prlimit = prlimit_binary()
        limits = ChildLimits.for_deadline(timeout, self.memory, self.file_size)
        return run_limited([*limits.prlimit_args(self._prlimit), *args], timeout, on_stdout,
                           program=args[0])


def run_limited(argv: Sequence[str], timeout: float,
                on_stdout: Callable[[bytes], None] | None, *, program: str) -> Completed:
    """Run ``argv`` (a list, never a shell) with a deadline; kill its group on timeout."""
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError as exc:
        raise ChildMissing(exc.filename or argv[0]) from exc
    except PermissionError as exc:
        raise ChildMissing(exc.filename or argv[0], "is not executable") from exc
    try:
        out, err = _pump(proc, deadline, on_stdout)
    except ChildTimeout:
        _kill_group(proc)
        raise ChildTimeout(timeout) from None
    except BaseException:
        _kill_group(proc)
        raise
    returncode, max_rss = _reap(proc)
    if returncode == 127 and not out and b"failed to execute" in err:
        raise ChildMissing(program)  # prlimit could not exec the program
    if returncode == 126 and b"failed to execute" in err:
        raise ChildMissing(program, "is not executable")
    return Completed(returncode, out, err, max_rss)


def _pump(proc: subprocess.Popen[bytes], deadline: float,
          on_stdout: Callable[[bytes], None] | None) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    out: list[bytes] = []
    err = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout(0)
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                elif key.data == "err":
                    err += chunk[: max(0, STDERR_LIMIT - len(err))]
                elif on_stdout is not None:
                    on_stdout(chunk)
                else:
                    out.append(chunk)
    # both pipes closed: the child is exiting (a grandchild could hold them open: then
    # the deadline above is what ends the wait)
    return b"".join(out), bytes(err)


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, int]:
    """Wait for the child: (returncode, peak RSS in bytes, from wait4's rusage)."""
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # reaped elsewhere
        return proc.wait(), 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024  # Linux reports KiB


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
