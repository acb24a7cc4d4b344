"""Serving objects of an S3 store (api/files/objects.py) over real HTTP: real gunicorn, a
real S3 server (weed mini, tests/s3server.py). ``proxy`` must answer every request exactly
as a file does (api/files/response.py: status, headers, bytes), so the same requests go to
both and their answers are compared; ``redirect`` answers 307 to a presigned URL that the
store itself serves, Range included."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import secrets
import textwrap
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import pytest
import requests

from api.app import create_app
from testbed.s3 import S3Server
from tests.harness import rows
from tests.integration.test_fileresponse import Server, start_server
from tests.integration.test_token_cache import add_ready
from videodrop.catalog import Catalog
from videodrop.settings import Settings
from videodrop.storage import from_settings

NAMES = {"big": "big.mp4", "small": "small.webm", "cafe": "café vidéo.mp4",
         "empty": "empty.mp4"}
APP_MODULE = textwrap.dedent(f"""
    import os
    from pathlib import Path
    import falcon
    from api.files.objects import send_object
    from api.files.response import send_file
    from api.ops.health import Health
    from videodrop.settings import Settings
    from videodrop.storage import from_settings

    ROOT = Path(os.environ["FILEAPP_ROOT"])
    NAMES = {NAMES!r}
    STORE = from_settings(Settings.from_env())

    class Serve:
        def __init__(self, how):
            self.how = how

        def on_get(self, req, resp, key):
            name = NAMES.get(key, "missing.mp4")
            kw = dict(content_type="video/mp4", disposition="inline", filename=name)
            if self.how == "file":
                send_file(req, resp, ROOT / name, **kw)
            else:
                send_object(req, resp, STORE, "videos/" + name, mode=self.how, **kw)

        on_head = on_get

    app = falcon.App()
    app.add_route("/healthz", Health())  # the API's own
    for how in ("file", "proxy", "redirect"):
        app.add_route("/" + how + "/{{key}}/", Serve(how))
