"""The prober on an s3 store (a real S3 server, SeaweedFS): an inbox file is probed in the
inbox's spool, put into the bucket (verified) before its row turns ready, and removed;
an upload already in the bucket is probed where it lies (a presigned URL); a prober killed
mid-put leaves nothing visible and converges on restart to one ready row, one verified
object and no unfinished upload."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pika
import pytest

from prober.probe import probe_file
from prober.worker import Worker, claim
from testbed.s3 import S3Server
from tests.harness import System, rows, wait_for
from tests.integration.test_prober_pipeline import s3_store
from videodrop import logs
from videodrop.catalog import Catalog
from videodrop.inboxpolicy import SPOOL
from videodrop.messages import InboxFile, ProbeVideo, encode
from videodrop.settings import Settings
from videodrop.storage import MediaStore, read_chunks


@pytest.fixture
def s3_env(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> dict[str, str]:
    """The settings of an s3 store under a prefix of this test's own."""
    return {"VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{tmp_path.name[-24:]}",
            **s3_server.env()}


def object_sha256(media: MediaStore, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(media.open(key)):
        digest.update(chunk)
    return digest.hexdigest()


def spooled(system: System) -> list[Path]:
    return [p for p in (system.inbox / SPOOL).rglob("*") if p.is_file()]


def test_an_inbox_file_is_stored_in_s3_and_served(make_system: Any, s3_env: dict[str, str],
                                                 samples: Path) -> None:
    system: System = make_system(**s3_env).start()
    media = s3_store(s3_env)
    original = (samples / "bbb_chapters.mp4").read_bytes()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "bbb.mp4")
    record = system.wait_record("bbb.mp4")
    assert record["status"] == "ready"

    [(key, size, sha256)] = rows(system.database_url,
                                 "SELECT stored_path, size, sha256 FROM videos")
    assert (size, sha256) == (len(original), hashlib.sha256(original).hexdigest())
    assert [(i.key, i.size) for i in media.list_objects("")] == [(key, size)]
    assert object_sha256(media, key) == sha256
    assert system.inbox_entries() == []  # the inbox file is gone, the spool empty
    assert spooled(system) == []
    assert not [p for p in system.media_root.rglob("*") if p.is_file()]
    [probed] = system.wait_log_events("prober", "probe")
    assert probed["put_ms"] >= 0 and probed["status"] == "ready"

    got = system.http.get(record["api_links"]["download_url"], timeout=10)
    assert got.status_code == 200
    assert got.history and got.history[0].status_code == 307  # a presigned URL of the bucket
    assert hashlib.sha256(got.content).hexdigest() == sha256


def ask_probe(system: System, video_id: int) -> None:
    """Publish the ProbeVideo an upload's end publishes (confirmed, persistent)."""
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.basic_publish(system.prefix, "probe", encode(ProbeVideo(video_id=video_id)),
                          pika.BasicProperties(delivery_mode=2))
    conn.close()


def test_an_object_already_in_s3_is_probed_where_it_lies(
        make_system: Any, s3_env: dict[str, str], samples: Path) -> None:
    """A ProbeVideo for a row whose original is in the bucket (an upload): ffprobe reads
    it through a presigned URL; nothing is copied to this machine."""
    system: System = make_system(**s3_env).start("prober")
    media = s3_store(s3_env)
    catalog = Catalog.connect(system.database_url)
    video = catalog.create_upload(filename="uploaded.mp4")
    sample = samples / "bbb_chapters.mp4"
    stored = media.put_file(video.stored_path, sample)
    catalog.upload_received(video.id, stored.size)
    catalog.close()
    ask_probe(system, video.id)

    def finished() -> tuple[Any, ...] | None:
        found = rows(system.database_url, "SELECT status, size, sha256, metadata, error_code"
                     " FROM videos")
        return found[0] if found[0][0] in {"ready", "failed"} else None
    status, size, sha256, metadata, code = wait_for(finished, timeout=60,
                                                    what="the upload to be probed")
    assert (status, code) == ("ready", None)
    assert (size, sha256) == (stored.size, stored.sha256)
    local = probe_file(sample).metadata  # the same verdict as from the file itself
    for field in ("format", "duration", "codec", "width", "height", "nb_frames", "fps",
                  "audio_codec", "chapters", "moov_before_mdat"):
        assert metadata[field] == local[field], field
    assert not [p for p in system.media_root.rglob("*") if p.is_file()]
    assert spooled(system) == []


