"""POST /api/videos over real HTTP against gunicorn, through the real prober.

The tests of upload semantics run once per media store (``store``: the file store, then a
prefix of the session's bucket on a real S3 server, tests/s3server.py): the same bytes
land, the same refusals leave nothing stored (no file, no object, no open multipart
upload), a client gone mid-upload leaves a failed row."""

from __future__ import annotations

import hashlib
import http.client
import json
import select
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from testbed.s3 import S3Server
from tests.harness import System, rows, wait_for
from tests.integration.test_prober_pipeline import s3_store
from videodrop.storage import FileStore, MediaStore
from videodrop.storage.s3store import S3Store

SAMPLE = "bbb_chapters.mp4"
PART = 5 << 20  # the smallest S3 part: a body of a few MiB is a multipart upload


# --- helpers (also used by the other test_api_* modules) ------------------------------

@pytest.fixture
def store(store_env: dict[str, str]) -> dict[str, str]:
    """The settings of this test's media store (tests/s3server.py's ``store_env``: file,
    then s3 with parts of :data:`PART`)."""
    return {**store_env, "VIDEODROP_S3_PART_SIZE": str(PART)} if store_env else {}


def media_of(system: System) -> MediaStore:
    """The store ``system`` writes to, seen from this process."""
    if system.extra_env.get("VIDEODROP_STORAGE_URL", "").startswith("s3://"):
        return s3_store(system.extra_env)
    return FileStore(system.media_root)


def in_flight(system: System) -> list[str]:
    """What unfinished uploads hold: the file store's ``.uploads/`` files, S3's open
    multipart uploads (``(upload) key``)."""
    media = media_of(system)
    if isinstance(media, S3Store):
        env = system.extra_env
        client = S3Server(env["VIDEODROP_S3_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"],
                          env["AWS_SECRET_ACCESS_KEY"]).client()
        found = client.list_multipart_uploads(Bucket=media.bucket, Prefix=media.prefix)
        return sorted("(upload) " + u["Key"][len(media.prefix):]
                      for u in found.get("Uploads", ()))
    return sorted(str(p.relative_to(system.media_root))
                  for p in (system.media_root / ".uploads").rglob("*") if p.is_file())


def stored_files(system: System) -> list[str]:
    """Every file under MEDIA_ROOT (temporary uploads included), relative; on s3 every
    object under the system's prefix and every open multipart upload."""
    media = media_of(system)
    if isinstance(media, S3Store):
        return sorted([info.key for info in media.list_objects()] + in_flight(system))
    return sorted(str(p.relative_to(system.media_root)) for p in system.media_root.rglob("*")
                  if p.is_file())


def stored_bytes(system: System, key: str) -> bytes:
    """The bytes stored under ``key`` (a file or an object)."""
    with media_of(system).open(key) as reader:
        return reader.read()


def upload_raw(system: System, path: Path, **params: str) -> requests.Response:
    with path.open("rb") as fh:
        return requests.post(f"{system.base_url}/api/videos",
                             params={"filename": path.name, **params}, data=fh,
                             headers={**system.admin, "Content-Type": "video/mp4"}, timeout=30)


def wait_status(system: System, token: str, statuses: set[str] | None = None,
                timeout: float = 60) -> dict[str, Any]:
    """GET the record by token until its status is one of ``statuses`` (ready|failed)."""
    wanted = statuses or {"ready", "failed"}

    def check() -> dict[str, Any] | None:
        rec = requests.get(f"{system.base_url}/api/video/{token}/", timeout=5).json()
        return rec if rec["status"] in wanted else None
    return wait_for(check, timeout=timeout, interval=0.1, what=f"status in {wanted}")


def ready_upload(system: System, path: Path, **params: str) -> dict[str, Any]:
    resp = upload_raw(system, path, **params)
    assert resp.status_code == 202, resp.text
    rec = wait_status(system, resp.json()["api_links"]["access_token"])
    assert rec["status"] == "ready", rec
    return rec


def status_of(system: System, video_id: int) -> tuple[str, str | None]:
    [(status, error)] = rows(system.database_url,
                             "SELECT status, processing_error FROM videos WHERE id = %s",
                             video_id)
    return status, error


def row_ids(system: System) -> list[int]:
    return [r[0] for r in rows(system.database_url, "SELECT id FROM videos ORDER BY id")]


def connect(system: System) -> socket.socket:
    return socket.create_connection(("127.0.0.1", system.port), timeout=30)


def request_head(system: System, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target} HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: Bearer {system.admin_token}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, json.loads(resp.read() or b"{}")


