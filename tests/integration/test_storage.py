"""The media store's contract (videodrop/storage/), the same tests on both backends: the
``file`` store in a temporary folder and the ``s3`` store on a real S3 server (weed mini or
``VIDEODROP_TEST_S3_URL``, tests/s3server.py), each test under a prefix of its own."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from structlog.testing import capture_logs

from testbed.processes import REPO, free_port
from testbed.s3 import S3Server
from testbed.waits import wait_for
from videodrop.settings import Settings
from videodrop.storage import (
    FileStore,
    IntegrityFailure,
    MediaStore,
    ObjectMissing,
    StoreRefused,
    StoreUnavailable,
    from_settings,
    read_chunks,
    s3store,
)
from videodrop.storage.s3store import MIN_PART_SIZE, S3Store

PART = MIN_PART_SIZE  # the smallest part S3 takes: multipart puts at small sizes


def _env_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest, prefix: str
             ) -> dict[str, str]:
    """The VIDEODROP_* / AWS_* variables that make ``from_settings`` open this store."""
    if kind == "file":
        return {"VIDEODROP_STORAGE_URL": (tmp_path / "media").as_uri()}
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return {**server.env(), "VIDEODROP_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "VIDEODROP_S3_PART_SIZE": str(PART)}


@pytest.fixture(params=["file", "s3"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return _env_for(request.param, tmp_path, request, f"t-{secrets.token_hex(4)}")


@pytest.fixture
def store(store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[MediaStore]:
    for name, value in store_env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)  # boto3's own credential chain reads them
    made = from_settings(Settings.from_env(store_env))
    made.check()
    yield made


def _blob(size: int) -> bytes:
    return secrets.token_bytes(size)


def _read(store: MediaStore, key: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join(read_chunks(store.open(key, start, length)))


def _pending_uploads(store: MediaStore, store_env: dict[str, str]) -> list[str]:
    """What unfinished puts left: a file store's temporaries, S3's multipart uploads."""
    if isinstance(store, FileStore):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob(".*.part"))
    assert isinstance(store, S3Store)
    server = S3Server(store_env["VIDEODROP_S3_ENDPOINT_URL"], store_env["AWS_ACCESS_KEY_ID"],
                      store_env["AWS_SECRET_ACCESS_KEY"])
    answer = server.client().list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return sorted(u["Key"] for u in answer.get("Uploads", ()))


@pytest.mark.parametrize("size", [0, 1000, PART, 2 * PART + 12345])
def test_put_then_read_back(store: MediaStore, tmp_path: Path, size: int) -> None:
    data = _blob(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    stored = store.put_file("videos/abc/clip one.mp4", src, size=size, sha256=digest)
    assert (stored.size, stored.sha256) == (size, digest)
    info = store.stat("videos/abc/clip one.mp4")
    assert info.size == size and info.etag == stored.etag and info.etag.startswith('"')
    assert _read(store, "videos/abc/clip one.mp4") == data
    assert [i.key for i in store.list_objects("videos/")] == ["videos/abc/clip one.mp4"]
    assert src.read_bytes() == data  # put_file leaves the source in place


@pytest.mark.parametrize("size", [1000, 2 * PART + 1])
def test_refused_source_leaves_nothing(store: MediaStore, store_env: dict[str, str],
                                       size: int) -> None:
    data = _blob(size)
    good = hashlib.sha256(data).hexdigest()
    corrupted = bytearray(data)
    corrupted[size // 2] ^= 0xFF
    with pytest.raises(IntegrityFailure, match="SHA-256"):
        store.put_stream("v/corrupt", io.BytesIO(bytes(corrupted)), size=size, sha256=good)
    with pytest.raises(IntegrityFailure, match="announced"):
        store.put_stream("v/short", io.BytesIO(data[:-1]), size=size, sha256=good)
    with pytest.raises(IntegrityFailure, match="more than"):
        store.put_stream("v/long", io.BytesIO(data + b"x"), size=size)
    for key in ("v/corrupt", "v/short", "v/long"):
        assert not store.exists(key)
    assert list(store.list_objects("")) == []
    assert _pending_uploads(store, store_env) == []


class _Trickle:
    """A source that gives at most 1000 bytes a read, as a pipe or a socket may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(1000 if size < 0 else min(size, 1000))


