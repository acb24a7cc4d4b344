"""Child processes that read untrusted media (ffprobe now, ffmpeg in derive/): a deadline,
hard resource limits, typed errors.

Limits are set by util-linux ``prlimit`` exec'ing the real command: the child is limited
before its first instruction, and nothing runs between fork and exec in this process (a
``preexec_fn`` is unsafe in a threaded process such as the prober; ``resource.prlimit``
on the pid after the spawn leaves the child running unlimited for a moment).

``ChildRunner(memory)(args, timeout, on_stdout=None) -> Completed``: stdout is collected,
or handed chunk by chunk to ``on_stdout`` (bounded memory for long listings); stderr is
kept up to :data:`STDERR_LIMIT` bytes (its head). Each child runs in its own session and
its whole process group is killed when the deadline passes; it is killed when the thread
that started it dies (``setpriv --pdeathsig KILL``: a SIGKILLed role leaves no child).

A child runs at the niceness of the thread that starts it, and so does its *autogroup*.
With ``kernel.sched_autogroup_enabled=1`` (Debian's default) the scheduler first shares
the CPU between autogroups, one per session, each weighted by its own niceness (0 unless
set): a child in a session of its own at nice 19 would weigh as much as a nice-0 ffprobe
in another session, and the niceness of a low-priority role (derive, 19) would count for
nothing against the prober's children. So a child started by a thread whose niceness is
above 0 gets its autogroup set to it (``/proc/<pid>/autogroup``) right after it starts.
Best effort: no autogroups in the kernel or the process in a cgroup other than the root
(under systemd with the cpu controller, where ``CPUWeight=`` weighs the roles instead)
make it a no-op or an error that is ignored; the kernel allows unprivileged writes once
per 100 ms across the system (EAGAIN), so a refused write is retried while the child's
output is read.

Children run with at most :data:`ARENAS` malloc arenas (``MALLOC_ARENA_MAX``): glibc
reserves 64 MiB of address space for each arena it adds (one per thread that meets
contention, up to 8 per core), which counts against RLIMIT_AS without being memory; an
ffmpeg with several inputs (a thread each) or outputs would otherwise meet its limit at
random, by how its threads happened to meet.

Peak memory (``ChildRunner(measure_peak=True)``, for tests and ``make bench``): the
kernel's ``ru_maxrss`` of a child we fork includes the pages of *this* process at the fork
(or, with vfork, this process's own peak), so it says nothing about ffprobe when the
parent is large. GNU ``time`` forks the child from its own small image and reports the
child's peak; the child then costs one more exec. Without it ``max_rss`` is 0 (unknown).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ARENAS",
    "DEFAULT_MEMORY",
    "STDERR_LIMIT",
    "AutogroupNice",
    "ChildError",
    "ChildLimits",
    "ChildMissing",
    "ChildRunner",
    "ChildTimeout",
    "Completed",
    "prlimit_binary",
    "time_binary",
]

#: Address space a child may map (bytes): VIDEODROP_CHILD_MEMORY's default, 1 GiB.
DEFAULT_MEMORY = 1 << 30
#: malloc arenas of a child (MALLOC_ARENA_MAX), unless the environment sets it already.
ARENAS = 2
#: Open files a child may hold (its input, pipes, shared libraries being loaded).
OPEN_FILES = 64
#: stderr kept per child (bytes); the rest is read and dropped.
STDERR_LIMIT = 1 << 20
_CHUNK = 1 << 16
_AUTOGROUP_RETRY = 0.02  # s between writes the kernel refused for now (EAGAIN)
#: A low-priority child (niceness above 0: the derive role's) yields the cores to normal
#: work and may wait for them: its wall-clock deadline is this many times its timeout,
#: while its CPU time stays limited to what the timeout allows (RLIMIT_CPU), so a busy
#: machine delays its work without failing it and a runaway child is still stopped.
LOW_PRIORITY_WALL_FACTOR = 4
_PRLIMIT_HINT = "install util-linux (it provides prlimit)"
_TIME_HINT = "install GNU time (apt-get install time)"
_TIME_SIGNAL = re.compile(rb"^Command terminated by signal (\d+)$", re.MULTILINE)


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
    max_rss: int = 0  # peak resident memory of the child, bytes (0: not measured)


@dataclass(frozen=True)
class ChildLimits:
    """Hard limits of one child (setrlimit soft = hard).

    ``memory``: RLIMIT_AS, bytes of address space. ``cpu_seconds``: RLIMIT_CPU (SIGKILL
    past it; derived from the deadline, a backstop for a wall clock that did not fire: it
    counts the CPU time of all the child's threads, so a child that may keep ``cpus``
    cores busy gets the deadline times ``cpus``, or it would be killed before the deadline).
    ``open_files``: RLIMIT_NOFILE. ``file_size``: RLIMIT_FSIZE, 0 for a child whose output
    goes to pipes only (ffprobe). No core dumps.
    """

    memory: int = DEFAULT_MEMORY
    cpu_seconds: int = 31
    open_files: int = OPEN_FILES
    file_size: int | None = 0  # RLIMIT_FSIZE; None: unlimited (a child that writes files)

    @classmethod
    def for_deadline(cls, timeout: float, memory: int = DEFAULT_MEMORY,
                     file_size: int | None = 0, cpus: int = 1) -> ChildLimits:
        """Limits of a child with ``timeout`` seconds of wall clock that may keep ``cpus``
        cores busy: CPU time ``timeout * cpus`` rounded up, plus one second."""
        return cls(memory=memory, cpu_seconds=max(1, math.ceil(timeout * max(1, cpus))) + 1,
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


def _die_with_parent() -> list[str]:
    """util-linux ``setpriv --pdeathsig KILL``, so that the child (in a session of its own,
    out of reach of a signal to our group) is killed when the thread that started it dies:
    a role SIGKILLed mid-transcode leaves no ffmpeg running on (``videodrop run`` restarts
    the role, and the new job would transcode beside it). Nothing when setpriv is missing."""
    found = shutil.which("setpriv")
    return [found, "--pdeathsig", "KILL", "--"] if found else []


def time_binary() -> str:
    """GNU time's path (peak memory of a child); ChildMissing when it is not installed."""
    found = shutil.which("time")
    if found is None:
        raise ChildMissing("time", "not found", _TIME_HINT)
    return found