def big_mp4(path: Path, clip: Path, padding: int) -> tuple[int, str]:
    """``clip`` (an MP4 whose index comes first) followed by a ``free`` box of ``padding``
    random bytes: a valid video of that size. Returns (size, sha256)."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for data in (clip.read_bytes(), struct.pack(">I4s", padding + 8, b"free")):
            out.write(data)
            digest.update(data)
        left = padding
        while left:
            data = os.urandom(min(left, 4 << 20))
            out.write(data)
            digest.update(data)
            left -= len(data)
    return path.stat().st_size, digest.hexdigest()


@pytest.mark.crash
def test_prober_killed_during_put_converges(make_system: Any, s3_env: dict[str, str],
                                            s3_server: S3Server, tmp_path: Path) -> None:
    """SIGKILL while the object's multipart upload runs: nothing visible, the file safe in
    the spool; the restarted prober aborts the dead upload (a log line), puts the file
    again, and ends with one ready row, one verified object, no unfinished upload, no
    orphan object and an empty spool."""
    system: System = make_system(VIDEODROP_S3_PART_SIZE="5MiB",
                                 VIDEODROP_PROBER_CONCURRENCY="1", **s3_env)
    system.start("prober", "ingest")
    media = s3_store(s3_env)
    client, bucket, prefix = s3_server.client(), media.bucket, media.prefix
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=2:size=64x64:rate=10", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(clip)], check=True, timeout=60)
    writing = system.inbox / ".big.mp4.tmp"  # hidden while written, then renamed in
    size, sha256 = big_mp4(writing, clip, 128 << 20)
    os.rename(writing, system.inbox / "big.mp4")

    def uploads() -> list[dict[str, Any]]:
        return client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    wait_for(uploads, timeout=120, interval=0.01, what="the put's multipart upload to start")
    system.kill("prober")  # SIGKILL, mid-put
    [dead] = uploads()  # killed mid-put: its upload is left, no object is visible
    assert list(media.list_objects("")) == []
    [(status, key)] = rows(system.database_url, "SELECT status, stored_path FROM videos")
    assert status == "processing" and dead["Key"] == prefix + key
    [left] = spooled(system)  # the file waits in the spool
    assert left.stat().st_size == size and system.inbox_entries() == []

    system.start("prober")

    def ready() -> list[tuple[Any, ...]] | None:
        found = rows(system.database_url, "SELECT status, size, sha256, attempts FROM videos")
        return found if found[0][0] in {"ready", "failed"} else None
    assert wait_for(ready, timeout=180, what="the file to be ready") == [
        ("ready", size, sha256, 2)]
    assert [(i.key, i.size) for i in media.list_objects("")] == [(key, size)]
    assert object_sha256(media, key) == sha256
    assert uploads() == []
    assert spooled(system) == []
    aborted = system.log_events("prober", "stale upload aborted")
    assert [e["key"] for e in aborted] == [key]
    assert system.log_events("prober", "unfinished put of an earlier attempt aborted")


def test_each_crash_point_of_an_s3_ingest_converges(catalog: Catalog, db_url: str,
                                                   s3_env: dict[str, str], samples: Path,
                                                   tmp_path: Path) -> None:
    """The states a prober killed between the steps leaves, each made on purpose, then the
    message handled again (``Worker.process``, the real catalog, store and ffprobe): one
    row, one verified object, an empty spool, whatever the state."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings = Settings(inbox=inbox, media_root=tmp_path / "unused", probe_timeout=30)
    media = s3_store(s3_env)
    w = Worker(settings, catalog, functools.partial(probe_file, timeout=30), logs.get("t"),
               media=media)
    spool = w.spool
    assert spool == inbox / SPOOL
    sample = (samples / "tiny_av1.mp4").read_bytes()
    sha256 = hashlib.sha256(sample).hexdigest()

    def dropped(name: str) -> InboxFile:
        (inbox / name).write_bytes(sample)
        st = os.lstat(inbox / name)
        return InboxFile(name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def converged(name: str) -> str:
        [(status, key, size, digest)] = rows(
            db_url, "SELECT status, stored_path, size, sha256 FROM videos"
            " WHERE original_filename = %s", name)
        assert (status, size, digest) == ("ready", len(sample), sha256)
        assert object_sha256(media, key) == sha256
        assert not [p for p in spool.rglob("*") if p.is_file()]
        assert not (inbox / name).exists()
        return str(key)

    # killed after the claim, before the put: the file waits in the spool
    first = dropped("claimed.mp4")
    video = claim(catalog, w.inbox, w.media_root, first)
    assert video is not None and (spool / video.stored_path).is_file()
    w.process(first)
    keys = {converged("claimed.mp4")}
    # killed after the put, before the commit: the object is there, the row processing
    second = dropped("put.mp4")
    video = claim(catalog, w.inbox, w.media_root, second)
    assert video is not None
    media.put_file(video.stored_path, spool / video.stored_path)
    w.process(second)
    keys.add(converged("put.mp4"))
    # killed after the commit, before the spool file went: the redelivery removes it
    left = spool / video.stored_path
    left.parent.mkdir(parents=True)
    left.write_bytes(sample)
    w.process(second)
    keys.add(converged("put.mp4"))
    assert {i.key for i in media.list_objects("")} == keys and len(keys) == 2
