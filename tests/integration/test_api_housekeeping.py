"""api/uploads/probe_requests.py on real PostgreSQL and RabbitMQ: an upload is never lost.

A publish the broker refused is kept and sent by the next housekeeping round; an upload
whose message never went out is published again; an upload whose API process died is
failed and its files removed."""

from __future__ import annotations

import pika
import pytest

from api.uploads.probe_requests import ProbeRequests
from api.uploads.staging import stage_path
from tests.harness import rows
from videodrop import logs
from videodrop.broker import Publisher
from videodrop.catalog import Catalog
from videodrop.messages import ProbeVideo, decode
from videodrop.settings import Settings

DOWN = "amqp://guest:guest@127.0.0.1:1/%2F"


@pytest.fixture
def parts(db_url, amqp_url, broker_prefix, tmp_path):
    settings = Settings(database_url=db_url, amqp_url=amqp_url, amqp_prefix=broker_prefix,
                        media_root=tmp_path / "media")
    catalog = Catalog.connect(db_url)
    yield settings, catalog
    catalog.close()


def queued(settings: Settings) -> list[ProbeVideo]:
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = conn.channel()
        got = []
        while True:
            method, _props, body = channel.basic_get(settings.probe_queue, auto_ack=True)
            if method is None:
                return got
            msg = decode(body)
            assert isinstance(msg, ProbeVideo)
            got.append(msg)
    finally:
        conn.close()


def received(catalog: Catalog) -> int:
    video = catalog.create_upload(filename="a.mp4")
    assert catalog.upload_received(video.id, 10) is not None
    return video.id


def test_a_refused_publish_is_sent_by_the_next_round(parts):
    settings, catalog = parts
    video_id = received(catalog)
    probes = ProbeRequests(settings.with_(amqp_url=DOWN), catalog, logs.get("test"))
    assert probes.publish(video_id) is False
    assert probes.pending() == {video_id}
    probes.settings = settings  # the broker is back
    publisher = Publisher(settings, name="test")
    try:
        assert probes.run_once(publisher)["republished"] == 1
    finally:
        publisher.close()
    assert probes.pending() == set()
    assert queued(settings) == [ProbeVideo(video_id=video_id)]
    assert probes.publish(video_id) is True  # and straight away while the broker is up
    assert queued(settings) == [ProbeVideo(video_id=video_id)]


def test_unpublished_and_stale_uploads(parts):
    settings, catalog = parts
    lost = received(catalog)  # received, never published, long ago
    fresh = received(catalog)  # received just now: its message may well be on its way
    dead = catalog.create_upload(filename="b.mp4")  # its API process died mid-upload
    alive = catalog.create_upload(filename="c.mp4")  # still uploading, heartbeat recent
    for video_id in (lost, dead.id):
        rows(settings.database_url, "UPDATE videos SET updated_at = now() - interval '1 hour'"
             " WHERE id = %s RETURNING id", video_id)
    stage = stage_path(settings.media_root, dead.id)
    stage.parent.mkdir(parents=True)
    stage.write_bytes(b"partial")
    stored = settings.media_root / dead.stored_path  # died between rename and commit
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"whole")

    probes = ProbeRequests(settings, catalog, logs.get("test"))
    publisher = Publisher(settings, name="test")
    try:
        assert probes.run_once(publisher) == {"republished": 1, "stale": 1}
        assert probes.run_once(publisher) == {"republished": 0, "stale": 0}  # claimed once
    finally:
        publisher.close()
    assert queued(settings) == [ProbeVideo(video_id=lost)]
    states = dict(rows(settings.database_url, "SELECT id, status FROM videos"))
    assert states == {lost: "processing", fresh: "processing", dead.id: "failed",
                      alive.id: "uploading"}
    assert catalog.by_id(dead.id).processing_error == "upload interrupted"
    assert not stage.exists() and not stored.exists() and not stored.parent.exists()
