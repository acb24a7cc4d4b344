"""Retention's edges met from outside: a probe message (``videodrop requeue ID``, a stale
or redelivered one) for a video that has expired leaves its tombstone as it is; the
packet index and range routes of an expired video answer 410 like the other file routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
import pytest
import requests

from testbed.retention_rows import generate, insert
from tests.harness import rows, videodrop, wait_for
from tests.integration.test_api_uploads import ready_upload
from tests.integration.test_prober_pipeline import s3_store
from videodrop import logs
from videodrop.catalog import Catalog
from videodrop.links import StreamLinks
from videodrop.messages import ProbeVideo, encode
from videodrop.retention import rules as rules_file
from videodrop.retention.enforce import run_pass

SAMPLE = "tiny_av1.mp4"


def expired_upload(make_system, samples, tmp_path):
    """A system (api, prober) and an upload that a pass expired: (system, record)."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_RETENTION_FILE=str(rules)).start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    rows(system.database_url, "UPDATE videos SET created_at = now() - interval '2 days'"
         " RETURNING id")
    done = videodrop(system, "retention")
    assert done.returncode == 0, done.stderr
    return system, rec


def tombstone(system, video_id: int) -> tuple[str, str | None, bool, int]:
    [row] = rows(system.database_url,
                 "SELECT status, expired_reason, files_removed_at IS NOT NULL, size"
                 " FROM videos WHERE id = %s", video_id)
    return row


def test_a_probe_message_for_an_expired_video_leaves_its_tombstone(make_system, samples,
                                                                   tmp_path):
    """A message still queued (or redelivered) when the pass expired the row: the prober
    takes it and leaves the tombstone as it is; ``videodrop requeue ID`` refuses to send
    one, with a sentence naming the video, when and why it expired."""
    system, rec = expired_upload(make_system, samples, tmp_path)
    video_id = rec["id"]
    before = tombstone(system, video_id)
    assert before[:3] == ("expired", "max_age", True)

    def seen() -> int:  # the prober's log lines about this video (it binds video_id)
        return sum(1 for e in system.log_events("prober") if e.get("video_id") == video_id)

    lines = seen()
    out = videodrop(system, "requeue", str(video_id))  # what an operator types
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "requeued" not in out.stdout
    assert f"video {video_id} expired at " in out.stderr
    assert "(rule max_age)" in out.stderr and "nothing requeued" in out.stderr
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(system.prefix, "probe", encode(ProbeVideo(video_id=video_id)),
                              pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()
    wait_for(lambda: seen() > lines, timeout=60, what="the prober to take the message")
    assert tombstone(system, video_id) == before
    usage = rows(system.database_url,
                 "SELECT count(*) FROM videos WHERE status <> 'expired'")
    assert usage == [(0,)]  # its bytes do not count again towards any quota


def test_the_packet_routes_of_an_expired_video_answer_gone(make_system, samples, tmp_path):
    system, rec = expired_upload(make_system, samples, tmp_path)
    video = f"{system.base_url}/api/video/{rec['api_links']['access_token']}"
    for url in (f"{video}/packets/", f"{video}/range/?start=0&end=0.5"):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 410, (url, resp.status_code, resp.text)
        assert resp.json()["error_code"] and "max_age" in resp.json()["description"]
    stream = f"{system.base_url}/stream/{rec['api_links']['access_token']}/"
    for url in (f"{video}/storyboard.vtt", f"{video}/storyboard/0.jpg", f"{video}/scenes/",
                f"{video}/scenes/0.jpg", f"{video}/download/", stream):
        for method in ("GET", "HEAD"):
            resp = requests.request(method, url, headers={"Range": "bytes=0-99"}, timeout=10)
            assert resp.status_code == 410, (method, url, resp.status_code, resp.text)


def test_a_pass_removes_the_files_from_the_store_the_roles_use(make_system, samples,
                                                               tmp_path):
    """VIDEODROP_STORAGE_URL=file:///elsewhere: the prober stores there, so the pass
    removes there (not under VIDEODROP_MEDIA_ROOT) and asks that folder for its space."""
    store = tmp_path / "store"
    store.mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_RETENTION_FILE=str(rules),
                         VIDEODROP_STORAGE_URL=store.as_uri()).start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    stored = store / rec["file_info"]["filename"]
    assert stored.is_file()  # the roles keep it in the store
    rows(system.database_url, "UPDATE videos SET created_at = now() - interval '2 days'"
         " RETURNING id")
    done = videodrop(system, "retention")
    assert done.returncode == 0, done.stderr
    assert tombstone(system, rec["id"])[:3] == ("expired", "max_age", True)
    assert not stored.exists(), "the row says its files are removed; the file is there"