def test_put_from_short_reads_and_threads(store: MediaStore) -> None:
    """Sources that give short reads, four puts at once from one store (multipart on s3)."""
    blobs = {f"v/{n}": _blob(PART + 5000 * n) for n in range(4)}
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda kv: store.put_stream(kv[0], _Trickle(kv[1])),  # type: ignore[arg-type]
                             blobs.items()))
    for stored, (key, data) in zip(made, blobs.items(), strict=True):
        assert (stored.key, stored.size) == (key, len(data))
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert _read(store, key) == data


def test_put_replaces_whole(store: MediaStore) -> None:
    store.put_stream("v/x", io.BytesIO(b"old bytes"))
    store.put_stream("v/x", io.BytesIO(b"new"))
    assert _read(store, "v/x") == b"new"


_CHILD = """
import sys
from videodrop.settings import Settings
from videodrop.storage import from_settings
store = from_settings(Settings.from_env())
store.put_stream(sys.argv[1], sys.stdin.buffer)
"""


def test_killed_put_leaves_no_object(store: MediaStore, store_env: dict[str, str]) -> None:
    """A child process streaming a put from a pipe is SIGKILLed once it has sent a part:
    the key stays empty, and the sweep withdraws what the put left (then nothing is left)."""
    key = "videos/killed/big.mp4"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEODROP_", "AWS_"))}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, key], stdin=subprocess.PIPE,
                             env={**env, **store_env}, cwd=REPO, start_new_session=True)
    assert child.stdin is not None
    try:
        child.stdin.write(_blob(2 * PART + 1000))  # two whole parts and a bit: never ends
        child.stdin.flush()
        wait_for(lambda: _pending_uploads(store, store_env), timeout=30,
                 what="the child's unfinished put")
        os.killpg(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        child.stdin.close()
    assert not store.exists(key)
    assert list(store.list_objects("")) == []
    assert store.abort_stale_uploads(older_than=3600) == []  # too young to be stale
    with capture_logs() as lines:
        assert store.abort_stale_uploads(older_than=0) == [key]
    assert [(line["event"].startswith("stale upload"), line["key"]) for line in lines] == [
        (True, key)]
    assert _pending_uploads(store, store_env) == []


def test_ranged_reads(store: MediaStore) -> None:
    data = _blob(3 * 1024 * 1024 + 17)
    store.put_stream("v/r", io.BytesIO(data))
    for start, length in [(0, 1), (0, len(data)), (len(data) - 1, 1), (1 << 20, 1 << 20),
                          (12345, 678), (len(data), 0)]:
        assert _read(store, "v/r", start, length) == data[start:start + length]
    assert _read(store, "v/r", 1000) == data[1000:]
    reader = store.open("v/r", 10, 100)
    assert reader.read(40) + reader.read(1000) + reader.read(1) == data[10:110]
    reader.close()
    with pytest.raises(ValueError):
        store.open("v/r", len(data) - 5, 10)
    with pytest.raises(ObjectMissing):
        store.open("v/missing")
    with pytest.raises(ObjectMissing):
        store.stat("v/missing")


def test_presigned_url_serves_ranges_then_expires(store: MediaStore) -> None:
    data = _blob(100_000)
    store.put_stream("v/p.mp4", io.BytesIO(data))
    url = store.presign("v/p.mp4")
    if isinstance(store, FileStore):
        assert url is None  # the API serves local_path() itself
        path = store.local_path("v/p.mp4")
        assert path is not None and path.read_bytes() == data
        assert store.input_url("v/p.mp4", 60) == f"file:{path}"
        return
    assert url is not None and url.startswith("http")
    answer = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert answer.status_code == 206 and answer.content == data[1000:2000]
    assert answer.headers["Content-Range"] == "bytes 1000-1999/100000"
    short = store.presign("v/p.mp4", expires=1)
    assert short is not None and requests.get(short, timeout=10).content == data
    wait_for(lambda: requests.get(short, timeout=10).status_code == 403, timeout=15,
             what="the 1 s presigned URL to expire")
    assert store.local_path("v/p.mp4") is None


def test_ffprobe_reads_input_url(store: MediaStore, tmp_path: Path) -> None:
    """ffprobe reads the object where input_url says, seeking (the clip's index is at its
    end: ranged GETs on s3), with only the protocols that URL needs."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=2:size=64x64:rate=10", "-pix_fmt", "yuv420p",
                    str(clip)], check=True, timeout=60)
    store.put_file("videos/x/clip.mp4", clip)
    url = store.input_url("videos/x/clip.mp4", 30)
    protocols = "file" if url.startswith("file:") else "http,https,tcp,tls"
    out = subprocess.run(["ffprobe", "-v", "error", "-protocol_whitelist", protocols,
                          "-show_entries", "format=duration", "-of", "json", url],
                         capture_output=True, check=True, timeout=30)
    assert float(json.loads(out.stdout)["format"]["duration"]) == pytest.approx(2, abs=0.2)


def test_list_and_delete(store: MediaStore) -> None:
    for key in ("a/1", "a/2", "a/b/3", "ab/4", "b/5"):
        store.put_stream(key, io.BytesIO(key.encode()))
    assert [i.key for i in store.list_objects("a/")] == ["a/1", "a/2", "a/b/3"]
    assert [i.key for i in store.list_objects("a")] == ["a/1", "a/2", "a/b/3", "ab/4"]
    assert [i.size for i in store.list_objects("b/")] == [3]
    assert store.delete_prefix("a/") == 3
    assert [i.key for i in store.list_objects("")] == ["ab/4", "b/5"]
    assert store.delete("ab/4") is True
    assert store.delete("ab/4") is False
    assert store.delete_prefix("zz/") == 0
    with pytest.raises(ValueError):
        store.delete_prefix("")
    assert [i.key for i in store.list_objects("")] == ["b/5"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../x", "a/./b", "a/.part", "a\x00b"])
def test_bad_keys_refused(store: MediaStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put_stream(key, io.BytesIO(b"x"))


def test_s3_errors_are_typed(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    with pytest.raises(StoreRefused):
        S3Store("vdtest-no-such-bucket", endpoint_url=s3_server.endpoint).check()
    down = S3Store("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable):
        down.stat("v/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StoreRefused):
        S3Store("bucket", endpoint_url=s3_server.endpoint).stat("v/x")
    # what a role prints at start (exit 78) names the cause, not a bare status
    with pytest.raises(StoreRefused, match=r"access denied \(HTTP 403\): the credentials"):
        S3Store("bucket", endpoint_url=s3_server.endpoint).check()


@pytest.mark.parametrize("checksum", s3store.CHECKSUMS)
def test_s3_server_checks_each_body(s3_server: S3Server, s3_bucket: str, checksum: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request body's checksum (CRC32 or Content-MD5) is checked by the server: a body
    that does not match it is refused, the put withdrawn and nothing left."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    store = S3Store(s3_bucket, f"t-{secrets.token_hex(4)}/", endpoint_url=s3_server.endpoint,
                    part_size=PART, checksum=checksum)
    data = _blob(PART + 10)
    store.put_stream("v/ok", io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest())
    assert _read(store, "v/ok") == data
    real = s3store._digest
    monkeypatch.setattr(s3store, "_digest", lambda kind, body: real(kind, body + b"!"))
    for size in (100, PART + 10):
        with pytest.raises(IntegrityFailure, match="BadDigest"):
            store.put_stream(f"v/bad{size}", io.BytesIO(data[:size]))
    assert [i.key for i in store.list_objects("")] == ["v/ok"]
    env = {"VIDEODROP_S3_ENDPOINT_URL": s3_server.endpoint,
           "AWS_ACCESS_KEY_ID": s3_server.access_key,
           "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    assert _pending_uploads(store, env) == []
