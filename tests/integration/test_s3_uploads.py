"""POST /api/videos on an s3:// store, over real HTTP against the API's gunicorn, on a real
S3 server (weed mini, tests/s3server.py): the body streams into a multipart upload, the
object is verified before the row turns ``processing`` and the probe request is published;
an API killed -9 mid-upload leaves nothing visible, and the housekeeping sweep aborts what
it left (api/uploads/to_object.py, api/uploads/probe_requests.py)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from api.uploads.probe_requests import ProbeRequests
from testbed.relay import Relay
from testbed.s3 import S3Server
from tests.harness import System, rows, wait_for
from tests.integration.test_api_uploads import PART, multipart, request_head, status_of
from videodrop import logs
from videodrop.broker import Publisher
from videodrop.catalog import Catalog
from videodrop.settings import Settings
from videodrop.storage import from_settings


@pytest.fixture
def s3_system(make_system: Any, s3_server: S3Server, s3_bucket: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    """The API alone (no prober: the probe request stays in the queue) on its own prefix
    of this session's bucket; this process has the credentials too (its sweeps)."""
    for name, value in s3_server.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    prefix = f"up-{secrets.token_hex(4)}"
    system: System = make_system(VIDEODROP_STORAGE_URL=f"s3://{s3_bucket}/{prefix}",
                                 VIDEODROP_S3_PART_SIZE=str(PART), **s3_server.env())
    system.s3_prefix = prefix + "/"  # type: ignore[attr-defined]
    system.s3 = s3_server.client()  # type: ignore[attr-defined]
    system.bucket = s3_bucket  # type: ignore[attr-defined]
    yield system.start("api")


def objects(system: Any) -> dict[str, bytes]:
    """Every visible object under the system's prefix: key (without it) → bytes."""
    found = system.s3.list_objects_v2(Bucket=system.bucket, Prefix=system.s3_prefix)
    return {item["Key"][len(system.s3_prefix):]: system.s3.get_object(
        Bucket=system.bucket, Key=item["Key"])["Body"].read()
        for item in found.get("Contents", ())}


def open_uploads(system: Any) -> list[dict[str, Any]]:
    found = system.s3.list_multipart_uploads(Bucket=system.bucket, Prefix=system.s3_prefix)
    return list(found.get("Uploads", ()))


def row(system: System, video_id: int) -> tuple[str, int, str | None, str]:
    [found] = rows(system.database_url, "SELECT status, size, sha256, stored_path FROM videos"
                   " WHERE id = %s", video_id)
    return found


def test_uploads_land_as_verified_objects_and_probe_requests(s3_system: System,
                                                             samples: Any):
    system: Any = s3_system
    small = (samples / "bbb_chapters.mp4").read_bytes()
    big = os.urandom(3 * PART + 12345)  # four parts
    raw = requests.post(f"{system.base_url}/api/videos", params={"filename": "big.mp4"},
                        data=big, headers={**system.admin, "Content-Type": "video/mp4"},
                        timeout=60)
    assert raw.status_code == 202, raw.text
    # a form whose source_id comes after the file: the object moves to the row's new key
    body = multipart([("name", "Door"), ("file", ("door.mp4", small)),
                      ("source_id", "cam1_0001")])
    form = requests.post(f"{system.base_url}/api/videos", data=body, timeout=60,
                         headers={**system.admin,
                                  "Content-Type": "multipart/form-data; boundary=XyZzy"})
    assert form.status_code == 202, form.text

    stored = objects(system)
    for answer, data in ((raw, big), (form, small)):
        status, size, sha256, key = row(system, answer.json()["id"])
        assert (status, size, sha256) == ("processing", len(data),
                                          hashlib.sha256(data).hexdigest())
        assert stored.pop(key) == data
    assert stored == {}  # no other object (the form's first key is gone)
    assert open_uploads(system) == []
    assert form.json()["source_id"] == "cam1_0001"
    # one ProbeVideo each, waiting for a prober
    wait_for(lambda: system.queue_counts("probe")[0] == 2, timeout=10,
             what="two probe requests in the queue")


