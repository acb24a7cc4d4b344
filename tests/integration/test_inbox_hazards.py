"""Inbox files that cost more than they hold, policies narrowed under queued messages,
copies killed midway, names reused by chunked writers: on the real roles (ingest, prober,
api as processes), real PostgreSQL and RabbitMQ, and a real inbox and media store.

The periodic rescan is an hour here: nothing below can be saved by it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pika.exceptions
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import System, free_port, rows, wait_for
from videodrop.broker import Publisher
from videodrop.messages import InboxFile
from videodrop.settings import Settings

SOURCE = "bbb_chapters.mp4"
HOUR = {"VIDEODROP_RESCAN_SECONDS": "3600"}


def log_lines(system: System, role: str) -> list[dict]:
    return [json.loads(line) for line in system.log_text(role).splitlines()
            if line.startswith("{")]


def events(system: System, role: str, event: str) -> list[dict]:
    return [line for line in log_lines(system, role) if line["event"] == event]


def publish(system: System, inbox_path: str) -> InboxFile:
    """What the ingest publishes for ``inbox_path`` as it is now (a message queued earlier,
    under another policy or before the file changed)."""
    st = os.lstat(system.inbox / inbox_path)
    msg = InboxFile(inbox_path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                    st.st_ctime_ns)
    publisher = Publisher(Settings.from_env(system.env), name="test")
    try:
        publisher.publish(msg)
    finally:
        publisher.close()
    return msg


def queued(system: System) -> int:
    """Messages on the probe queue (0 before anyone declared it)."""
    try:
        return system.queue_counts()[0]
    except pika.exceptions.ChannelClosedByBroker:
        return 0


def store_files(system: System) -> list[Path]:
    return sorted(p for p in system.media_root.rglob("*") if p.is_file())


def counter(system: System, role: str, family: str) -> dict[str, float]:
    """``family`` (without ``_total``) by reason, from the role's /metrics."""
    [url] = [line["url"] for line in events(system, role, "metrics")]
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {s.labels["reason"]: s.value for fam in text_string_to_metric_families(text)
            if fam.name == family for s in fam.samples if s.name.endswith("_total")}


def metered(make_system, **env: str) -> System:
    port = free_port()
    return make_system(**HOUR, VIDEODROP_METRICS_BIND=f"127.0.0.1:{port}-{port + 20}", **env)


def test_a_sparse_file_is_refused_by_the_ingest_once_and_counted(make_system, samples):
    system = metered(make_system).start("api", "prober", "ingest")
    sparse = system.inbox / "huge.mp4"
    subprocess.run(["truncate", "-s", "30G", str(sparse)], check=True)
    # a real video after it: the ingest decides in order, so the refusal came first
    shutil.copy(samples / SOURCE, system.inbox / "after.mp4")
    assert system.wait_record("after.mp4")["status"] == "ready"
    wait_for(lambda: events(system, "ingest", "refused"), what="the refusal")
    [refused] = events(system, "ingest", "refused")
    assert (refused["path"], refused["code"]) == ("huge.mp4", "sparse")
    assert "32212254720 bytes" in refused["reason"]
    assert counter(system, "ingest", "videodrop_ingest_files_refused")["sparse"] == 1
    assert sparse.stat().st_size == 30 << 30  # left where it was
    assert system.records_named("huge.mp4") == []


def test_a_queued_message_for_a_hard_linked_sparse_file_is_refused_at_claim(
        make_system, tmp_path):
    """The ingest of an older release published it: the prober refuses it before any row,
    hash or copy (a hard link would be copied in full)."""
    system = metered(make_system).start("api", "prober")
    outside = tmp_path / "outside.mp4"
    subprocess.run(["truncate", "-s", "30G", str(outside)], check=True)
    os.link(outside, system.inbox / "linked.mp4")
    publish(system, "linked.mp4")
    wait_for(lambda: events(system, "prober", "refused"), what="the prober's refusal")
    [refused] = events(system, "prober", "refused")
    assert refused["code"] == "sparse" and refused["path"] == "linked.mp4"
    assert (system.inbox / "linked.mp4").exists() and os.stat(outside).st_nlink == 2
    assert store_files(system) == []  # nothing copied, not even a .part
    assert rows(system.database_url, "SELECT count(*) FROM videos") == [(0,)]
    assert system.queue_counts()[0] == 0  # acked, not retried
    assert counter(system, "prober", "videodrop_prober_files_refused")["sparse"] == 1