def test_a_pass_removes_the_objects_from_an_s3_store(make_system, samples, tmp_path,
                                                     s3_server, s3_bucket):
    """VIDEODROP_STORAGE_URL=s3://…: an upload the roles put into the bucket is printed by
    a dry run (nothing changes), then a pass expires it and deletes its objects; its file
    routes answer 410."""
    url = f"s3://{s3_bucket}/edges-{tmp_path.name[-12:]}"
    env = {**s3_server.env(), "VIDEODROP_STORAGE_URL": url}
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_RETENTION_FILE=str(rules), **env).start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    media = s3_store(env)
    [(key,)] = rows(system.database_url, "SELECT stored_path FROM videos")
    assert media.exists(key)
    rows(system.database_url, "UPDATE videos SET created_at = now() - interval '2 days'"
         " RETURNING id")
    dry = videodrop(system, "retention", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{rec['id']}\tupload\t" in dry.stdout and media.exists(key)
    done = videodrop(system, "retention")
    assert done.returncode == 0, done.stderr
    assert tombstone(system, rec["id"])[:3] == ("expired", "max_age", True)
    assert not media.exists(key), "the row says its files are removed; the object is there"
    token = rec["api_links"]["access_token"]
    resp = requests.get(f"{system.base_url}/api/video/{token}/download/", timeout=10,
                        allow_redirects=False)
    assert resp.status_code == 410, resp.text


def test_a_hold_placed_after_the_decision_keeps_the_stream_link(make_system, samples,
                                                               tmp_path):
    """The pass decided on a video, a hold committed before its batch expired: the row
    stays ready and held, and its stream link (VIDEODROP_STREAM_LINKS) stays too."""
    links_root = tmp_path / "links"
    rules = tmp_path / "rules.toml"
    rules.write_text('[uploads]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_STREAM_LINKS=str(links_root),
                         VIDEODROP_RETENTION_FILE=str(rules)).start("api", "prober")
    rec = ready_upload(system, samples / SAMPLE)
    token = rec["api_links"]["access_token"]

    def link() -> list[Path]:
        return list(links_root.glob(f"{token[:2]}/{token}.*"))

    wait_for(lambda: link() != [], timeout=30, what="the ready video's stream link")
    held = requests.post(f"{system.base_url}/api/videos/{rec['id']}/hold",
                         headers=system.admin, timeout=5)
    assert held.status_code == 200
    catalog = Catalog.connect(system.database_url,
                              links=StreamLinks(links_root, system.media_root))
    try:  # the batch the pass had decided before the hold
        assert catalog.expire([(rec["id"], "max_age", "older than max_age 1d")]) == []
    finally:
        catalog.close()
    assert tombstone(system, rec["id"])[0] == "ready"
    assert link() != [], "a held, ready video lost its stream link"

    # released, then expired by a real pass: the link goes with the files
    assert requests.delete(f"{system.base_url}/api/videos/{rec['id']}/hold",
                           headers=system.admin, timeout=5).status_code == 200
    rows(system.database_url, "UPDATE videos SET created_at = now() - interval '2 days'"
         " RETURNING id")
    done = videodrop(system, "retention")
    assert done.returncode == 0, done.stderr
    assert tombstone(system, rec["id"])[:3] == ("expired", "max_age", True)
    assert link() == [], "an expired video kept its stream link"


@pytest.mark.parametrize("every", ["nan", "inf", "1e300", "0", "-5"])
def test_an_interval_that_is_no_interval_is_refused(make_system, tmp_path, every):
    """``--every nan`` would pass without pause, ``inf`` crash after the first pass."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[global]\nmax_age = "1d"\n')
    system = make_system(VIDEODROP_RETENTION_FILE=str(rules))
    done = videodrop(system, "retention", "--every", every, timeout=60)
    assert done.returncode == 78, (done.returncode, done.stderr[-2000:])
    assert "--every" in done.stderr and "Traceback" not in done.stderr


def test_a_file_that_cannot_be_removed_does_not_stop_the_others(db_url, catalog, tmp_path):
    """One expired video's file the pass cannot remove (here its stored path is a folder
    with something in it; in life EACCES, EROFS, EIO): the others go, the pass ends, that
    row stays expired with its removal still to do, and the next pass tries it again."""
    media = tmp_path / "media"
    now = datetime.now(UTC).replace(microsecond=0)
    made = insert(db_url, generate(6, ["inbox/cam1"], now - timedelta(days=3),
                                   span=timedelta(hours=1), held_every=99, failed_every=99,
                                   processing_every=99), media)
    bad = made[2]
    (media / bad.stored_path).unlink()
    (media / bad.stored_path / "inside").mkdir(parents=True)
    rules = rules_file.parse('[origins."inbox/cam1"]\nmax_age = "1d"\n')
    result = run_pass(catalog, rules, media, logs.get("test"))
    assert sum(result.files.values()) == 5
    after = {r[0]: r[1:] for r in rows(db_url, "SELECT id, status, files_removed_at IS NOT"
                                       " NULL FROM videos")}
    assert after == {r.id: ("expired", r.id != bad.id) for r in made}
    assert [r for r in made if (media / r.stored_path).exists()] == [bad]
    (media / bad.stored_path / "inside").rmdir()  # the operator fixes it: a file again
    (media / bad.stored_path).rmdir()
    (media / bad.stored_path).write_bytes(b"\0" * bad.size)
    again = run_pass(catalog, rules, media, logs.get("test"))
    assert again.finished == 1 and not (media / bad.stored_path).exists()
    assert rows(db_url, "SELECT count(*) FROM videos WHERE files_removed_at IS NULL") == [(0,)]