class ChildRunner:
    """Runs children under :class:`ChildLimits` with ``memory`` bytes of address space.

    ``cpus``: cores a child may keep busy at once (ffmpeg's decoding and filter threads),
    which its CPU-time limit allows for (:meth:`ChildLimits.for_deadline`).
    ``measure_peak``: report the child's own peak resident memory in ``max_rss`` (through
    GNU time; ChildMissing when it is not installed). A call from a thread at a niceness
    above 0 gives its child :data:`LOW_PRIORITY_WALL_FACTOR` times the timeout of wall
    clock (the CPU time limit stays the timeout's).
    """

    def __init__(self, memory: int = DEFAULT_MEMORY, *, file_size: int | None = 0,
                 prlimit: str | None = None, measure_peak: bool = False,
                 cpus: int = 1) -> None:
        self.memory = memory
        self.cpus = cpus
        self.file_size = file_size
        self._prlimit = prlimit
        self.measure_peak = measure_peak

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        if timeout <= 0:
            raise ChildTimeout(timeout)
        if self._prlimit is None:
            self._prlimit = prlimit_binary()
        limits = ChildLimits.for_deadline(timeout, self.memory, self.file_size, self.cpus)
        argv = [*_die_with_parent(), *limits.prlimit_args(self._prlimit), *args]
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's, which the child inherits
        if nice > 0:
            timeout *= LOW_PRIORITY_WALL_FACTOR
        if not self.measure_peak:
            return run_limited(argv, timeout, on_stdout, program=args[0], nice=nice)
        with tempfile.NamedTemporaryFile(prefix="videodrop-peak-") as report:
            done = run_limited([time_binary(), "-f", "%M", "-o", report.name, *argv],
                               timeout, on_stdout, program=args[0], nice=nice)
            return _measured(done, Path(report.name).read_bytes())