def send_until_answered(sock: socket.socket, frames: Any) -> None:
    """Send body frames until the server starts answering (or stops listening)."""
    for frame in frames:
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            return


def multipart(fields: list[tuple[str, str | tuple[str, bytes]]], boundary: str = "XyZzy"
              ) -> bytes:
    out = b""
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n").encode() + value[1]
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


# --- the happy paths ------------------------------------------------------------------

def test_curl_form_upload_becomes_ready_with_identical_bytes(make_system, store, samples,
                                                             tmp_path):
    system = make_system(**store).start("api", "prober")
    src = samples / SAMPLE
    head_file, body_file = tmp_path / "head", tmp_path / "body"
    out = subprocess.run(
        ["curl", "-sS", "-D", str(head_file), "-o", str(body_file), "-w", "%{http_code}",
         "-H", f"Authorization: Bearer {system.admin_token}",
         "-F", f"file=@{src}", "-F", "name=Front door", "-F", "description=Camera 1",
         "-F", "source_id=cam1_0001", f"{system.base_url}/api/videos"],
        capture_output=True, check=True, timeout=60)
    assert out.stdout == b"202", out
    rec = json.loads(body_file.read_bytes())
    token = rec["api_links"]["access_token"]
    assert f"location: {system.base_url}/api/video/{token}/\r\n" in head_file.read_bytes().decode()
    assert rec["status"] == "processing" and rec["origin"] == "upload"
    assert (rec["source_id"], rec["name"], rec["description"]) == (
        "cam1_0001", "Front door", "Camera 1")
    assert rec["file_info"]["filename"] == f"videos/cam1_0001/{SAMPLE}"
    assert rec["file_info"]["size"] == src.stat().st_size

    done = wait_status(system, token)
    assert done["status"] == "ready", done
    assert done["file_info"]["codec"] == "h264" and done["file_info"]["duration"] > 1
    body_bytes = requests.get(done["api_links"]["download_url"], timeout=10).content
    assert hashlib.sha256(body_bytes).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert stored_files(system) == [f"videos/cam1_0001/{SAMPLE}"]


def test_requests_form_with_fields_after_the_file(make_system, store, samples):
    system = make_system(**store).start("api", "prober")
    src = samples / "bbb_input.webm"
    files = [("file", ("clip.webm", src.read_bytes(), "video/webm")),
             ("name", (None, "late name")), ("description", (None, "late déscription")),
             ("source_id", (None, "late-src.1")), ("ignored", (None, "whatever"))]
    resp = requests.post(f"{system.base_url}/api/videos", files=files, headers=system.admin,
                         timeout=30)
    assert resp.status_code == 202, resp.text
    rec = resp.json()
    assert (rec["source_id"], rec["name"], rec["description"]) == (
        "late-src.1", "late name", "late déscription")
    assert rec["original_filename"] == "clip.webm"
    done = wait_status(system, rec["api_links"]["access_token"])
    assert done["status"] == "ready" and done["file_info"]["format"] == "webm"
    assert stored_bytes(system, "videos/late-src.1/clip.webm") == src.read_bytes()
    assert stored_files(system) == ["videos/late-src.1/clip.webm"]


def test_raw_upload_named_by_query_or_content_disposition(make_system, store, samples):
    system = make_system(**store).start("api", "prober")
    src = samples / "grampa-laughing.flv"
    by_query = upload_raw(system, src, name="Grampa")
    assert by_query.status_code == 202, by_query.text
    assert by_query.json()["name"] == "Grampa"
    resp = requests.post(
        f"{system.base_url}/api/videos", data=src.read_bytes(),
        headers={**system.admin, "Content-Type": "video/x-flv",
                 "Content-Disposition": "attachment; filename=\"x.flv\"; "
                                        "filename*=UTF-8''caf%C3%A9%20vid%C3%A9o.flv"},
        timeout=30)
    assert resp.status_code == 202, resp.text
    rec = resp.json()
    assert rec["original_filename"] == "café vidéo.flv"
    unnamed = requests.post(f"{system.base_url}/api/videos", data=src.read_bytes(),
                            headers={**system.admin, "Content-Type": "video/x-flv"}, timeout=30)
    assert unnamed.status_code == 202 and unnamed.json()["original_filename"] == "video.flv"
    for made in (by_query.json(), rec, unnamed.json()):
        done = wait_status(system, made["api_links"]["access_token"])
        assert done["status"] == "ready", done
        assert done["file_info"]["format"] == "flv"
        assert stored_bytes(system, done["file_info"]["filename"]) == src.read_bytes()
    download = requests.get(rec["api_links"]["download_url"], timeout=10)
    assert "filename*=UTF-8''caf%C3%A9%20vid%C3%A9o.flv" in download.headers[
        "Content-Disposition"]


