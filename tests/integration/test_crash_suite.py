"""The crash suite: real processes against a PostgreSQL and a RabbitMQ this test starts
itself (never the machine's shared servers). While 120 files arrive: SIGKILL the probers
several times and the ingest daemon once, stop and start RabbitMQ, restart PostgreSQL.
Every file ends `ready` exactly once, the inbox ends empty, every record has its stored
file (object) with the dropped file's size and SHA-256, and no stored file lacks a record;
on the file store and on an s3 one (real SeaweedFS: the prober spools inbox files and puts
them into the bucket). Run alone with `pytest -m crash`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading

import pytest

from tests.harness import System, fresh_database, rows, wait_for
from tests.integration.test_ingest_faults import assert_exactly_once, drop_files
from tests.integration.test_prober_pipeline import s3_store
from videodrop.storage import FileStore, MediaStore, read_chunks

pytestmark = pytest.mark.crash
CLIP = "tiny_av1.mp4"


def stored_originals(media: MediaStore) -> dict[str, tuple[int, str]]:
    """Every original in the store (``videos/…``, read back): key -> (size, SHA-256)."""
    found = {}
    for info in media.list_objects("videos/"):
        digest = hashlib.sha256()
        size = 0
        for chunk in read_chunks(media.open(info.key)):
            digest.update(chunk)
            size += len(chunk)
        found[info.key] = (size, digest.hexdigest())
    return found


def test_everything_crashes_while_120_files_arrive(make_system, samples, throwaway_postgres,
                                                  throwaway_rabbitmq, store_env):
    """Once per store (``store_env``: the file store, then an s3 bucket)."""
    system: System = make_system(amqp=throwaway_rabbitmq.url, **store_env)
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
    dropped = (samples / CLIP).read_bytes()
    want = (len(dropped), hashlib.sha256(dropped).hexdigest())
    recorded = {path: (size, sha256) for path, size, sha256 in rows(
        system.database_url, "SELECT stored_path, size, sha256 FROM videos")}
    assert set(recorded.values()) == {want}
    media = s3_store(store_env) if store_env else FileStore(system.media_root)
    assert stored_originals(media) == recorded  # each one whole, none lacking a record
    if store_env:
        assert not list((system.media_root / "videos").rglob("*"))  # all went to the bucket


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
