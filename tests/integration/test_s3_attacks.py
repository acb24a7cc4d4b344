"""Attacks on the s3 media store (issue 20) on real parts: a real S3 server (SeaweedFS),
PostgreSQL, RabbitMQ, the API over HTTP. Presigned URLs are bearer credentials: none may
reach a row, a record, a log line or an error sentence."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pika
import pytest
import requests

from testbed.s3 import S3Server
from tests.harness import System, rows, videodrop, wait_for
from tests.integration.test_prober_pipeline import s3_store
from videodrop.catalog import Catalog
from videodrop.messages import ProbeVideo, encode
from videodrop.settings import Settings
from videodrop.storage import from_settings

#: What every presigned URL of SigV4 carries (query parameters): never stored or logged.
SIGNED = ("X-Amz-Signature", "X-Amz-Credential", "Signature=", "AWSAccessKeyId")


@pytest.fixture
def s3_env(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> dict[str, str]:
    return {"VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{tmp_path.name[-24:]}",
            **s3_server.env()}


def _publish_probe(system: System, video_id: int) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.basic_publish(system.prefix, "probe", encode(ProbeVideo(video_id=video_id)),
                          pika.BasicProperties(delivery_mode=2))
    conn.close()


def test_a_broken_upload_probed_in_the_bucket_leaks_no_presigned_url(
        make_system: Any, s3_env: dict[str, str], samples: Path, tmp_path: Path) -> None:
    """An upload ffprobe cannot open, read through a presigned URL: ffprobe echoes its
    input argument in its errors; the URL must not reach the row (error, metadata, raw
    ffprobe output), the record JSON or the prober's log."""
    system: System = make_system(**s3_env).start("prober", "api")
    media = s3_store(s3_env)
    broken = tmp_path / "broken.mp4"
    data = (samples / "bbb_chapters.mp4").read_bytes()
    # the ftyp box kept, everything after it garbage: ffprobe opens it and fails
    broken.write_bytes(data[:32] + bytes(200_000))
    catalog = Catalog.connect(system.database_url)
    ids = []
    for name, path in (("broken.mp4", broken), ("good.mp4", samples / "bbb_chapters.mp4")):
        video = catalog.create_upload(filename=name)
        stored = media.put_file(video.stored_path, path)
        catalog.upload_received(video.id, stored.size)
        _publish_probe(system, video.id)
        ids.append(video.id)
    catalog.close()

    def finished() -> list[tuple[Any, ...]] | None:
        found = rows(system.database_url, "SELECT status, row_to_json(videos)::text"
                     " FROM videos ORDER BY id")
        return found if all(f[0] in {"ready", "failed"} for f in found) else None
    done = wait_for(finished, timeout=60, what="the uploads to be probed")
    assert [status for status, _ in done] == ["failed", "ready"]
    row_json = " ".join(text for _, text in done)
    record = system.videos()
    seen = {"row": row_json, "record": json.dumps(record),
            "prober log": system.log_text("prober"), "api log": system.log_text("api")}
    for where, text in seen.items():
        for mark in SIGNED:
            assert mark not in text, f"{mark} in the {where}: {text[max(0, text.find(mark) - 400):text.find(mark) + 40]}"


def test_a_reused_presigned_url_is_never_handed_out_dead(s3_server: S3Server, s3_bucket: str,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """VIDEODROP_S3_PRESIGN_SECONDS may be as short as 1 s, shorter than the worker's
    REUSE_SECONDS: a 307 must never point at a URL that has already expired."""
    from api.files import objects

    env = {**s3_server.env(), "VIDEODROP_S3_PRESIGN_SECONDS": "2",
           "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/short-{secrets.token_hex(4)}/"}
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    store = from_settings(Settings.from_env(env))
    store.put_stream("videos/short.mp4", io.BytesIO(b"y" * 1000))

    class Serve:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            objects.send_object(req, resp, store, "videos/short.mp4", mode="redirect",
                                content_type="video/mp4", disposition="inline",
                                filename="short.mp4")

    app = falcon.App()
    app.add_route("/r", Serve())
    client = falcon.testing.TestClient(app)
    first = client.simulate_get("/r").headers["Location"]
    assert requests.get(first, timeout=30).status_code == 200
    wait_for(lambda: requests.get(first, timeout=30).status_code == 403, timeout=30,
             what="the first URL to expire")
    again = client.simulate_get("/r")
    assert again.status_code == 307
    assert requests.get(again.headers["Location"], timeout=30).status_code == 200


@pytest.mark.parametrize("what", ["no bucket", "wrong secret"])
def test_migrate_to_a_store_that_refuses_us_exits_78_with_a_sentence(
        make_system: Any, s3_server: S3Server, s3_bucket: str, what: str) -> None:
    """``storage migrate --to`` a bucket that does not exist or with credentials the
    server refuses: exit 78 (an operator must act) and one sentence, no traceback, for
    the dry run and the run alike."""
    env = dict(s3_server.env())
    bucket = s3_bucket
    if what == "no bucket":
        bucket = f"nobucket-{secrets.token_hex(4)}"
    else:
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    system: System = make_system(**env)
    (system.media_root / "videos" / "cam1").mkdir(parents=True)
    (system.media_root / "videos" / "cam1" / "a.mp4").write_bytes(b"z" * 1000)
    for extra in ([], ["--dry-run"]):
        done = videodrop(system, "storage", "migrate", "--to", f"s3://{bucket}/m", *extra)
        assert done.returncode == 78, (done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert "configuration error" in done.stderr