def test_chunked_raw_upload_without_length(make_system, store, samples):
    system = make_system(**store).start("api", "prober")
    data = (samples / SAMPLE).read_bytes()
    chunks = (data[i:i + 100_000] for i in range(0, len(data), 100_000))
    resp = requests.post(f"{system.base_url}/api/videos", params={"filename": "c.mp4"},
                         data=chunks, headers={**system.admin, "Content-Type": "video/mp4"},
                         timeout=30)
    assert resp.status_code == 202, resp.text
    done = wait_status(system, resp.json()["api_links"]["access_token"])
    assert done["status"] == "ready" and done["file_info"]["size"] == len(data)
    assert stored_bytes(system, done["file_info"]["filename"]) == data


# --- refusals leave nothing behind ----------------------------------------------------

@pytest.fixture
def small(make_system, store) -> System:
    """The API alone with a 1 MB limit, on each store."""
    return make_system(VIDEODROP_MAX_FILE_SIZE="1MB", **store).start("api")


def test_over_limit_with_content_length_is_refused_before_the_body(small):
    sock = connect(small)
    sock.sendall(request_head(small, "/api/videos?filename=big.mp4",
                              {"Content-Type": "video/mp4", "Content-Length": "3000000"}))
    status, body = read_response(sock)  # answered without sending a byte of the body
    sock.close()
    assert status == 413 and body["title"] == "Upload too large"
    form = requests.post(f"{small.base_url}/api/videos", headers=small.admin, timeout=30,
                         files={"file": ("big.mp4", b"\0" * 1_100_000)})
    assert form.status_code == 413
    assert stored_files(small) == [] and row_ids(small) == []


def test_over_limit_with_curl_form(small, tmp_path):
    big = tmp_path / "big.mkv"
    big.write_bytes(b"\x1a" * 3_000_000)
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", f"Authorization: Bearer {small.admin_token}",
                          "-F", f"file=@{big}", f"{small.base_url}/api/videos"],
                         capture_output=True, timeout=60)
    assert out.stdout == b"413", out
    assert stored_files(small) == [] and row_ids(small) == []


