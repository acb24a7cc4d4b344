"""The crash suite: real processes against a PostgreSQL and a RabbitMQ this test starts
itself (never the machine's shared servers). While 120 files arrive: SIGKILL the probers
several times and the ingest daemon once, stop and start RabbitMQ, restart PostgreSQL.
Every file ends `ready` exactly once, the inbox ends empty, every record has its stored
file and no stored file lacks a record. Run alone with `pytest -m crash`."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.harness import System, fresh_database, rows, wait_for
from tests.integration.test_ingest_faults import assert_exactly_once, drop_files

pytestmark = pytest.mark.crash
CLIP = "tiny_av1.mp4"


def stored_files(media_root: Path) -> set[str]:
    return {p.relative_to(media_root).as_posix() for p in (media_root / "videos").rglob("*")
            if p.is_file()}


def test_everything_crashes_while_120_files_arrive(make_system, samples, throwaway_postgres,
                                                  throwaway_rabbitmq):
    system: System = make_system(amqp=throwaway_rabbitmq.url)
    system.database_url = fresh_database(throwaway_postgres.url)
    system.start()
    names = [f"crash-{i:03d}.mp4" for i in range(120)]
    writer = drop_files(system.inbox, samples / CLIP, names, every=0.1)  # ~12 s of arrivals
    pause = threading.Event()

    def progressed(n: int) -> bool:
        return rows(system.database_url, "SELECT count(*) FROM videos")[0][0] >= n

    wait_for(lambda: progressed(5), timeout=60, what="the first records")
    for _ in range(3):  # the probers, several times
        system.kill("prober")
        system.start_role("prober")
        pause.wait(0.7)
    system.kill("ingest")  # the daemon, once
    system.start_role("ingest")
    throwaway_rabbitmq.stop()  # the broker
    pause.wait(2)
    throwaway_rabbitmq.start()
    throwaway_postgres.restart()  # the database
    writer.join()
    assert_exactly_once(system, names, timeout=300)
    [(count, distinct)] = rows(system.database_url,
                               "SELECT count(*), count(DISTINCT origin_path) FROM videos")
    assert count == distinct == 120
    recorded = {r[0] for r in rows(system.database_url, "SELECT stored_path FROM videos")}
    assert stored_files(system.media_root) == recorded


def test_media_disk_full_keeps_files_safe_and_resumes(make_system, samples, tmp_path):
    media = tmp_path / "small-media"
    media.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(media)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        why = f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        system = make_system(VIDEODROP_MEDIA_ROOT=str(media))
        system.media_root = media
        system.start()
        shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "big.mp4")  # 1.2 MB > 1 MB

        def waiting_reason() -> str | None:
            found = rows(system.database_url, "SELECT status, processing_error FROM videos")
            return found[0][1] if found and found[0][0] == "processing" and found[0][1] else None
        reason = wait_for(waiting_reason, timeout=60, what="the row to say why it waits")
        assert "media store full" in reason
        assert (system.inbox / "big.mp4").read_bytes() == (samples / "bbb_chapters.mp4"
                                                           ).read_bytes()
        assert not list(media.rglob("*.part"))
        subprocess.run(["mount", "-o", "remount,size=16m", str(media)], check=True)
        record = system.wait_record("big.mp4", timeout=120)
        assert record["status"] == "ready" and record["processing_error"] is None
        assert system.inbox_entries() == []
        system.stop()
    finally:
        subprocess.run(["umount", "-l", str(media)], check=False)
