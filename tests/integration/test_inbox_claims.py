"""Claims of several names of one file (``prober.worker.claim``, which moves files with
prober/store.py) on a real PostgreSQL and real file systems: each name one row, once,
whatever order the probers take the names in and wherever a prober died. Removing a name
moves the inode's ctime under the other names: these are the cases where that used to
strand a name until the rescan."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from prober import store, worker
from tests.harness import drop_database, rows
from videodrop import inboxid
from videodrop.errors import TransientFileError
from videodrop.messages import InboxFile
from videodrop.migrate import available, migrate


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    inbox, media = tmp_path / "inbox", tmp_path / "media"
    inbox.mkdir()
    media.mkdir()
    return inbox, media


def settled(inbox: Path, name: str) -> InboxFile:
    """The message the ingest publishes for ``name`` as it is now."""
    st = os.lstat(inbox / name)
    return InboxFile(name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def linked_pair(inbox: Path, samples: Path, one: str, two: str) -> tuple[InboxFile, InboxFile]:
    shutil.copy(samples / "tiny_av1.mp4", inbox / one)
    os.link(inbox / one, inbox / two)
    return settled(inbox, one), settled(inbox, two)


def count(db_url: str) -> int:
    return rows(db_url, "SELECT count(*) FROM videos")[0][0]


def test_the_second_name_after_the_first_moved_its_ctime(catalog, places, samples, db_url):
    inbox, media = places
    msg_a, msg_b = linked_pair(inbox, samples, "a.mp4", "b.mp4")
    a = worker.claim(catalog, inbox, media, msg_a)
    assert a is not None and not (inbox / "a.mp4").exists()
    assert os.lstat(inbox / "b.mp4").st_ctime_ns > msg_b.ctime_ns  # the unlink moved it
    b = worker.claim(catalog, inbox, media, msg_b)
    assert b is not None and b.id != a.id and not (inbox / "b.mp4").exists()
    for video in (a, b):
        assert (media / video.stored_path).read_bytes() == (samples / "tiny_av1.mp4"
                                                            ).read_bytes()
    # Redeliveries: the same rows (a) or a stale message (b's key moved on), never a third.
    again_a = worker.claim(catalog, inbox, media, msg_a)
    assert again_a is not None and again_a.id == a.id
    worker.claim(catalog, inbox, media, msg_b)
    assert count(db_url) == 2


def test_a_claim_that_died_before_its_move_is_taken_up(catalog, places, samples, db_url):
    inbox, media = places
    msg_c, msg_d = linked_pair(inbox, samples, "c.mp4", "d.mp4")
    stranded, _ = catalog.claim_inbox_file(msg_c)  # and then the prober died
    worker.claim(catalog, inbox, media, msg_d)  # another name goes: c's ctime moves
    c = worker.claim(catalog, inbox, media, msg_c)  # the redelivery
    assert c is not None and c.id == stranded.id
    assert not (inbox / "c.mp4").exists() and (media / c.stored_path).is_file()
    assert c.claim_ctime_ns != msg_c.ctime_ns  # the key followed the file
    # Had the ingest published c again as it changed: the same row, no other.
    republished = InboxFile("c.mp4", msg_c.dev, msg_c.ino, msg_c.size, msg_c.mtime_ns,
                            c.claim_ctime_ns)
    found = worker.claim(catalog, inbox, media, republished)
    assert found is not None and found.id == c.id
    assert count(db_url) == 2


def test_a_copy_that_died_before_the_unlink_is_not_recorded_twice(catalog, places, samples,
                                                                   db_url):
    inbox, media = places
    msg_e, msg_f = linked_pair(inbox, samples, "e.mp4", "f.mp4")
    stranded, _ = catalog.claim_inbox_file(msg_e)
    (media / stranded.stored_path).parent.mkdir(parents=True)
    shutil.copy(inbox / "e.mp4", media / stranded.stored_path)  # copied; then the prober died
    worker.claim(catalog, inbox, media, msg_f)
    again = worker.claim(catalog, inbox, media, settled(inbox, "e.mp4"))  # the re-publish
    assert again is not None and again.id == stranded.id
    assert not (inbox / "e.mp4").exists()
    assert count(db_url) == 2


def test_a_name_rewritten_in_place_is_a_new_video(catalog, places, samples, db_url):
    """Same name, inode, size and mtime (restored) but other bytes: not the stored copy."""
    inbox, media = places
    msg_g, _ = linked_pair(inbox, samples, "g.mp4", "h.mp4")
    stranded, _ = catalog.claim_inbox_file(msg_g)
    (media / stranded.stored_path).parent.mkdir(parents=True)
    shutil.copy(inbox / "g.mp4", media / stranded.stored_path)
    with open(inbox / "g.mp4", "r+b") as fh:
        fh.seek(100)
        fh.write(b"other bytes")
    os.utime(inbox / "g.mp4", ns=(msg_g.mtime_ns, msg_g.mtime_ns))
    fresh = worker.claim(catalog, inbox, media, settled(inbox, "g.mp4"))
    assert fresh is not None and fresh.id != stranded.id
    assert (media / stranded.stored_path).read_bytes() == (samples / "tiny_av1.mp4"
                                                           ).read_bytes()
    assert b"other bytes" in (media / fresh.stored_path).read_bytes()
    assert count(db_url) == 2


def test_a_name_being_claimed_makes_the_other_message_wait(catalog, places, samples, db_url):
    inbox, media = places
    shutil.copy(samples / "tiny_av1.mp4", inbox / "i.mp4")
    msg = settled(inbox, "i.mp4")
    with catalog.claim_lock(msg) as locked:
        assert locked
        with pytest.raises(TransientFileError, match=r"another prober is claiming i\.mp4"):
            worker.claim(catalog, inbox, media, msg)
    assert count(db_url) == 0 and (inbox / "i.mp4").exists()
    assert worker.claim(catalog, inbox, media, msg) is not None


def test_migration_0006_keeps_the_paths_of_existing_rows(database_url):
    """Rows recorded before 0006 (origin_path text) keep their path, now as its bytes."""
    name = f"vdmig_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(database_url, dbname=name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for mig in [m for m in available() if m.version < 6]:
                conn.execute(mig.sql.encode())
            conn.execute("""INSERT INTO videos (source_id, name, original_filename, origin,
                origin_path, stored_path, claim_dev, claim_ino, claim_size, claim_mtime_ns,
                claim_ctime_ns) VALUES ('s1', 'n', 'café.mp4', 'inbox/cam1', 'cam1/café.mp4',
                'videos/s1/café.mp4', 1, 2, 3, 4, 5)""")
            conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                         " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            conn.execute("INSERT INTO schema_migrations (version, name)"
                         " SELECT v, 'before' FROM generate_series(1, 5) AS v")
        after = [m.version for m in available() if m.version >= 6]  # 0006 and those after it
        assert [m.version for m in migrate(url)] == after
        assert rows(url, "SELECT origin_path FROM videos") == [("cam1/café.mp4".encode(),)]
    finally:
        drop_database(database_url, url)


# --- what the store already holds ---------------------------------------------------------

def test_a_store_path_held_by_another_file_keeps_both_files(catalog, places, samples):
    """On a case-insensitive store (vfat, SMB) the row's ``videos/a/x.mp4`` can be another
    video's ``videos/A/x.mp4``: here that other file is put at the row's path, as such a
    store shows it, after an interrupted claim made the row."""
    inbox, media = places
    shutil.copy(samples / "tiny_av1.mp4", inbox / "x.mp4")
    msg = settled(inbox, "x.mp4")
    video, _ = catalog.claim_inbox_file(msg)
    other = media / video.stored_path
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another video's bytes")
    claimed = worker.claim(catalog, inbox, media, msg)
    assert claimed is not None and claimed.id == video.id
    assert claimed.stored_path != video.stored_path
    assert claimed.stored_path.startswith("videos/~")
    assert (media / claimed.stored_path).read_bytes() == (samples / "tiny_av1.mp4").read_bytes()
    assert other.read_bytes() == b"another video's bytes"
    assert not (inbox / "x.mp4").exists()


def test_a_copy_keeps_the_holes_of_a_hard_linked_file(catalog, places, samples):
    """A file with holes but enough data not to be refused: the store's copy writes the data
    only (its allocation stays near the source's, not its size)."""
    inbox, media = places
    src = inbox / "holey.mp4"
    data = (samples / "tiny_av1.mp4").read_bytes()
    with src.open("wb") as fh:
        fh.write(data)
        fh.write(os.urandom(2 << 20))
        fh.seek(16 << 20, os.SEEK_CUR)  # a 16 MiB hole
        fh.write(os.urandom(1 << 20))
    os.link(src, inbox / "holey-again.mp4")
    size, allocated = src.stat().st_size, src.stat().st_blocks * 512
    assert allocated < size // 4  # the file system keeps the hole
    video = worker.claim(catalog, inbox, media, settled(inbox, "holey.mp4"))
    assert video is not None
    stored = media / video.stored_path
    assert stored.stat().st_size == size
    assert stored.stat().st_blocks * 512 <= allocated + (1 << 20)
    assert store.sha256_of(stored) == store.sha256_of(inbox / "holey-again.mp4")


def test_a_sparse_file_is_refused_at_claim_and_its_interrupted_row_failed(catalog, places,
                                                                            db_url):
    inbox, media = places
    src = inbox / "void.mp4"
    with src.open("wb") as fh:
        fh.truncate(1 << 30)
    msg = settled(inbox, "void.mp4")
    video, _ = catalog.claim_inbox_file(msg)  # a claim that died
    with pytest.raises(store.Refused) as refused:
        worker.claim(catalog, inbox, media, msg)
    assert refused.value.refusal.code == "sparse"
    assert rows(db_url, "SELECT status, error_code FROM videos WHERE id = %s", video.id) == [
        ("failed", "refused")]
    assert src.exists() and not any(media.rglob("*"))


def stamped(inbox: Path, name: str, *, dev: int) -> InboxFile:
    """The message an ingest on another host publishes for ``name``: the same inode,
    size and times, on the device number that host gives the shared inbox (``dev``)."""
    here = inboxid.ensure(inbox)
    return replace(settled(inbox, name), dev=dev).from_inbox(here.id, dev)


def test_a_shared_inbox_seen_under_another_device_number_is_claimed(catalog, places,
                                                                     samples, db_url):
    """Every NFS/SMB client numbers its mounts itself: the ingest's host and the prober's
    see one shared inbox under two device numbers. The claim compares the file with this
    host's view of the inbox; the row's key stays the message's (the same row whichever
    host takes a redelivery)."""
    inbox, media = places
    shutil.copy(samples / "tiny_av1.mp4", inbox / "cam.mp4")
    other = os.stat(inbox).st_dev + 17
    msg = stamped(inbox, "cam.mp4", dev=other)
    video = worker.claim(catalog, inbox, media, msg)
    assert video is not None and not (inbox / "cam.mp4").exists()
    assert video.claim_dev == other
    again = worker.claim(catalog, inbox, media, msg)  # a redelivery: the same row
    assert again is not None and again.id == video.id and count(db_url) == 1


def test_a_file_on_another_device_than_the_inbox_is_not_translated(catalog, places,
                                                                     samples, db_url):
    """Only a file on the inbox's own file system takes this host's inbox device: a
    message whose file was on a mount inside the inbox (another device than the inbox's)
    is compared as it was sent."""
    inbox, media = places
    shutil.copy(samples / "tiny_av1.mp4", inbox / "sub.mp4")
    msg = stamped(inbox, "sub.mp4", dev=os.stat(inbox).st_dev + 17)
    msg = replace(msg, dev=msg.inbox_dev + 1)
    assert worker.claim(catalog, inbox, media, msg) is None  # not this inode: stale
    assert (inbox / "sub.mp4").exists() and count(db_url) == 0


def test_another_inbox_s_message_is_refused_and_the_file_stays(catalog, places, samples,
                                                               tmp_path, db_url):
    """Hosts with inboxes of their own behind one VIDEODROP_AMQP_PREFIX: a message of
    another inbox (another identity, or an inbox no ingest stamped) is not taken for a
    stale one: :class:`worker.ForeignMessage`, no row, its file untouched."""
    inbox, media = places
    shutil.copy(samples / "tiny_av1.mp4", inbox / "cam.mp4")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    theirs = inboxid.ensure(elsewhere)
    msg = settled(inbox, "cam.mp4").from_inbox(theirs.id, theirs.dev)
    with pytest.raises(worker.ForeignMessage, match="not here"):
        worker.claim(catalog, inbox, media, msg)  # this inbox has no identity yet
    inboxid.ensure(inbox)
    with pytest.raises(worker.ForeignMessage):
        worker.claim(catalog, inbox, media, msg)
    assert (inbox / "cam.mp4").exists() and count(db_url) == 0
    assert worker.claim(catalog, inbox, media, stamped(inbox, "cam.mp4",
                                                       dev=os.stat(inbox).st_dev))
