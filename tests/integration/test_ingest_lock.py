"""One ingest per inbox (issue 17): a second `videodrop ingest` on the inbox of a running
one refuses with exit 78, naming the holder (pid, host, since); so does `videodrop run`,
which stops with it; and a holder killed with SIGKILL blocks nothing. Real processes."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.harness import REPO, System, wait_for

EX_CONFIG = 78


def videodrop(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videodrop", *args], env=system.env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_a_second_ingest_on_one_inbox_refuses_naming_the_first(make_system, samples) -> None:
    system: System = make_system()
    first = system.start_role("ingest")
    wait_for(lambda: system.log_events("ingest", "rescan"), what="the first ingest watching")

    second = videodrop(system, "ingest")
    assert second.returncode == EX_CONFIG, second.stderr
    assert f"pid {first.pid} on {socket.gethostname()} since 20" in second.stderr
    assert str(system.inbox.resolve()) in second.stderr
    run = videodrop(system, "run", "--roles", "ingest", "--no-migrate")
    assert run.returncode == EX_CONFIG, run.stderr
    assert f"pid {first.pid} on " in run.stderr
    assert first.poll() is None  # the holder goes on, untouched

    system.kill("ingest")  # SIGKILL: no clean-up of any kind
    system.start_role("ingest")
    wait_for(lambda: len(system.log_events("ingest", "rescan")) == 2,
             what="a new ingest watching after the holder was killed")
    (system.inbox / "after.mp4").write_bytes((samples / "tiny_av1.mp4").read_bytes())
    wait_for(lambda: [e for e in system.log_events("ingest", "published")
                      if e["path"] == "after.mp4"], what="the new ingest to publish")
