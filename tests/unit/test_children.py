"""videodrop.children: every child under hard limits, a deadline and typed errors, with
real processes (a Python child reports the limits it runs under)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from testbed.processes import wait_until_gone
from testbed.waits import wait_for
from videodrop import children
from videodrop.children import (
    STDERR_LIMIT,
    ChildLimits,
    ChildMissing,
    ChildRunner,
    ChildTimeout,
    Completed,
)

REPORT = """
import resource
for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_FSIZE"):
    print(name, *resource.getrlimit(getattr(resource, name)))
"""


def limits_of(runner: ChildRunner, timeout: float = 5) -> dict[str, tuple[int, int]]:
    done = runner([sys.executable, "-c", REPORT], timeout)
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.decode().splitlines():
        name, soft, hard = line.split()
        found[name] = (int(soft), int(hard))
    return found


def test_the_child_runs_under_hard_limits() -> None:
    found = limits_of(ChildRunner(512 << 20), timeout=7.5)
    assert found["RLIMIT_AS"] == (512 << 20, 512 << 20)
    assert found["RLIMIT_CPU"] == (9, 9)  # the deadline rounded up, plus a second
    assert found["RLIMIT_NOFILE"] == (64, 64)
    assert found["RLIMIT_CORE"] == (0, 0)
    assert found["RLIMIT_FSIZE"] == (0, 0)
    writer = limits_of(ChildRunner(file_size=None))
    assert writer["RLIMIT_FSIZE"] == (resource.RLIM_INFINITY, resource.RLIM_INFINITY)


def test_the_memory_cap_holds_and_the_peak_is_measured() -> None:
    runner = ChildRunner(256 << 20, measure_peak=True)
    done = runner([sys.executable, "-c", "x = bytearray(600 << 20)"], 10)
    assert done.returncode == 1 and b"MemoryError" in done.stderr
    assert 0 < done.max_rss < 256 << 20
    touch = "x = bytearray(64 << 20); x[::4096] = b'1' * len(x[::4096])"  # resident pages
    fine = runner([sys.executable, "-c", touch], 10)
    assert fine.returncode == 0 and fine.max_rss >= 64 << 20


def test_the_peak_is_the_childs_own_not_the_parents() -> None:
    """wait4's ru_maxrss of a child forked from this process counts this process's pages:
    with 320 MiB resident here, a small child must still report a small peak."""
    ballast = bytearray(320 << 20)
    ballast[::4096] = b"1" * len(ballast[::4096])  # resident, not just mapped
    done = ChildRunner(measure_peak=True)([sys.executable, "-c", "pass"], 10)
    assert done.returncode == 0 and 0 < done.max_rss < 64 << 20, done
    assert len(ballast) == 320 << 20


def test_a_measured_child_keeps_its_exit_status_and_signal() -> None:
    runner = ChildRunner(measure_peak=True)
    assert runner([sys.executable, "-c", "raise SystemExit(3)"], 10).returncode == 3
    killed = runner([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], 10)
    assert killed.returncode == -9 and killed.max_rss > 0
    assert ChildRunner()([sys.executable, "-c", "pass"], 10).max_rss == 0  # not measured
    with pytest.raises(ChildMissing):
        runner(["/nonexistent/ffprobe"], 10)


def test_the_deadline_kills_the_whole_group(tmp_path: Path) -> None:
    runner = ChildRunner(file_size=None)
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; wait"
    with pytest.raises(ChildTimeout, match=r"timed out after 0\.5 s"):
        runner(["sh", "-c", script], 0.5)
    child = int(pids.read_text())
    # SIGKILL was sent to the group; the kernel takes a moment to end the grandchild
    assert wait_until_gone([child], within=10), "the grandchild outlived the deadline's kill"



def test_a_child_dies_with_the_process_that_ran_it(tmp_path: Path) -> None:
    """A process SIGKILLed while its child runs (a derive role mid-transcode) leaves no
    child running on: the child is in a session of its own, out of reach of its group."""
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "from videodrop.children import ChildRunner\n"
        f"ChildRunner(file_size=None)(['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'], 60)")])
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=20,
                 what="the child to start")
        child = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_until_gone([child], within=10), "the child outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_missing_and_unexecutable_programs(tmp_path: Path) -> None:
    with pytest.raises(ChildMissing, match="not found"):
        ChildRunner()([str(tmp_path / "nothing"), "-version"], 5)
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    with pytest.raises(ChildMissing, match="not executable"):
        ChildRunner()([str(plain)], 5)


def test_stdout_streams_and_stderr_is_bounded() -> None:
    chunks: list[bytes] = []
    code = (f"import sys; sys.stdout.write('x' * 300000); "
            f"sys.stderr.write('e' * {STDERR_LIMIT + 5000})")
    done = ChildRunner()([sys.executable, "-c", code], 10, on_stdout=chunks.append)
    assert done.stdout == b"" and b"".join(chunks) == b"x" * 300000
    assert done.stderr == b"e" * STDERR_LIMIT


def test_limits_follow_the_deadline() -> None:
    assert ChildLimits.for_deadline(30).cpu_seconds == 31
    assert ChildLimits.for_deadline(0.2).cpu_seconds == 2
    with pytest.raises(ChildTimeout):
        ChildRunner()(["true"], 0)


def test_children_run_with_few_malloc_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's arenas reserve address space (RLIMIT_AS) per thread that meets contention:
    the child gets MALLOC_ARENA_MAX unless the environment chose its own."""
    code = "import os; print(os.environ.get('MALLOC_ARENA_MAX'))"
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert ChildRunner()([sys.executable, "-c", code], 10).stdout.strip() == b"2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert ChildRunner()([sys.executable, "-c", code], 10).stdout.strip() == b"8"



