"""Ingest: never lost, never published twice — crashes, broker outages, polling, and the
names and file types it must ignore or refuse."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from pathlib import Path

from tests.harness import System, wait_for

CLIP = "tiny_av1.mp4"  # small and quick to probe: these tests are about counting


def drop_files(inbox: Path, source: Path, names: list[str], every: float) -> threading.Thread:
    """Write the files one after another from a thread, like cameras do."""
    data = source.read_bytes()
    pace = threading.Event()

    def run() -> None:
        for name in names:
            (inbox / name).write_bytes(data)
            pace.wait(every)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def assert_exactly_once(system: System, names: list[str], timeout: float = 180) -> None:
    items = system.wait_done(len(names), timeout=timeout)
    got = sorted(v["original_filename"] for v in items)
    assert got == sorted(names), "some files missing or recorded twice"
    assert {v["status"] for v in items} == {"ready"}
    assert system.inbox_entries() == []


def test_sigkill_the_daemon_while_100_files_arrive(make_system, samples):
    system = make_system().start()
    names = [f"kill-{i:03d}.mp4" for i in range(100)]
    writer = drop_files(system.inbox, samples / CLIP, names, every=0.03)
    wait_for(lambda: "published" in system.log_text("ingest"), what="a first publish")
    system.kill("ingest")  # SIGKILL, with files half-way through arriving
    writer.join()
    system.start("ingest")
    assert_exactly_once(system, names)


def test_broker_outage_during_arrivals(make_system, samples, throwaway_rabbitmq):
    system = make_system(amqp=throwaway_rabbitmq.url).start()
    names = [f"outage-{i:03d}.mp4" for i in range(100)]
    first, second = names[:50], names[50:]
    drop_files(system.inbox, samples / CLIP, first, every=0.02).join()
    throwaway_rabbitmq.stop()
    outage = threading.Event()
    writer = drop_files(system.inbox, samples / CLIP, second, every=0.1)  # ~5 s of arrivals
    wait_for(lambda: "broker unavailable" in system.log_text("ingest"), timeout=30,
             what="the daemon to notice the outage")
    writer.join()
    outage.wait(10 - 5)  # the outage lasts about 10 s in all
    throwaway_rabbitmq.start()
    assert_exactly_once(system, names, timeout=240)
    assert "broker unavailable; reconnecting" in system.log_text("prober")


def test_poll_mode(make_system, samples):
    system = make_system(VIDEODROP_INGEST_MODE="poll").start()
    wait_for(lambda: any(e.get("mode") == "poll" for e in system.log_events("ingest")),
             what="poll mode")
    data = (samples / "bbb_chapters.mp4").read_bytes()
    with open(system.inbox / "polled.mp4", "wb") as fh:  # a writer pausing mid-file
        fh.write(data[: len(data) // 2])
        fh.flush()
        threading.Event().wait(3)
        fh.write(data[len(data) // 2:])
    shutil.copy(samples / "bbb_input.webm", system.inbox / "copied.webm")
    record = system.wait_record("polled.mp4")
    assert record["status"] == "ready" and record["file_info"]["size"] == len(data)
    assert system.wait_record("copied.webm")["status"] == "ready"
    assert len(system.videos()) == 2


def test_ignored_and_refused_entries(make_system, samples, tmp_path):
    system = make_system()
    inbox, clip = system.inbox, (samples / CLIP).read_bytes()
    ignored = [".hidden.mp4", "x.mp4.part", "y.mp4.filepart", "z.tmp", "a.mp4.crdownload",
               "b.mp4~", ".rsynced.mp4.AbC123"]
    for name in ignored:
        (inbox / name).write_bytes(clip)
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip)
    (inbox / "link-out.mp4").symlink_to(outside)
    os.mkfifo(inbox / "fifo.mp4")
    (inbox / "folder.mp4").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(inbox / "sock.mp4"))
    try:
        system.start()  # the start-up scan meets all of them first
        shutil.copy(samples / CLIP, inbox / "after.mp4")
        assert system.wait_record("after.mp4")["status"] == "ready"
        os.mkfifo(inbox / "late-fifo.mp4")  # while running, too
        shutil.copy(samples / CLIP, inbox / "after2.mp4")
        assert system.wait_record("after2.mp4")["status"] == "ready"
        assert sorted(v["original_filename"] for v in system.videos()) == ["after.mp4",
                                                                            "after2.mp4"]
        log = system.log_text("ingest")
        assert "symlink pointing outside the inbox" in log
        assert "not a regular file (FIFO)" in log and "not a regular file (socket)" in log
        for name in ignored:
            assert (inbox / name).read_bytes() == clip, f"{name} was touched"
        assert outside.exists() and (inbox / "fifo.mp4").exists()
    finally:
        sock.close()


def test_startup_logs_the_watch_limit(system):
    [line] = wait_for(lambda: system.log_events("ingest", "inotify watches"),
                      what="the watch limit line")
    assert "limit" in line and line["needed"] == 1


def test_a_broker_that_never_answers_the_handshake_is_waited_out(make_system, samples):
    """A RabbitMQ that accepts TCP connections but never answers the AMQP handshake (a
    wedged node): the ingest and the prober say "broker unavailable" and retry, one JSON
    line a try, instead of crashing into a restart loop with pika's tracebacks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    accepting = threading.Event()

    def accept() -> None:
        accepting.set()
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])  # and never a byte back

    threading.Thread(target=accept, daemon=True).start()
    accepting.wait(5)
    port = listener.getsockname()[1]
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F?stack_timeout=1&connection_attempts=1"
    system = make_system(amqp=url)
    try:
        ingest = system.start_role("ingest")
        prober = system.start_role("prober")
        shutil.copy(samples / CLIP, system.inbox / "waiting.mp4")

        def tries(role: str) -> int:
            return sum("broker unavailable" in str(e.get("event"))
                       for e in system.log_events(role))

        wait_for(lambda: tries("ingest") >= 2 and tries("prober") >= 2, timeout=120,
                 what="both roles to retry the broker twice")
        assert ingest.poll() is None and prober.poll() is None
        for role in ("ingest", "prober"):
            text = system.log_text(role)
            assert "Traceback" not in text and "ERROR pika" not in text, text[-2000:]
    finally:
        system.stop()
        listener.close()
        for sock in held:
            sock.close()