def test_api_killed_mid_upload_leaves_nothing_visible_and_the_sweep_cleans(
        s3_system: System):
    system: Any = s3_system
    total, sent = 48 << 20, 0
    sock = socket.create_connection(("127.0.0.1", system.port), timeout=30)
    try:
        sock.sendall(request_head(system, "/api/videos?filename=long.mp4",
                                  {"Content-Type": "video/mp4",
                                   "Content-Length": str(total)}))
        chunk = os.urandom(1 << 20)

        def part_sent() -> bool:
            nonlocal sent
            sock.sendall(chunk)  # a MiB at a time, until a part is in the store
            sent += len(chunk)
            uploads = open_uploads(system)
            return bool(uploads) and bool(system.s3.list_parts(
                Bucket=system.bucket, Key=uploads[0]["Key"],
                UploadId=uploads[0]["UploadId"]).get("Parts"))
        wait_for(part_sent, timeout=60, interval=0.01, what="a part of the upload stored")
        assert sent < total
        system.kill("api")  # SIGKILL to gunicorn's whole process group
    finally:
        sock.close()
    assert objects(system) == {}  # nothing visible
    [leftover] = open_uploads(system)  # invisible, and still there
    [(video_id, status)] = rows(system.database_url, "SELECT id, status FROM videos")
    assert status == "uploading"

    # the housekeeping round of the next API process (its stale limits made short)
    settings = Settings.from_env(system.env)
    catalog = Catalog.connect(settings.database_url, min_size=1, max_size=2)
    try:
        probes = ProbeRequests(settings, catalog, logs.get("api.publishing"),
                               stale_after=timedelta(0), media=from_settings(settings))
        publisher = Publisher(settings, name="test-housekeeping")
        try:
            with capture_logs() as logged:
                counts = probes.run_once(publisher)
        finally:
            publisher.close()
    finally:
        catalog.close()
    assert counts["stale"] == 1
    assert status_of(system, video_id) == ("failed", "upload interrupted")
    assert open_uploads(system) == []
    assert objects(system) == {}
    aborted = [e for e in logged if e["event"] == "stale upload aborted"]
    assert [e["key"] for e in aborted] == [leftover["Key"][len(system.s3_prefix):]]


def test_the_store_wide_sweep_aborts_old_unfinished_puts(s3_system: System):
    """A put of any process that died (no row to find it by) is aborted once older than
    ``abort_after``, and only then."""
    system: Any = s3_system
    key = system.s3_prefix + "derivatives/x/poster.jpg"
    upload = system.s3.create_multipart_upload(Bucket=system.bucket, Key=key)["UploadId"]
    settings = Settings.from_env(system.env)
    catalog = Catalog.connect(settings.database_url, min_size=1, max_size=2)
    try:
        young = ProbeRequests(settings, catalog, logs.get("api.publishing"),
                              media=from_settings(settings))
        old = ProbeRequests(settings, catalog, logs.get("api.publishing"), abort_after=0,
                            media=from_settings(settings))
        publisher = Publisher(settings, name="test-housekeeping")
        try:
            assert young.run_once(publisher)["aborted"] == 0
            assert [u["UploadId"] for u in open_uploads(system)] == [upload]
            assert old.run_once(publisher)["aborted"] == 1
            assert old.run_once(publisher)["aborted"] == 0  # not due again yet
        finally:
            publisher.close()
    finally:
        catalog.close()
    assert open_uploads(system) == []