def test_queued_messages_meet_the_narrowed_policy_at_claim(make_system, samples):
    system = make_system(**HOUR).start("ingest")  # every extension of the table
    shutil.copy(samples / SOURCE, system.inbox / "clip.mkv")
    wait_for(lambda: queued(system) == 1, what="the message to be queued")
    system.kill("ingest", signal.SIGTERM)
    system.extra_env["VIDEODROP_INBOX_EXTENSIONS"] = "mp4"  # narrowed, messages queued
    system.start("api", "prober")
    wait_for(lambda: events(system, "prober", "refused"), what="the prober's refusal")
    [refused] = events(system, "prober", "refused")
    assert refused["code"] == "extension" and "VIDEODROP_INBOX_EXTENSIONS" in refused["reason"]
    assert (system.inbox / "clip.mkv").exists()
    assert rows(system.database_url, "SELECT count(*) FROM videos") == [(0,)]
    wait_for(lambda: system.queue_counts()[0] == 0, what="the message to be acked")


def part_files(system: System) -> list[Path]:
    return [p for p in system.media_root.rglob("*.part") if p.is_file()]


def test_a_copy_killed_midway_leaves_no_part_behind(make_system, tmp_path):
    """kill -9 of the prober while it copies a hard-linked file into the store: the retry of
    the claim removes the dead copy's .part; a .part whose video was deleted meanwhile goes
    at the next start of a prober, once it is older than the bound."""
    system = make_system(**HOUR, VIDEODROP_PROBER_CONCURRENCY="1").start("api")
    outside = tmp_path / "big.mp4"
    with outside.open("wb") as fh:  # real data: a copy that takes a while (fsync included)
        for _ in range(384):
            fh.write(os.urandom(1 << 20))
    os.link(outside, system.inbox / "big.mp4")
    publish(system, "big.mp4")
    prober = system.start_role("prober")
    wait_for(lambda: part_files(system), interval=0.001, timeout=60, what="the copy to begin")
    os.killpg(prober.pid, signal.SIGSTOP)  # frozen mid-copy...
    [dead] = part_files(system)  # ...with its .part there
    system.kill("prober")  # SIGKILL
    folder = dead.parent
    [(video_id, status)] = rows(system.database_url, "SELECT id, status FROM videos")
    assert status == "processing"

    # The claim is retried (the message is redelivered): the dead copy's .part goes.
    system.start_role("prober")
    wait_for(lambda: rows(system.database_url, "SELECT status FROM videos WHERE id = %s",
                          video_id) == [("failed",)], timeout=120, what="the retry")
    assert not dead.exists() and part_files(system) == []
    [stored] = [p for p in folder.iterdir()]
    assert stored.stat().st_size == outside.stat().st_size
    system.kill("prober")

    # A .part whose video is gone: the next prober start sweeps it once it is old enough.
    folder.mkdir(parents=True, exist_ok=True)
    orphan = folder / f".{stored.name}.0badc0de.part"
    orphan.write_bytes(b"half a copy")
    fresh = folder / f".{stored.name}.0000beef.part"
    fresh.write_bytes(b"a copy still running")
    resp = system.http.delete(f"{system.base_url}/api/videos/{video_id}",
                              headers=system.admin, timeout=10)
    assert resp.status_code == 204
    hour_ago = time.time() - 3601
    os.utime(orphan, (hour_ago, hour_ago))
    sweeps = len(events(system, "prober", "stale copies removed"))
    system.start_role("prober")
    wait_for(lambda: len(events(system, "prober", "stale copies removed")) > sweeps,
             what="the sweep")
    assert not orphan.exists() and fresh.exists()
    assert events(system, "prober", "stale copies removed")[-1]["count"] == 1


def test_a_name_published_again_as_another_file_is_logged(make_system, samples):
    system = make_system(**HOUR).start("api", "prober", "ingest")
    shutil.copy(samples / SOURCE, system.inbox / "chunked.mp4")
    wait_for(lambda: len([v for v in system.videos() if v["status"] != "processing"]) == 1,
             what="the first chunk")
    wait_for(lambda: not (system.inbox / "chunked.mp4").exists() or None,
             what="the first chunk to leave the inbox")
    assert events(system, "ingest", "name published again as another file") == []
    shutil.copy(samples / "tiny_av1.mp4", system.inbox / "chunked.mp4")  # the "next chunk"
    system.wait_done(2)
    [warned] = events(system, "ingest", "name published again as another file")
    assert warned["path"] == "chunked.mp4" and "VIDEODROP_SETTLE_SECONDS" in warned["hint"]
