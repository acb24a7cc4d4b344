"""The prober on the real pipeline: every sample through inbox → RabbitMQ → ffprobe →
PostgreSQL → HTTP, and the faults: a hanging ffprobe, a missing one, a database outage,
a worker killed mid-probe, a message that keeps crashing the handler, requeues."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import psycopg
import pytest

from prober.probe import ProbeResult
from testbed.s3 import S3Server
from tests.harness import REPO, System, rows, wait_for
from tests.integration.test_probe_samples import EXPECTED, check, clips, ffprobe  # noqa: F401
from videodrop.catalog import Catalog
from videodrop.errorcodes import ErrorCode
from videodrop.inboxpolicy import SPOOL
from videodrop.messages import ProbeVideo, encode
from videodrop.storage.s3store import S3Store, parse_s3_url

REAL_FFPROBE = shutil.which("ffprobe") or "ffprobe"


def fake_ffprobe(folder: Path, *, hang_on: str = "HANGME", slow_on: str = "SLOWME",
                 slow_seconds: float = 4) -> Path:
    """An ffprobe that sleeps forever on files whose name contains ``hang_on`` (as
    ``sleep 600.<digits>``, the digits its own, ``HANG_COMMAND`` in ``folder``), sleeps a
    while before answering on ``slow_on`` files, and is the real one otherwise."""
    script = folder / "ffprobe"
    hang = f"sleep 600.{secrets.randbelow(10**9):09d}"  # unique on the machine: pgrep finds ours
    (folder / "HANG_COMMAND").write_text(hang)
    script.write_text(f"""#!/bin/sh
case "$*" in
  *{hang_on}*) exec {hang} ;;
  *{slow_on}*) sleep {slow_seconds} ;;