def child_pids(parent: int) -> list[int]:
    """The pids whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def autogroup_of_child(nice: int) -> str:
    """The autogroup line (``/autogroup-N nice K``) of a child started by a thread at
    niceness ``nice`` (threads of one process have their own niceness on Linux), read
    from outside while it runs: a child starved at nice 19 on a busy machine need not run
    for it. The child is then killed."""
    before = set(child_pids(os.getpid()))
    got: list[object] = []

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # this thread only
            got.append(ChildRunner()(["sleep", "120"], 120))
        except BaseException as exc:
            got.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        [pid] = wait_for(lambda: list(set(child_pids(os.getpid())) - before), timeout=30,
                         what="the child")
        line = wait_for(lambda: (text := Path(f"/proc/{pid}/autogroup").read_text().strip())
                        .endswith(f"nice {nice}") and text, timeout=10,
                        what=f"its autogroup at nice {nice}")
    finally:
        for pid in set(child_pids(os.getpid())) - before:
            os.kill(pid, signal.SIGKILL)
        thread.join()
    assert isinstance(got[0], Completed) and got[0].returncode == -signal.SIGKILL, got
    return str(line)

@pytest.mark.skipif(not Path("/proc/self/autogroup").exists()
                    or Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
                    != "1", reason="no autogroups in this kernel")
def test_a_low_priority_child_has_a_low_priority_autogroup() -> None:
    """A child leads a session of its own, hence an autogroup of its own, and the
    scheduler weighs autogroups by their own niceness before it looks at the tasks in
    them: the child of a nice-19 thread (the derive role's ffmpeg) must have its autogroup
    at 19, or it weighs as much as the prober's nice-0 ffprobe in its own session. A
    child at normal priority keeps an autogroup at 0 (full weight)."""
    low = autogroup_of_child(19)
    assert low.endswith("nice 19"), low
    normal = autogroup_of_child(0)
    assert normal.endswith("nice 0"), normal
    assert low.split()[0] != normal.split()[0]  # each its own autogroup


def test_a_low_priority_child_waits_longer_for_the_cores_but_not_for_more_cpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A nice-19 child (the derive role's ffmpeg) yields the cores to the prober and may
    wait a long time for them on a busy machine: its wall-clock deadline is longer than
    its timeout, so waiting does not fail the job, while its CPU time stays the timeout's
    (RLIMIT_CPU), so a runaway child is stopped as before. At normal priority the wall
    deadline is the timeout."""
    seen: dict[int, tuple[float, list[str]]] = {}
    real = children.run_limited

    def recording(argv: Sequence[str], timeout: float, *args: Any, **kwargs: Any
                  ) -> Completed:
        seen[int(kwargs["nice"])] = (timeout, [a for a in argv if a.startswith("--cpu=")])
        return real(argv, timeout, *args, **kwargs)

    monkeypatch.setattr(children, "run_limited", recording)

    def at(nice: int) -> None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # this thread only
        ChildRunner()(["true"], 5)

    for nice in (0, 19):
        thread = threading.Thread(target=at, args=(nice,))
        thread.start()
        thread.join()
    assert seen[0] == (5, ["--cpu=6"])
    assert seen[19] == (5 * children.LOW_PRIORITY_WALL_FACTOR, ["--cpu=6"])
    assert children.LOW_PRIORITY_WALL_FACTOR > 1
