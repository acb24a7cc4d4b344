"""Attacks on the s3 media store (issue 20) on real parts: a real S3 server (SeaweedFS),
PostgreSQL, RabbitMQ, the API over HTTP. Presigned URLs are bearer credentials: none may
reach a row, a record, a log line or an error sentence."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from testbed.s3 import S3Server
from tests.harness import REPO, System, free_port, rows, videodrop, wait_for
from tests.integration.test_object_serving import redirecting
from tests.integration.test_prober_pipeline import s3_store
from tests.integration.test_prober_s3 import ask_probe, big_mp4, object_sha256, spooled
from videodrop.catalog import Catalog

#: What every presigned URL of SigV4 carries (query parameters): never stored or logged.
SIGNED = ("X-Amz-Signature", "X-Amz-Credential", "Signature=", "AWSAccessKeyId")


@pytest.fixture
def s3_env(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> dict[str, str]:
    return {"VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{tmp_path.name[-24:]}",
            **s3_server.env()}


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
        ask_probe(system, video.id)
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
            at = text.find(mark)
            assert at < 0, f"{mark} in the {where}: {text[max(0, at - 400):at + 40]}"


def test_a_reused_presigned_url_is_never_handed_out_dead(s3_server: S3Server, s3_bucket: str,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """VIDEODROP_S3_PRESIGN_SECONDS may be as short as 1 s, shorter than the worker's
    REUSE_SECONDS: a 307 must never point at a URL that has already expired."""
    _, client = redirecting(s3_server, s3_bucket, monkeypatch, "short", b"y" * 1000,
                            VIDEODROP_S3_PRESIGN_SECONDS="2")
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


def drop_big_mp4(system: System, folder: Path) -> tuple[int, str]:
    """A 64 MiB valid MP4 written hidden, then renamed into the inbox as ``big.mp4``:
    (size, sha256)."""
    clip = folder / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=2:size=64x64:rate=10", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(clip)], check=True, timeout=60)
    writing = system.inbox / ".big.mp4.tmp"
    size, sha256 = big_mp4(writing, clip, 64 << 20)
    os.rename(writing, system.inbox / "big.mp4")
    return size, sha256


class Relay:
    """A TCP relay on a fixed loopback port in front of the S3 server: :meth:`down` closes
    its listener and cuts every connection (the store gone: connection refused),
    :meth:`stall` takes connections and never answers (the store hung), :meth:`up` relays
    again on the same port (the same endpoint, so the same signatures)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.stalled = False
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again) on the port; after :meth:`stall`, the connections it holds are
        cut and new ones relayed."""
        if self.stalled:
            self.down()
            self.stalled = False
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self.listener is not None:
            # a close alone leaves a listener that a thread's accept() waits on listening
            # until that accept returns: shutdown wakes it (EINVAL) and stops the listening
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def stall(self) -> None:
        """The store hangs (a stopped server, a partition that drops packets): every
        connection is cut and new ones are accepted, then neither read nor answered."""
        self.down()
        self.stalled = True
        self._listen()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.stalled:  # held open, never read
                with self.lock:
                    self.conns.append(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


@pytest.mark.crash
def test_the_store_going_away_mid_put_makes_the_file_wait_not_fail(
        make_system: Any, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    """The S3 endpoint refuses connections in the middle of a large file's put, then comes
    back on the same address: the file waits (row ``processing``, the file in the spool),
    then ends as one ready row and one verified object, no unfinished upload left."""
    host, port = s3_server.endpoint.removeprefix("http://").rsplit(":", 1)
    relay = Relay((host, int(port)))
    env = {**s3_server.env(), "VIDEODROP_S3_ENDPOINT_URL": relay.endpoint,
           "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/away-{secrets.token_hex(4)}",
           "VIDEODROP_S3_PART_SIZE": "5MiB", "VIDEODROP_PROBER_CONCURRENCY": "1"}
    system: System = make_system(**env).start("prober", "ingest")
    media = s3_store({**env, "VIDEODROP_S3_ENDPOINT_URL": s3_server.endpoint})
    client, bucket, prefix = s3_server.client(), media.bucket, media.prefix
    size, sha256 = drop_big_mp4(system, tmp_path)

    def uploads() -> list[dict[str, Any]]:
        return client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    wait_for(uploads, timeout=120, interval=0.01, what="the put's multipart upload to start")
    relay.down()
    try:
        wait_for(lambda: "transient problem" in system.log_text("prober"), timeout=120,
                 what="the prober to wait the store out")
        [(status, error)] = rows(system.database_url,
                                 "SELECT status, processing_error FROM videos")
        assert status == "processing", error
        assert list(media.list_objects("")) == []
        assert [p.stat().st_size for p in spooled(system)] == [size]
    finally:
        relay.up()

    def ready() -> list[tuple[Any, ...]] | None:
        found = rows(system.database_url, "SELECT status, size, sha256 FROM videos")
        return found if found[0][0] in {"ready", "failed"} else None
    assert wait_for(ready, timeout=180, what="the file to be ready") == [
        ("ready", size, sha256)]
    [stored] = list(media.list_objects(""))
    assert stored.size == size
    assert object_sha256(media, stored.key) == sha256
    wait_for(lambda: uploads() == [], timeout=60, what="no unfinished upload")
    assert spooled(system) == []


ODD_NAMES = ["two  spaces é.mp4", "cafe\u0301 日本 #1?%.mp4", "a+b=c&d;e'f\".mp4"]


@pytest.mark.parametrize("serve", ["redirect", "proxy"])
def test_odd_names_are_stored_and_served_from_s3(make_system: Any, s3_env: dict[str, str],
                                                  samples: Path, serve: str) -> None:
    """Inbox files whose names carry spaces, combining marks, CJK, ``#?%+&;'"``: stored
    in the bucket under their keys and served by /download/ (a 307 whose presigned URL
    works, or the bytes through the API), Range included."""
    system: System = make_system(VIDEODROP_S3_SERVE=serve, **s3_env).start()
    media = s3_store(s3_env)
    data = (samples / "bbb_chapters.mp4").read_bytes()
    for name in ODD_NAMES:
        (system.inbox / name).write_bytes(data)
    for name in ODD_NAMES:
        record = system.wait_record(name)
        assert record["status"] == "ready", record
        url = record["api_links"]["download_url"]
        got = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
        assert (got.status_code, got.content) == (206, data[100:200]), name
        assert ("X-Amz-Signature" in got.url) == (serve == "redirect")
    assert len(list(media.list_objects("videos/"))) == len(ODD_NAMES)


def test_a_revoked_token_gets_404_at_once_and_its_url_dies(
        make_system: Any, s3_env: dict[str, str], samples: Path) -> None:
    """Redirect mode: a token revoked right after a 307 answers 404 at once on every
    token endpoint (the worker's reused URL is not handed out again), and the URL it got
    stops working within VIDEODROP_S3_PRESIGN_SECONDS."""
    system: System = make_system(VIDEODROP_S3_PRESIGN_SECONDS="3", **s3_env).start()
    (system.inbox / "r.mp4").write_bytes((samples / "bbb_chapters.mp4").read_bytes())
    record = system.wait_record("r.mp4")
    links = record["api_links"]
    first = requests.get(links["download_url"], allow_redirects=False, timeout=30)
    assert first.status_code == 307
    url = first.headers["Location"]
    gone = requests.delete(f"{system.base_url}/api/videos/{record['id']}/token",
                           headers=system.admin, timeout=30)
    assert gone.status_code == 200
    for link in (links["download_url"], links["stream_url"]):
        again = requests.get(link, allow_redirects=False, timeout=30)
        assert again.status_code == 404, link
    wait_for(lambda: requests.get(url, timeout=30).status_code == 403, timeout=30,
             what="the URL handed out before the revocation to die")


@pytest.mark.parametrize("role", ["derive"])
@pytest.mark.parametrize("what", ["no bucket", "wrong secret"])
def test_derive_refuses_a_store_that_refuses_it(
        make_system: Any, s3_server: S3Server, s3_bucket: str, role: str, what: str) -> None:
    """As the prober: a bucket that is not there or credentials the server refuses stop
    derive at start (exit 78, the store named) instead of running every job against it.
    (The API starts and answers 503 to what needs the store: test_s3_uploads.)"""
    env = {**s3_server.env(), "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/refused"}
    if what == "no bucket":
        env["VIDEODROP_STORAGE_URL"] = f"s3://nobucket-{secrets.token_hex(4)}/refused"
    else:
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    system: System = make_system()
    done = subprocess.run([sys.executable, "-m", "videodrop", role],
                          env={**system.env, **env, "VIDEODROP_BIND": f"127.0.0.1:{free_port()}"},
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "/refused/" in done.stderr


@pytest.mark.crash
def test_a_row_deleted_while_its_prober_is_dead_leaves_no_spool_file(
        make_system: Any, s3_env: dict[str, str], s3_server: S3Server, tmp_path: Path) -> None:
    """SIGKILL of the prober mid-put, then an admin DELETE of the row (the API cannot see
    the inbox's spool): the restarted prober finds the spool file no row names and removes
    it, with the dead put's upload of its key (no file left in the inbox for ever)."""
    system: System = make_system(VIDEODROP_S3_PART_SIZE="5MiB",
                                 VIDEODROP_PROBER_CONCURRENCY="1", **s3_env)
    system.start("prober", "ingest", "api")
    media = s3_store(s3_env)
    client, bucket, prefix = s3_server.client(), media.bucket, media.prefix
    drop_big_mp4(system, tmp_path)

    def uploads() -> list[dict[str, Any]]:
        return client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    wait_for(uploads, timeout=120, interval=0.01, what="the put's multipart upload to start")
    system.kill("prober")
    [(video_id,)] = rows(system.database_url, "SELECT id FROM videos")
    assert len(spooled(system)) == 1
    gone = requests.delete(f"{system.base_url}/api/videos/{video_id}", headers=system.admin,
                           timeout=30)
    assert gone.status_code == 204
    system.start("prober")
    wait_for(lambda: spooled(system) == [], timeout=60, what="the orphan spool file removed")
    wait_for(lambda: uploads() == [], timeout=60, what="its dead upload aborted")
    assert list(media.list_objects("")) == []
    assert rows(system.database_url, "SELECT id FROM videos") == []


def test_a_redirect_serves_the_type_and_the_download_name_as_the_proxy_does(
        make_system: Any, s3_env: dict[str, str], samples: Path) -> None:
    """VIDEODROP_S3_SERVE=redirect: what the presigned URL answers carries the type and
    the disposition (attachment with the original's name for /download/, inline for
    /stream/) that the API itself sends in proxy mode; S3 would otherwise answer with
    whatever type it guessed (``binary/octet-stream`` on AWS) and no name."""
    system: System = make_system(**s3_env).start()
    (system.inbox / "door cam ü.mov").write_bytes(
        (samples / "sandwich-av-mp4a.40.5.mov").read_bytes())
    record = system.wait_record("door cam ü.mov")
    links = record["api_links"]
    download = requests.get(links["download_url"], timeout=30)
    assert download.history and download.history[0].status_code == 307
    assert download.headers["Content-Type"] == "video/quicktime"
    disposition = download.headers.get("Content-Disposition", "")
    assert disposition.startswith("attachment") and "door" in disposition
    stream = requests.get(links["stream_url"], headers={"Range": "bytes=0-9"}, timeout=30)
    assert stream.status_code == 206
    assert stream.headers["Content-Type"] == "video/quicktime"
    assert stream.headers.get("Content-Disposition", "inline").startswith("inline")


def test_migrate_reports_a_file_whose_name_is_no_key_and_copies_the_rest(
        make_system: Any, s3_server: S3Server, s3_bucket: str) -> None:
    """A file store holding a file whose name is no valid key (bytes that are not UTF-8, a
    control character): one ``FAILED`` line naming it, the other objects copied, exit 1;
    never a traceback halfway through."""
    system: System = make_system(**s3_server.env())
    folder = system.media_root / "videos" / "cam1"
    folder.mkdir(parents=True)
    (folder / "a.mp4").write_bytes(b"a" * 1000)
    with open(os.fsencode(folder) + b"/b\xff\x01.mp4", "wb") as fh:
        fh.write(b"b" * 1000)
    (folder / "c.mp4").write_bytes(b"c" * 1000)
    prefix = f"odd-{secrets.token_hex(4)}"
    dry = videodrop(system, "storage", "migrate", "--to", f"s3://{s3_bucket}/{prefix}",
                    "--dry-run")
    assert (dry.returncode, dry.stdout.count("would copy ")) == (0, 3), dry.stderr
    done = videodrop(system, "storage", "migrate", "--to", f"s3://{s3_bucket}/{prefix}")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert [line for line in done.stdout.splitlines() if line.startswith("FAILED")] != []
    media = s3_store({**s3_server.env(), "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{prefix}"})
    assert sorted(i.key for i in media.list_objects("")) == ["videos/cam1/a.mp4",
                                                             "videos/cam1/c.mp4"]