""")
ADMIN = secrets.token_urlsafe(32)
#: What must be the same whoever holds the bytes (the validators are each store's own).
SAME = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges",
        "Content-Disposition", "Cache-Control", "X-Content-Type-Options", "Referrer-Policy")


@pytest.fixture(scope="module")
def contents() -> dict[str, bytes]:
    return {"big": os.urandom(3 * 1024 * 1024 + 7), "small": os.urandom(1000),
            "cafe": os.urandom(10_000), "empty": b""}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, s3_bucket: str,
           contents: dict[str, bytes]) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("objectserving")
    (work / "data").mkdir()
    (work / "fileapp.py").write_text(APP_MODULE)
    env = {**s3_server.env(),
           "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/serve-{secrets.token_hex(4)}/"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        store = from_settings(Settings.from_env(env))
        for key, body in contents.items():
            path = work / "data" / NAMES[key]
            path.write_bytes(body)
            hour_ago = time.time() - 3600  # Last-Modified a strong validator, as on S3
            os.utime(path, (hour_ago, hour_ago))
            store.put_file("videos/" + NAMES[key], path)
        srv = start_server(work, work / "data")
    yield srv
    srv.stop()


def get(srv: Server, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, Message, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def _plain(headers: Message, body: bytes) -> tuple[dict[str, str | None], bytes]:
    """The headers that must match and the body, a multipart boundary made neutral."""
    found: dict[str, str | None] = {name: headers.get(name) for name in SAME}
    boundary = re.search(r"boundary=([0-9a-f]+)", found["Content-Type"] or "")
    if boundary:
        found["Content-Type"] = (found["Content-Type"] or "").replace(boundary[1], "B")
        body = body.replace(boundary[1].encode(), b"B")
    return found, body


def _requests(etag: str) -> list[tuple[str, dict[str, str]]]:
    return [("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-99"}),
            ("GET", {"Range": "bytes=-500"}), ("GET", {"Range": "bytes=100-"}),
            ("GET", {"Range": "bytes=0-9,20-29,900-999"}),
            ("GET", {"Range": "bytes=0-0,-1"}),
            ("GET", {"Range": "bytes=99999999-"}), ("GET", {"Range": "bytes=5-2"}),
            ("HEAD", {"Range": "bytes=0-9"}),
            ("GET", {"If-None-Match": etag}), ("HEAD", {"If-None-Match": etag}),
            ("GET", {"If-Match": '"nope"'}), ("GET", {"If-Match": etag, "Range": "bytes=1-2"}),
            ("GET", {"If-Range": etag, "Range": "bytes=10-19"}),
            ("GET", {"If-Range": '"stale"', "Range": "bytes=10-19"}),
            ("GET", {"If-Modified-Since": "Sun, 06 Nov 2050 08:49:37 GMT"})]


@pytest.mark.parametrize("key", sorted(NAMES))
def test_proxy_answers_like_a_file(server: Server, contents: dict[str, bytes], key: str):
    etags = {how: get(server, f"/{how}/{key}/")[1]["ETag"] for how in ("file", "proxy")}
    assert etags["proxy"] and etags["proxy"] != etags["file"]  # the store's own validator
    for index, (method, headers) in enumerate(_requests("ETAG")):
        answers = {}
        for how in ("file", "proxy"):
            mine = {k: v.replace("ETAG", etags[how]) for k, v in headers.items()}
            status, got, body = get(server, f"/{how}/{key}/", mine, method)
            answers[how] = (status, *_plain(got, body))
        assert answers["proxy"] == answers["file"], (index, method, headers)
    status, _, body = get(server, f"/proxy/{key}/")
    assert (status, body) == (200, contents[key])  # against the bytes we put, not the API


def test_proxy_and_redirect_of_a_missing_object_are_404(server: Server):
    for how in ("file", "proxy", "redirect"):
        assert get(server, f"/{how}/missing/")[0] == 404


def test_redirect_is_a_short_lived_presigned_url_serving_ranges(server: Server,
                                                                contents: dict[str, Any]):
    status, headers, body = get(server, "/redirect/big/")
    assert (status, body) == (307, b"")
    assert headers["Cache-Control"] == "no-store"
    location = headers["Location"]
    query = urlsplit(location).query
    assert "X-Amz-Signature=" in query
    assert int(re.search(r"X-Amz-Expires=(\d+)", query)[1]) <= 60  # type: ignore[index]
    part = requests.get(location, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206
    assert part.content == contents["big"][100:200]
    whole = requests.get(location, timeout=30)
    assert whole.content == contents["big"]
    assert get(server, "/redirect/big/", method="HEAD")[0] == 307


@pytest.mark.parametrize("serve", ["redirect", "proxy"])
def test_the_api_serves_a_video_and_its_poster_from_s3(db_url: str, s3_server: S3Server,
                                                       s3_bucket: str, monkeypatch, serve):
    """The token endpoints on an S3 store (create_app with that store): /download/ and
    /stream/ by VIDEODROP_S3_SERVE, the poster alike, a missing object 404."""
    for name, value in s3_server.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    settings = Settings.from_env({
        **s3_server.env(), "VIDEODROP_DATABASE_URL": db_url, "VIDEODROP_S3_SERVE": serve,
        "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/api-{secrets.token_hex(4)}/",
        "VIDEODROP_REQUEST_LOG": "off", "VIDEODROP_ADMIN_TOKEN": ADMIN})
    media = from_settings(settings)
    video_id, token = add_ready(db_url)
    [(key, source_id)] = rows(db_url, "SELECT stored_path, source_id FROM videos WHERE id = %s",
                              video_id)
    original, poster = os.urandom(200_000), os.urandom(5_000)
    media.put_stream(key, io.BytesIO(original))
    media.put_stream(f"derivatives/{source_id}/poster.jpg", io.BytesIO(poster))
    rows(db_url, "INSERT INTO derivatives (video_id, kind, status, data) VALUES"
         " (%s, 'poster', 'ready', %s) RETURNING video_id", video_id,
         json.dumps({"file": f"derivatives/{source_id}/poster.jpg"}))
    catalog = Catalog.connect(db_url)
    try:
        client = falcon.testing.TestClient(create_app(settings, catalog, media=media))
        for path, body in ((f"/api/video/{token}/download/", original),
                           (f"/stream/{token}/", original),
                           (f"/api/video/{token}/poster/", poster)):
            got = client.simulate_get(path, headers={"Range": "bytes=10-19"})
            if serve == "redirect" and "/poster/" not in path:  # images: always proxied
                assert got.status_code == 307, path
                assert got.headers["Cache-Control"] == "no-store"
                read = requests.get(got.headers["Location"],
                                    headers={"Range": "bytes=10-19"}, timeout=30)
                assert (read.status_code, read.content) == (206, body[10:20]), path
            else:
                assert (got.status_code, got.content) == (206, body[10:20]), path
                assert got.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
        admin = {"Authorization": f"Bearer {ADMIN}"}
        from api.files import objects
        # a redirect hands out its URL again for a while without asking the store
        monkeypatch.setattr(objects, "REUSE_SECONDS", 0.0)
        media.delete(key)
        missing = client.simulate_get(f"/api/video/{token}/download/")
        assert missing.status_code == 404
        assert missing.json["title"] == "File missing"
        media.put_stream(key, io.BytesIO(original))
        assert client.simulate_delete(f"/api/videos/{video_id}", headers=admin
                                      ).status_code == 204
        assert not media.exists(key)  # the objects go with the row
        assert not media.exists(f"derivatives/{source_id}/poster.jpg")
    finally:
        catalog.close()


def redirecting(s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch,
                name: str, body: bytes, **env: str) -> tuple[Any, falcon.testing.TestClient]:
    """A store on a fresh prefix of the bucket holding ``videos/<name>.mp4`` (``body``),
    and an in-process app whose ``/r`` serves it by ``send_object(mode="redirect")``;
    ``env``: more settings (VIDEODROP_S3_PRESIGN_SECONDS…)."""
    from api.files import objects

    settings = {**s3_server.env(), **env,
                "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{name}-{secrets.token_hex(4)}/"}
    for key, value in settings.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    store = from_settings(Settings.from_env(settings))
    store.put_stream(f"videos/{name}.mp4", io.BytesIO(body))

    class Serve:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            objects.send_object(req, resp, store, f"videos/{name}.mp4", mode="redirect",
                                content_type="video/mp4", disposition="inline",
                                filename=f"{name}.mp4")

    app = falcon.App()
    app.add_route("/r", Serve())
    return store, falcon.testing.TestClient(app)


def test_a_worker_hands_out_its_presigned_url_again_for_a_while(s3_server: S3Server,
                                                                 s3_bucket: str, monkeypatch):
    """A client reading range by range gets the URL made moments ago (no stat, no new
    signature: the object deleted meanwhile still gets it); past REUSE_SECONDS the store is
    asked again (404 once the object is gone)."""
    from api.files import objects

    store, client = redirecting(s3_server, s3_bucket, monkeypatch, "reuse", b"x" * 1000)
    first = client.simulate_get("/r")
    assert first.status_code == 307
    assert requests.get(first.headers["Location"], timeout=30).content == b"x" * 1000
    store.delete("videos/reuse.mp4")
    again = client.simulate_get("/r")
    assert (again.status_code, again.headers["Location"]) == (307, first.headers["Location"])
    monkeypatch.setattr(objects, "REUSE_SECONDS", 0.0)
    assert client.simulate_get("/r").status_code == 404