def test_a_store_that_refuses_the_upload_is_503_and_leaves_no_row(
        make_system: Any, s3_server: S3Server, s3_bucket: str):
    wrong = {**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    system: System = make_system(VIDEODROP_STORAGE_URL=f"s3://{s3_bucket}/refused", **wrong)
    system.start("api")
    answer = requests.post(f"{system.base_url}/api/videos", params={"filename": "a.mp4"},
                           data=os.urandom(PART + 10), timeout=60,
                           headers={**system.admin, "Content-Type": "video/mp4"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "30"
    assert rows(system.database_url, "SELECT id FROM videos") == []


def relayed_api(make_system: Any, s3_server: S3Server, s3_bucket: str,
                name: str) -> tuple[Any, Relay]:
    """The API alone, started, on a fresh prefix ``<name>-…`` of the bucket, reaching the
    store through a :class:`Relay` (returned with it)."""
    host, port = s3_server.endpoint.removeprefix("http://").rsplit(":", 1)
    relay = Relay((host, int(port)))
    prefix = f"{name}-{secrets.token_hex(4)}"
    system: Any = make_system(**{**s3_server.env(), "VIDEODROP_S3_ENDPOINT_URL": relay.endpoint},
                              VIDEODROP_STORAGE_URL=f"s3://{s3_bucket}/{prefix}",
                              VIDEODROP_S3_PART_SIZE=str(PART))
    system.s3_prefix, system.s3, system.bucket = prefix + "/", s3_server.client(), s3_bucket
    system.start("api")
    return system, relay


def test_a_completion_whose_answer_is_lost_leaves_no_object(
        make_system: Any, s3_server: S3Server, s3_bucket: str):
    """The store completes the multipart upload but its answer never arrives (a cut
    connection, a read timeout): the put raises although the object is there. The upload
    is refused (503, no row) and that object removed, not left in the bucket with no row
    naming it."""
    system, relay = relayed_api(make_system, s3_server, s3_bucket, "lost")
    relay.drop_answers_holding = b"CompleteMultipartUploadResult"
    try:
        answer = requests.post(f"{system.base_url}/api/videos", params={"filename": "a.mp4"},
                               data=os.urandom(2 * PART + 10), timeout=120,
                               headers={**system.admin, "Content-Type": "video/mp4"})
    finally:
        relay.down()
    assert answer.status_code == 503, answer.text
    assert rows(system.database_url, "SELECT id FROM videos") == []
    assert objects(system) == {}
    assert open_uploads(system) == []


def test_an_api_killed_mid_move_leaves_no_object_for_good(
        make_system: Any, s3_server: S3Server, s3_bucket: str,
        monkeypatch: pytest.MonkeyPatch):
    """A form whose source_id comes after its file: the file's object is moved to the
    row's new key (a copy, then the first deleted). An API killed mid-copy leaves the row
    naming the new key and the first object there: noted as a leftover before the row
    moved on, the housekeeping deletes it (one line), and nothing stays."""
    for name, value in s3_server.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    system, relay = relayed_api(make_system, s3_server, s3_bucket, "moved")
    # a field of no use after source_id, held back in part: the form's parser reads ahead
    # past the file part's end, the API then waits for the form's end with the file stored
    body = multipart([("file", ("door.mp4", os.urandom(PART + 10))), ("source_id", "cam9"),
                      ("padding", "x" * (1 << 20))])
    last = body[-100:]
    sock = socket.create_connection(("127.0.0.1", system.port), timeout=30)
    try:
        sock.sendall(request_head(system, "/api/videos", {
            "Content-Type": "multipart/form-data; boundary=XyZzy",
            "Content-Length": str(len(body))}))
        sock.sendall(body[:-len(last)])
        wait_for(lambda: len(objects(system)) == 1, timeout=60, what="the file's object")
        [first] = objects(system)
        relay.stall()  # the store hangs: the move's copy waits on it
        sock.sendall(last)
        wait_for(lambda: rows(system.database_url, "SELECT stored_path FROM videos")
                 == [("videos/cam9/door.mp4",)], timeout=30, what="the row to name its new key")
        system.kill("api")  # SIGKILL mid-move
    finally:
        sock.close()
        if relay.stalled:
            relay.up()
    assert list(objects(system)) == [first]  # the first object, no row naming it

    settings = Settings.from_env(system.env)
    catalog = Catalog.connect(settings.database_url, min_size=1, max_size=2)
    try:
        probes = ProbeRequests(settings, catalog, logs.get("api.publishing"),
                               stale_after=timedelta(0), leftover_after=timedelta(0),
                               media=from_settings(settings))
        publisher = Publisher(settings, name="test-housekeeping")
        try:
            with capture_logs() as logged:
                counts = probes.run_once(publisher)
            assert probes.run_once(publisher)["leftovers"] == 0  # forgotten once removed
        finally:
            publisher.close()
    finally:
        catalog.close()
    assert (counts["stale"], counts["leftovers"]) == (1, 1)
    assert objects(system) == {} and open_uploads(system) == []
    assert [e["key"] for e in logged if e["event"] == "leftover object removed"] == [first]
    relay.down()
