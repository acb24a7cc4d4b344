"""The spine on real parts: a file dropped in the inbox becomes working token links, on
each media store (file, and s3 on the session's weed mini)."""

from __future__ import annotations

import hashlib
import shutil

import pika
import pytest
import requests

from tests.harness import rows, wait_for
from tests.integration.test_api_uploads import media_of
from videodrop.messages import InboxFile, encode
from videodrop.migrate import available, migrate

RECORD_KEYS = {"id", "source_id", "name", "description", "status", "file_info", "api_links"}
FILE_INFO_KEYS = {"filename", "format", "size", "duration", "resolution", "fps", "codec",
                  "audio_codec"}
# the seed's keys, then the derivatives' and the frame's template (they may only be added
# to, never renamed)
LINK_KEYS = {"api_endpoint", "stream_url", "access_token", "metadata_url", "download_url",
             "poster_url", "storyboard_url", "storyboard_vtt_url", "scenes_url",
             "scenes_vtt_url", "frame_url", "clip_url", "packets_url"}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrate_twice_changes_nothing(db_url):
    assert migrate(db_url) == []  # the fixture already migrated
    versions = [(m.version,) for m in available()]
    assert versions and versions[0] == (1,)
    assert rows(db_url, "SELECT version FROM schema_migrations ORDER BY 1") == versions


@pytest.fixture
def system(make_system, store_env):
    """The whole system running (api, prober, ingest) on the store of ``store_env``."""
    return make_system(**store_env).start()


def test_dropped_file_becomes_working_links(system, samples):
    src = samples / "bbb_chapters.mp4"
    shutil.copy(src, system.inbox / "bbb_chapters.mp4")
    [item] = system.wait_done(1)
    assert item["status"] == "ready", item

    token = item["api_links"]["access_token"]
    assert len(token) >= 43  # 256 bits, URL-safe base64
    record = requests.get(f"{system.base_url}/api/video/{token}/", timeout=5).json()
    assert set(record) >= RECORD_KEYS
    assert set(record["file_info"]) >= FILE_INFO_KEYS
    assert set(record["api_links"]) == LINK_KEYS
    assert record["api_links"] == {
        "api_endpoint": f"{system.base_url}/api/video/{token}/",
        "stream_url": f"{system.base_url}/stream/{token}/",
        "access_token": token,
        "metadata_url": f"{system.base_url}/api/video/{token}/metadata/",
        "download_url": f"{system.base_url}/api/video/{token}/download/",
        "poster_url": f"{system.base_url}/api/video/{token}/poster/",
        "storyboard_url": f"{system.base_url}/api/video/{token}/storyboard/",
        "storyboard_vtt_url": f"{system.base_url}/api/video/{token}/storyboard.vtt",
        "scenes_url": f"{system.base_url}/api/video/{token}/scenes/",
        "scenes_vtt_url": f"{system.base_url}/api/video/{token}/scenes.vtt",
        "frame_url": f"{system.base_url}/api/video/{token}/frame/?t={{t}}",
        "clip_url": f"{system.base_url}/api/video/{token}/clip/?start={{start}}&end={{end}}",
        "packets_url": f"{system.base_url}/api/video/{token}/packets/",
    }
    info = record["file_info"]
    assert info["filename"] == f"videos/{record['source_id']}/bbb_chapters.mp4"
    assert info["format"] == "mp4"
    assert info["size"] == src.stat().st_size
    assert info["codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["duration"] > 1
    assert record["processing_error"] is None
    assert record["original_filename"] == "bbb_chapters.mp4"
    assert record["name"] == "bbb chapters"

    # The file went into the store; the inbox is empty.
    with media_of(system).open(info["filename"]) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == sha256(src)
    assert system.inbox_entries() == []

    meta = requests.get(record["api_links"]["metadata_url"], timeout=5).json()
    assert meta["sha256"] == sha256(src)
    assert meta["duration"] == info["duration"]

    body = requests.get(record["api_links"]["download_url"], timeout=10)
    assert body.status_code == 200
    assert body.content == src.read_bytes()
    assert "attachment" in body.headers["Content-Disposition"]

    part = requests.get(record["api_links"]["stream_url"], headers={"Range": "bytes=100-199"},
                        timeout=5)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{src.stat().st_size}"
    assert part.headers["Content-Type"] == "video/mp4"
    assert part.headers["Accept-Ranges"] == "bytes"
    assert part.content == src.read_bytes()[100:200]

    for url in (f"{system.base_url}/api/video/{'x' * 43}/", f"{system.base_url}/stream/nope/"):
        assert requests.get(url, timeout=5).status_code == 404


def test_admin_list_needs_the_token(make_system):
    system = make_system().start("api")  # no media: one store is enough
    url = f"{system.base_url}/api/videos"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert requests.get(url, headers=wrong, timeout=5).status_code == 401
    ok = requests.get(url, headers=system.admin, timeout=5)
    assert ok.status_code == 200 and ok.json() == {"items": [], "next": None}


def test_broken_file_fails_with_a_reason_and_the_next_one_is_fine(system, samples):
    (system.inbox / "garbage.mp4").write_bytes(b"this is not a video at all" * 100)
    [bad] = system.wait_done(1)
    assert bad["status"] == "failed"
    assert bad["processing_error"]
    shutil.copy(samples / "bbb_input.webm", system.inbox / "good.webm")
    items = system.wait_done(2)
    good = next(v for v in items if v["original_filename"] == "good.webm")
    assert good["status"] == "ready" and good["file_info"]["format"] == "webm"
    token = bad["api_links"]["access_token"]
    resp = requests.get(f"{system.base_url}/stream/{token}/", timeout=5)
    assert resp.status_code == 409 and bad["processing_error"] in resp.json()["description"]


def test_subfolder_is_the_origin_and_list_is_newest_first(system, samples):
    (system.inbox / "cam1").mkdir()
    shutil.copy(samples / "tiny_av1.mp4", system.inbox / "cam1" / "door.mp4")
    system.wait_done(1)
    shutil.copy(samples / "sar_2x1.mp4", system.inbox / "yard.mp4")
    items = system.wait_done(2)
    assert [v["original_filename"] for v in items] == ["yard.mp4", "door.mp4"]
    assert items[1]["origin"] == "inbox/cam1" and items[0]["origin"] == "inbox"
    page = requests.get(f"{system.base_url}/api/videos", params={"limit": 1},
                        headers=system.admin, timeout=5).json()
    assert len(page["items"]) == 1 and page["next"]
    rest = requests.get(page["next"], headers=system.admin, timeout=5).json()
    assert [v["original_filename"] for v in rest["items"]] == ["door.mp4"]
    assert rest["next"] is None


def test_the_same_file_published_again_lands_on_one_row(make_system, samples):
    system = make_system().start("api", "prober")  # no ingest: we publish by hand
    target = system.inbox / "twice.mp4"
    shutil.copy(samples / "bbb_chapters.mp4", target)
    st = target.stat()
    msg = encode(InboxFile("twice.mp4", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                               st.st_ctime_ns))
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()
    for _ in range(3):
        channel.basic_publish(system.prefix, "probe", msg,
                              pika.BasicProperties(delivery_mode=2))
    conn.close()
    wait_for(lambda: system.queue_counts()[0] == 0, what="the queue to drain")
    [item] = system.wait_done(1)
    assert item["status"] == "ready"
    assert rows(system.database_url, "SELECT count(*), max(attempts) FROM videos") == [(1, 1)]
