"""Inbox names on the real pipeline (ingest → RabbitMQ → prober → PostgreSQL → HTTP): any
bytes a POSIX name can hold, in file and folder names; and several names of one file
(hard links), each recorded once, within the normal latency.

The periodic rescan is an hour here: nothing below can be saved by it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness import System, own_system, rows, wait_for

SOURCE = "bbb_chapters.mp4"
DEADLINE = 30  # seconds: the normal latency is a settle window and a probe, not a rescan


@pytest.fixture(scope="module")
def named(tmp_path_factory, database_url, amqp_url, amqp_prefix) -> Iterator[System]:
    with own_system(tmp_path_factory.mktemp("names"), database_url, amqp_url,
                    f"{amqp_prefix}_names", VIDEODROP_RESCAN_SECONDS="3600",
                    # one claim at a time: a second name is always claimed after the first
                    # name's removal moved the inode's ctime
                    VIDEODROP_PROBER_CONCURRENCY="1") as system:
        yield system


def rows_from(system: System, origin_path: bytes) -> list[tuple]:
    """(status, original_filename, origin, origin_path, stored_path, token) of every row of
    that inbox path."""
    return rows(system.database_url,
                "SELECT status, original_filename, origin, origin_path, stored_path,"
                " access_token FROM videos WHERE origin_path = %s ORDER BY id", origin_path)


def wait_ready(system: System, origin_path: bytes) -> tuple:
    def done() -> tuple | None:
        found = rows_from(system, origin_path)
        assert len(found) <= 1, f"{origin_path!r} recorded {len(found)} times"
        return found[0] if found and found[0][0] in {"ready", "failed"} else None
    return wait_for(done, timeout=DEADLINE, interval=0.1, what=f"{origin_path!r} to be ready")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("raw", "shown", "origin"), [
    # Latin-1, as vsftpd and Samba write the Windows-1252 name of a Windows client
    (b"Caf\xe9.mp4", "Café.mp4", "inbox"),
    (b"cam\xe9ra 1/Caf\xe9 \x80.mp4", "Café €.mp4", "inbox/caméra 1"),  # a folder too
    (b"\xff\xfe bad\x01ctl\nline.mp4", "ÿþ bad\x01ctl\nline.mp4", "inbox"),  # but / and NUL
    ("日本語/ビデオ.mp4".encode(), "ビデオ.mp4", "inbox/日本語"),  # UTF-8 stays what it is
])
def test_any_name_is_one_ready_row_with_its_bytes_kept(named, samples, raw, shown, origin):
    src = named.inbox / os.fsdecode(raw)
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(samples / SOURCE, src)
    status, original, recorded_origin, origin_path, stored_path, token = wait_ready(named, raw)
    assert (status, original, recorded_origin) == ("ready", shown, origin)
    assert bytes(origin_path) == raw  # the bytes, losslessly
    wait_for(lambda: not src.exists() or None, what="the inbox file to be moved")
    stored = named.media_root / stored_path
    assert sha256(stored) == sha256(samples / SOURCE)
    assert stored_path.encode("utf-8")  # a text path, usable everywhere
    download = named.http.get(f"{named.base_url}/api/video/{token}/download/", timeout=10)
    assert download.status_code == 200 and download.content == stored.read_bytes()
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    if not shown.isascii():
        assert "filename*=UTF-8''" + quote("".join(
            "_" if c in "/\\" or ord(c) < 32 else c for c in shown), safe="") in disposition
    assert "handler crashed" not in named.log_text("prober")


# --- hard links: several names of one file ----------------------------------------------

def test_cp_al_names_are_each_recorded_once_in_normal_latency(named, samples, tmp_path):
    """cp -al: every name in the inbox is a hard link of a file outside it, and here two
    names of one file land in the inbox together."""
    staging = tmp_path / "staging"
    staging.mkdir()
    original = staging / "front.mp4"
    shutil.copy(samples / SOURCE, original)
    os.link(original, staging / "front-again.mp4")
    subprocess.run(["cp", "-al", str(staging), str(named.inbox / "batch")], check=True)
    assert os.stat(original).st_nlink == 4
    first = wait_ready(named, b"batch/front.mp4")
    second = wait_ready(named, b"batch/front-again.mp4")
    assert first[0] == second[0] == "ready"
    wait_for(lambda: not list((named.inbox / "batch").iterdir()) or None,
             timeout=DEADLINE, what="both names to leave the inbox")
    # Each stored file is an inode of its own: writing through the names outside the inbox
    # cannot change what is served.
    stored = [named.media_root / first[4], named.media_root / second[4]]
    inodes = {os.stat(p).st_ino for p in stored}
    assert len(inodes) == 2 and os.stat(original).st_ino not in inodes
    assert os.stat(original).st_nlink == 2  # the names outside are untouched
    with original.open("ab") as fh:
        fh.write(b"written later through the outside name")
    for path in stored:
        assert sha256(path) == sha256(samples / SOURCE)
    assert len(rows(named.database_url, "SELECT id FROM videos WHERE origin = 'inbox/batch'")
               ) == 2


def test_two_names_inside_the_inbox_only(named, samples, tmp_path):
    staged = tmp_path / "one.mp4"
    shutil.copy(samples / SOURCE, staged)
    (named.inbox / "pair").mkdir()
    os.link(staged, tmp_path / "two.mp4")
    # ln, then mv both in: the only names left are the two in the inbox
    os.rename(staged, named.inbox / "pair" / "one.mp4")
    os.rename(tmp_path / "two.mp4", named.inbox / "pair" / "two.mp4")
    one = wait_ready(named, b"pair/one.mp4")
    two = wait_ready(named, b"pair/two.mp4")
    assert one[0] == two[0] == "ready" and one[4] != two[4]
    for found in (one, two):
        assert sha256(named.media_root / found[4]) == sha256(samples / SOURCE)