@pytest.mark.parametrize("shape", ["raw", "form"])
def test_over_limit_without_length_is_refused_by_the_running_count(small, shape):
    sock = connect(small)
    if shape == "raw":
        head = {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"}
        target, prefix = "/api/videos?filename=big.mp4", b""
    else:
        head = {"Content-Type": "multipart/form-data; boundary=XyZzy",
                "Transfer-Encoding": "chunked"}
        target = "/api/videos"
        prefix = multipart([("file", ("big.mp4", b""))]).split(b"\r\n--XyZzy--")[0]
    sock.sendall(request_head(small, target, head))
    piece = b"\x00" * 65536
    frames = [b"%x\r\n%s\r\n" % (len(prefix), prefix)] if prefix else []
    frames += [b"%x\r\n%s\r\n" % (len(piece), piece)] * 200  # 13 MB at most
    send_until_answered(sock, frames)
    status, _ = read_response(sock)
    sock.close()
    assert status == 413
    # The row existed while the bytes came in; refused, it is gone, and so is the file.
    wait_for(lambda: row_ids(small) == [], what="the refused row to go")
    assert stored_files(small) == []


def test_unsupported_formats_are_refused(small):
    url = f"{small.base_url}/api/videos"
    for files in ({"file": ("notes.txt", b"hello")}, {"file": ("noext", b"hello")}):
        resp = requests.post(url, files=files, headers=small.admin, timeout=10)
        assert resp.status_code == 415, resp.text
    raw = requests.post(url, params={"filename": "x.gif"}, data=b"GIF89a",
                        headers={**small.admin, "Content-Type": "video/mp4"}, timeout=10)
    assert raw.status_code == 415
    other = requests.post(url, json={"file": "x.mp4"}, headers=small.admin, timeout=10)
    assert other.status_code == 415 and set(other.json()) == {"title", "description"}
    assert stored_files(small) == [] and row_ids(small) == []


def test_bad_forms_are_400_and_leave_nothing(small):
    url = f"{small.base_url}/api/videos"
    cases = [
        multipart([("name", "no file here")]),
        multipart([("file", ("a.mp4", b""))]),  # empty file
        multipart([("file", ("a.mp4", b"x")), ("file", ("b.mp4", b"y"))]),
        multipart([("file", ("a.mp4", b"x" * 1000))]).replace(b"--XyZzy--", b"--Xy"),
        multipart([("source_id", "../etc"), ("file", ("a.mp4", b"x"))]),
        multipart([("file", ("", b"x"))]),
        b"garbage without any boundary",
    ]
    for body in cases:
        resp = requests.post(url, data=body, timeout=10, headers={
            **small.admin, "Content-Type": "multipart/form-data; boundary=XyZzy"})
        assert resp.status_code == 400, (body[:80], resp.text)
        assert resp.json()["title"]
    missing = requests.post(url, data=b"x", timeout=10,
                            headers={**small.admin, "Content-Type": "application/octet-stream"})
    assert missing.status_code == 400 and missing.json()["title"] == "File name missing"
    blank = requests.post(url, params={"filename": ""}, data=b"x", timeout=10,
                          headers={**small.admin, "Content-Type": "video/mp4"})
    assert blank.status_code == 400
    unknown = requests.post(url, data=b"x", timeout=10,
                            headers={**small.admin, "Content-Type": "video/ogg"})
    assert unknown.status_code == 415
    no_boundary = requests.post(url, data=b"x", timeout=10, headers={
        **small.admin, "Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400
    assert stored_files(small) == [] and row_ids(small) == []


def test_duplicate_source_id_is_409(small, samples):
    src = samples / "tiny_av1.mp4"
    first = upload_raw(small, src, source_id="dup")
    assert first.status_code == 202
    again = upload_raw(small, src, source_id="dup")
    assert again.status_code == 409 and "dup" in again.json()["description"]
    late = requests.post(f"{small.base_url}/api/videos", headers=small.admin, timeout=10,
                         files=[("file", ("other.mp4", src.read_bytes())),
                                ("source_id", (None, "dup"))])
    assert late.status_code == 409
    assert len(row_ids(small)) == 1
    assert stored_files(small) == ["videos/dup/tiny_av1.mp4"]


def test_upload_needs_the_admin_token(small):
    resp = requests.post(f"{small.base_url}/api/videos", params={"filename": "a.mp4"},
                         data=b"x" * 10, headers={"Content-Type": "video/mp4"}, timeout=10)
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    assert stored_files(small) == [] and row_ids(small) == []


# --- a client that goes away ----------------------------------------------------------

@pytest.mark.parametrize("how", ["close", "reset", "chunked", "form"])
def test_client_gone_mid_upload_leaves_a_failed_row_and_no_file(make_system, store, how):
    """On s3 more than a part is sent, so that a multipart upload is open when the client
    goes: it must be aborted (no object, no open upload)."""
    system = make_system(**store).start("api")
    sock = connect(system)
    sent = PART + (2 << 20)  # a form is read 1 MiB at a time: more than a part arrives
    if how == "chunked":
        sock.sendall(request_head(system, "/api/videos?filename=gone.mp4",
                                  {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"}))
        sock.sendall(b"%x\r\n%s\r\n" % (sent, b"\0" * sent))
    elif how == "form":
        body = multipart([("name", "n"), ("file", ("gone.mp4", b"\0" * (2 * PART)))])
        sock.sendall(request_head(system, "/api/videos", {
            "Content-Type": "multipart/form-data; boundary=XyZzy",
            "Content-Length": str(len(body))}))
        sock.sendall(body[:sent])
    else:
        sock.sendall(request_head(system, "/api/videos?filename=gone.mp4",
                                  {"Content-Type": "video/mp4",
                                   "Content-Length": str(2 * PART)}))
        sock.sendall(b"\0" * sent)
    # The row exists from the first byte, with its token, and the bytes are in the store.
    [video_id] = wait_for(lambda: row_ids(system), what="the upload's row")
    assert status_of(system, video_id) == ("uploading", None)
    wait_for(lambda: in_flight(system), timeout=30, what="the temporary file or upload")
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wait_for(lambda: status_of(system, video_id)[0] == "failed", what="the row to fail")
    assert status_of(system, video_id) == ("failed", "upload interrupted")
    assert stored_files(system) == []


# --- the broker down: the upload still succeeds and is published later -----------------

def test_upload_with_the_broker_down_is_accepted(make_system, samples):
    system = make_system(amqp="amqp://guest:guest@127.0.0.1:1/%2F").start("api")
    resp = upload_raw(system, samples / "tiny_av1.mp4")
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "processing"
    assert status_of(system, resp.json()["id"]) == ("processing", None)
    assert "publish deferred" in system.log_text("api")