esac
exec {REAL_FFPROBE} "$@"
""")
    script.chmod(0o755)
    return script


def test_every_sample_through_the_pipeline(make_system, store_env: dict[str, str],
                                           samples: Path):
    """On both stores (``store_env``): on s3 each file is probed in the inbox's spool and
    put into the bucket before it turns ready."""
    system: System = make_system(**store_env).start()
    for name in sorted(EXPECTED):
        shutil.copy(samples / name, system.inbox / name)
    items = system.wait_done(len(EXPECTED), timeout=180)
    assert len(items) == len(EXPECTED)
    for item in items:
        name = item["original_filename"]
        meta = system.http.get(item["api_links"]["metadata_url"], timeout=5).json()
        result = ProbeResult(ok=item["status"] == "ready", error=item["processing_error"],
                             metadata=meta, raw={} if item["status"] == "ready" else None,
                             code=item["error_code"] and ErrorCode(item["error_code"]))
        try:
            check(result, EXPECTED[name])
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        assert meta["processing_started_at"] and meta["processing_completed_at"]
        if item["status"] == "ready":
            assert item["file_info"]["format"] == meta["format"]
            assert item["file_info"]["duration"] == meta["duration"] > 0
        assert (item["status"] == "failed") == bool(item["processing_error"])
        assert (item["status"] == "failed") == bool(item["error_code"])
        assert meta["error_code"] == item["error_code"]
    assert system.inbox_entries() == []
    assert_stored(system, store_env, items)


def assert_stored(system: System, store_env: dict[str, str], items: list[dict]) -> None:
    """Every record's original is in the store (with the recorded size), nothing else is
    there, and nothing waits in the spool."""
    recorded = {r[0]: r[1] for r in rows(system.database_url,
                                         "SELECT stored_path, size FROM videos")}
    assert len(recorded) == len(items)
    if not store_env:
        stored = {p.relative_to(system.media_root).as_posix(): p.stat().st_size
                  for p in (system.media_root / "videos").rglob("*") if p.is_file()}
    else:
        media = s3_store(store_env)
        stored = {i.key: i.size for i in media.list_objects("")}
        assert not [p for p in (system.inbox / SPOOL).rglob("*") if p.is_file()]
        assert not [p for p in system.media_root.rglob("*") if p.is_file()]
    assert stored == recorded


def s3_store(store_env: dict[str, str]) -> S3Store:
    """The s3 store ``store_env`` names, on a client with its credentials."""
    bucket, prefix = parse_s3_url(store_env["VIDEODROP_STORAGE_URL"])
    server = S3Server(store_env["VIDEODROP_S3_ENDPOINT_URL"], store_env["AWS_ACCESS_KEY_ID"],
                      store_env["AWS_SECRET_ACCESS_KEY"])
    return S3Store(bucket, prefix, client=server.client())


def test_hanging_ffprobe_is_killed_and_the_worker_goes_on(make_system, samples, tmp_path):
    fake = fake_ffprobe(tmp_path)
    system = make_system(VIDEODROP_FFPROBE=str(fake), VIDEODROP_PROBE_TIMEOUT="2").start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "HANGME.mp4")
    [hung] = system.wait_done(1, timeout=60)
    assert hung["status"] == "failed"
    assert hung["processing_error"] == "timed out after 2 s"
    assert hung["error_code"] == "timeout"
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "fine.mp4")
    assert system.wait_record("fine.mp4")["status"] == "ready"
    hang = (tmp_path / "HANG_COMMAND").read_text()
    leftover = subprocess.run(["pgrep", "-f", hang], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the hanging ffprobe was not killed"

    # After an "ffprobe upgrade", requeue --failed probes it again.
    system.kill("prober")
    system.extra_env["VIDEODROP_FFPROBE"] = REAL_FFPROBE
    system.start("prober")
    done = subprocess.run([sys.executable, "-m", "videodrop", "requeue", "--failed"],
                          env=system.env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: system.wait_record("HANGME.mp4")["status"] == "ready", timeout=60,
             what="the requeued video to be ready")
    assert len(system.records_named("HANGME.mp4")) == 1


def test_missing_ffprobe_refuses_to_start(make_system):
    system = make_system(VIDEODROP_FFPROBE="/nonexistent/ffprobe")
    proc = subprocess.run([sys.executable, "-m", "videodrop", "prober"], env=system.env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert "/nonexistent/ffprobe" in proc.stderr and "apt-get install ffmpeg" in proc.stderr


def test_worker_killed_mid_probe_is_redelivered_and_ready_once(make_system, store_env, samples,
                                                              tmp_path):
    fake = fake_ffprobe(tmp_path, slow_seconds=5)
    system = make_system(VIDEODROP_FFPROBE=str(fake), VIDEODROP_PROBER_CONCURRENCY="1",
                         **store_env)
    system.start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "SLOWME.mp4")

    def probing() -> bool:
        found = rows(system.database_url,
                     "SELECT count(*) FROM videos WHERE processing_started_at IS NOT NULL"
                     " AND status = 'processing'")
        return found[0][0] == 1
    wait_for(probing, timeout=30, what="the probe to start")
    system.kill("prober")  # SIGKILL, mid-probe
    system.start("prober")
    record = system.wait_record("SLOWME.mp4", timeout=60)
    assert record["status"] == "ready"
    assert rows(system.database_url, "SELECT count(*), max(attempts) FROM videos") == [(1, 2)]
    assert_stored(system, store_env, [record])


def test_database_outage_is_waited_out(make_system, samples, throwaway_postgres):
    from tests.harness import fresh_database
    db = fresh_database(throwaway_postgres.url)
    system = make_system()
    system.database_url = db
    system.start("api", "prober", "ingest")
    throwaway_postgres.stop()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "outage.mp4")
    wait_for(lambda: "transient problem; retrying" in system.log_text("prober"), timeout=60,
             what="the prober to notice the outage")
    throwaway_postgres.start()
    record = system.wait_record("outage.mp4", timeout=90)
    assert record["status"] == "ready"
    assert len(system.records_named("outage.mp4")) == 1


def test_a_message_that_keeps_crashing_goes_to_the_dead_letter_queue(make_system, samples):
    system = make_system().start("prober")
    # A row ready to probe, and a database that refuses to mark it 'processing': a crash
    # in the handler that is neither transient nor a bad message (a schema bug, say).
    catalog = Catalog.connect(system.database_url)
    video = catalog.create_upload(filename="poison.mp4")
    stored = system.media_root / video.stored_path
    stored.parent.mkdir(parents=True)
    shutil.copy(samples / "tiny_av1.mp4", stored)
    catalog.upload_received(video.id, stored.stat().st_size)
    catalog.close()
    with psycopg.connect(system.database_url, autocommit=True) as db:
        db.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refusing to start processing'; END $$""")
        db.execute("""CREATE TRIGGER refuse BEFORE UPDATE ON videos FOR EACH ROW
            WHEN (NEW.status = 'processing' AND NEW.attempts > OLD.attempts)
            EXECUTE FUNCTION refuse()""")
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.basic_publish(system.prefix, "probe", encode(ProbeVideo(video_id=video.id)),
                          pika.BasicProperties(delivery_mode=2))

    def dead_letters() -> int:
        return channel.queue_declare(f"{system.prefix}.probe.dead", passive=True
                                     ).method.message_count
    wait_for(lambda: dead_letters() == 1, timeout=60, what="the message to be dead-lettered")
    assert system.queue_counts()[0] == 0
    assert system.log_text("prober").count("handler crashed") == 5
    conn.close()
    [(status, error, code)] = rows(system.database_url,
                                   "SELECT status, processing_error, error_code FROM videos")
    assert status == "failed" and "refusing to start processing" in error
    assert code == "internal"
    # The worker is unharmed: still consuming.
    assert system.queue_counts()[1] >= 1
    done = subprocess.run([sys.executable, "-m", "videodrop", "requeue", "--dead"],
                          env=system.env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "1 dead-lettered" in done.stdout, done.stderr


@pytest.mark.parametrize("concurrency", ["3"])
def test_concurrency_setting_starts_that_many_consumers(make_system, concurrency):
    system = make_system(VIDEODROP_PROBER_CONCURRENCY=concurrency).start("prober")
    system.wait_consumers(int(concurrency))


GENERATED = {"clip.mp4": "mp4", "clip.avi": "avi", "clip.mov": "mov", "clip.mkv": "mkv",
             "clip.wmv": "wmv", "clip.flv": "flv", "clip.webm": "webm", "clip.m4v": "m4v",
             "mov-named.mp4": "mov", "mkv-named.mp4": "mkv", "m4v-named.mp4": "m4v"}
BAD = {"random.mp4": ("not a media file: ", "not_media"),
       "text.mkv": ("not a media file: ", "not_media"),
       "image.mp4": ("still image (PNG), not a video", "still_image")}
REFUSED = ("empty.mp4", "song.mp3")  # the inbox policy keeps them out (test_inbox_policy.py)


def test_generated_clips_and_bad_inputs_through_the_pipeline(  # the clips fixture is shared
        make_system, store_env: dict[str, str], clips: Path, samples: Path):  # noqa: F811
    system: System = make_system(**store_env).start()
    for name in [*REFUSED, *BAD, *GENERATED]:
        shutil.copy(clips / name, system.inbox / name)
    items = {v["original_filename"]: v for v in system.wait_done(len(BAD) + len(GENERATED))}
    for name, container in GENERATED.items():
        assert items[name]["status"] == "ready", items[name]
        assert items[name]["file_info"]["format"] == container, name
        assert items[name]["file_info"]["duration"] == pytest.approx(1.0, abs=0.1), name
    for name, (reason, code) in BAD.items():
        assert items[name]["status"] == "failed", name
        assert items[name]["processing_error"].startswith(reason), items[name]
        assert items[name]["error_code"] == code, items[name]
    for name in GENERATED:
        assert items[name]["error_code"] is None
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "good-after-bad.mp4")
    assert system.wait_record("good-after-bad.mp4")["status"] == "ready"
    assert system.inbox_entries() == sorted(REFUSED)
    assert not set(REFUSED) & {v["original_filename"] for v in system.videos()}
    assert_stored(system, store_env, system.videos())