def _measured(done: Completed, report: bytes) -> Completed:
    """``done`` (GNU time's own exit) with the child's peak and its signal restored."""
    lines = report.strip().splitlines()
    max_rss = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0  # KiB
    signalled = _TIME_SIGNAL.search(report)
    returncode = -int(signalled.group(1)) if signalled else done.returncode
    return Completed(returncode, done.stdout, done.stderr, max_rss)


class AutogroupNice:
    """Sets the niceness of the autogroup of ``pid`` (a child of ours that leads a session
    of its own, so that the autogroup is its alone) to ``nice`` (0..19).

    :meth:`attempt` writes it once; ``retry_at`` is then the ``time.monotonic()`` at which
    to try again (the kernel refused an unprivileged write within 100 ms of another one,
    anywhere on the system: EAGAIN), or None when done or not possible (no autogroups in
    this kernel, the child already gone, a sandbox refusing it: ``error`` says which)."""

    def __init__(self, pid: int, nice: int) -> None:
        self.path = f"/proc/{pid}/autogroup"
        self.nice = nice
        self.retry_at: float | None = 0.0
        self.error: str | None = None

    def attempt(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.write(fd, str(self.nice).encode())
            finally:
                os.close(fd)
        except BlockingIOError:
            self.retry_at = time.monotonic() + _AUTOGROUP_RETRY
            return
        except OSError as exc:
            self.error = str(exc)
        self.retry_at = None


def run_limited(argv: Sequence[str], timeout: float,
                on_stdout: Callable[[bytes], None] | None, *, program: str,
                nice: int = 0) -> Completed:
    """Run ``argv`` (a list, never a shell) with a deadline; kill its group on timeout.
    ``nice``: the niceness the child runs at (inherited); above 0, its autogroup gets it
    too (:class:`AutogroupNice`)."""
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                env={"MALLOC_ARENA_MAX": str(ARENAS), **os.environ})
    except FileNotFoundError as exc:
        raise ChildMissing(exc.filename or argv[0]) from exc
    except PermissionError as exc:
        raise ChildMissing(exc.filename or argv[0], "is not executable") from exc
    autogroup = AutogroupNice(proc.pid, nice) if nice > 0 else None
    if autogroup is not None:
        autogroup.attempt()
    try:
        out, err = _read_until_closed(proc, deadline, on_stdout, autogroup)
    except ChildTimeout:
        _kill_group(proc)
        raise ChildTimeout(timeout) from None
    except BaseException:
        _kill_group(proc)
        raise
    returncode = proc.wait()
    if returncode == 127 and not out and b"failed to execute" in err:
        raise ChildMissing(program)  # prlimit could not exec the program
    if returncode == 126 and b"failed to execute" in err:
        raise ChildMissing(program, "is not executable")
    return Completed(returncode, out, err)


def _read_until_closed(proc: subprocess.Popen[bytes], deadline: float,
                       on_stdout: Callable[[bytes], None] | None,
                       autogroup: AutogroupNice | None = None) -> tuple[bytes, bytes]:
    """Read the child's stdout and stderr until both close: (stdout, the first
    STDERR_LIMIT bytes of stderr); stdout goes to ``on_stdout`` chunk by chunk instead
    when given (then b""). :class:`ChildTimeout` at ``deadline`` (``time.monotonic``).
    ``autogroup``: a write refused for now, tried again at its ``retry_at``."""
    assert proc.stdout is not None and proc.stderr is not None
    out: list[bytes] = []
    err = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        while sel.get_map():
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                raise ChildTimeout(0)
            if autogroup is not None and autogroup.retry_at is not None:
                if now >= autogroup.retry_at:
                    autogroup.attempt()
                if autogroup.retry_at is not None:
                    left = min(left, max(0.0, autogroup.retry_at - now))
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group, close its pipes and reap it."""
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
