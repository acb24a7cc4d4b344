"""``videodrop storage migrate --to s3://…`` (videodrop/storage_migrate.py) on a file store
that the real roles filled (two ingested videos, their rows ``ready`` with their SHA-256)
plus derivative files, to a real S3 server (weed mini, tests/s3server.py): the dry run
lists, a run copies and verifies, a second run is a no-op, a run killed -9 mid-copy
resumes."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from testbed.s3 import S3Server
from tests.harness import REPO, System, videodrop, wait_for

BIG = 40 << 20  # a derivative big enough to be a multipart upload that a kill interrupts


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not str(p.relative_to(root)).startswith(".")}


def _bucket(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", ())
    return {o["Key"][len(prefix):]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in found}


def _uploads(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", ()))


def test_migrate_copies_verifies_resumes_and_then_does_nothing(
        make_system: Any, samples: Path, s3_server: S3Server, s3_bucket: str):
    system: System = make_system(VIDEODROP_S3_PART_SIZE=str(5 << 20), **s3_server.env())
    system.start()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(samples / "bbb_chapters.mp4", system.inbox / name)
    records = [system.wait_record(name) for name in ("a.mp4", "b.mp4")]
    assert [r["status"] for r in records] == ["ready", "ready"]
    system.stop()
    root = system.media_root
    for record in records:  # what derive would have made
        folder = root / "derivatives" / record["source_id"]
        folder.mkdir(parents=True)
        (folder / "poster.jpg").write_bytes(os.urandom(5000))
    (root / "derivatives" / records[0]["source_id"] / "rendition.mp4").write_bytes(
        os.urandom(BIG))
    before = _files(root)
    assert len(before) == 5

    prefix = f"mig-{secrets.token_hex(4)}"
    url = f"s3://{s3_bucket}/{prefix}"
    s3, where = s3_server.client(), prefix + "/"

    dry = videodrop(system, "storage", "migrate", "--to", url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = sorted(line.split()[2] for line in dry.stdout.splitlines()
                    if line.startswith("would copy "))
    assert listed == sorted(before)
    assert _bucket(s3, s3_bucket, where) == {}  # a dry run copies nothing

    # killed -9 while it copies the big object (a multipart upload under way)
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "storage", "migrate",
                             "--to", url], env=system.env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: _uploads(s3, s3_bucket, where), timeout=60, interval=0.01,
                 what="the big object's multipart upload")
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        first = proc.stdout.read().decode()
        proc.stdout.close()
    copied_first = [line.split()[1] for line in first.splitlines()
                    if line.startswith("copied ") and "sha256=" in line]
    partial = _bucket(s3, s3_bucket, where)
    assert set(partial) == set(copied_first) and len(partial) < len(before)
    assert all(partial[key] == before[key] for key in partial)  # whole objects only

    again = videodrop(system, "storage", "migrate", "--to", url)
    assert again.returncode == 0, again.stdout + again.stderr
    copied = sorted(line.split()[1] for line in again.stdout.splitlines()
                    if line.startswith("copied ") and "sha256=" in line)
    assert copied == sorted(set(before) - set(copied_first))  # the rest, not the verified
    assert f"VIDEODROP_STORAGE_URL={url}" in again.stdout
    assert _bucket(s3, s3_bucket, where) == before
    assert _uploads(s3, s3_bucket, where) == []  # the killed run's upload aborted
    for line in again.stdout.splitlines():  # each original's SHA-256 is the catalog's
        if line.startswith("copied videos/"):
            key, digest = line.split()[1], line.split("sha256=")[1]
            assert digest == hashlib.sha256(before[key]).hexdigest()

    noop = videodrop(system, "storage", "migrate", "--to", url)
    assert noop.returncode == 0, noop.stdout + noop.stderr
    assert not [line for line in noop.stdout.splitlines() if line.startswith("copied ")
                and "sha256=" in line]
    assert "copied 0 objects (0 bytes), 5 verified in all, 0 failed" in noop.stdout
    assert _files(root) == before  # the source is left as it was


def test_a_changed_or_corrupted_source_is_copied_again_or_refused(
        make_system: Any, samples: Path, s3_server: S3Server, s3_bucket: str):
    system: System = make_system(**s3_server.env())
    system.start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "a.mp4")
    record = system.wait_record("a.mp4")
    system.stop()
    root = system.media_root
    poster = root / "derivatives" / record["source_id"] / "poster.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"first")
    url = f"s3://{s3_bucket}/mig-{secrets.token_hex(4)}"
    assert videodrop(system, "storage", "migrate", "--to", url).returncode == 0

    poster.write_bytes(b"remade poster")  # derive made it again meanwhile
    original = next(root.glob("videos/*/a.mp4"))
    data = bytearray(original.read_bytes())
    data[1000] ^= 0xFF  # bit rot: not the bytes the catalog's SHA-256 names
    original.write_bytes(bytes(data))
    os.utime(original, (1, 1))  # and not as the journal saw it
    run = videodrop(system, "storage", "migrate", "--to", url)
    assert run.returncode == 1
    assert f"copied derivatives/{record['source_id']}/poster.jpg 13 " in run.stdout
    [failed] = [line for line in run.stdout.splitlines() if line.startswith("FAILED ")]
    assert "SHA-256" in failed and "videos/" in failed