def with_heartbeat(amqp_url: str, seconds: int) -> str:
    parts = urlsplit(amqp_url)
    query = "&".join(q for q in [parts.query, f"heartbeat={seconds}"] if q)
    return urlunsplit(parts._replace(query=query))


def test_a_probe_longer_than_heartbeats_keeps_its_connection(make_system, samples, tmp_path):
    """The connection is served while a probe runs: with a 2 s heartbeat (RabbitMQ closes
    a connection that misses two), a probe of 5 heartbeats ends with one delivery, one ack,
    no reconnection and one row probed once."""
    heartbeat = 2
    fake = fake_ffprobe(tmp_path, slow_seconds=5 * heartbeat)
    system = make_system(amqp=with_heartbeat(system_amqp(make_system), heartbeat),
                         VIDEODROP_FFPROBE=str(fake), VIDEODROP_PROBER_CONCURRENCY="1")
    system.start("api", "prober", "ingest")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "SLOWME.mp4")
    record = system.wait_record("SLOWME.mp4", timeout=90)
    assert record["status"] == "ready"
    system.kill("prober", signal.SIGTERM)  # a message still unacked would go back to ready
    assert system.queue_counts() == (0, 0)
    assert rows(system.database_url, "SELECT count(*), max(attempts) FROM videos") == [(1, 1)]
    log = system.log_text("prober")
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [e["delivery"] for e in events if e["event"] == "probe"] == [1]
    assert not [e for e in events if e.get("delivery", 1) > 1], "a redelivery"
    for sign in ("StreamLostError", "reconnecting", "ConnectionClosed", "already done"):
        assert sign not in log, f"{sign!r} in the prober's log"


def system_amqp(make_system) -> str:  # type: ignore[no-untyped-def]
    """The session's RabbitMQ URL, as a built system has it."""
    return str(make_system().amqp_url)
