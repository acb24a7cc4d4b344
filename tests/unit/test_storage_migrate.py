"""The parts of ``videodrop storage migrate`` (videodrop/storage_migrate.py) that need no
server, on two file stores: the journal survives a line cut short by a kill; the plan
skips an object only when the journal, the source and the target all agree; a copy is
verified against the SHA-256 the catalog announces."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from videodrop.storage import FileStore, IntegrityFailure
from videodrop.storage_migrate import Journal, Verified, copy_one, plan


def _stores(tmp_path: Path) -> tuple[FileStore, FileStore]:
    source, target = FileStore(tmp_path / "src"), FileStore(tmp_path / "dst")
    for key, data in (("videos/a/a.mp4", b"aaaa"), ("derivatives/a/poster.jpg", b"pp")):
        source.put_stream(key, io.BytesIO(data))
    return source, target


def test_the_journal_skips_a_line_cut_short(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "s3://bucket/x")
    journal.add(Verified("videos/a/a.mp4", 4, 1.5, "0" * 64))
    with journal.path.open("a") as fh:
        fh.write('{"key": "derivatives/a/poster.jpg", "size": 2, "mt')  # killed here
    assert list(journal.load()) == ["videos/a/a.mp4"]
    assert Journal(tmp_path, "s3://bucket/other").load() == {}  # one journal per target


def test_the_plan_skips_only_what_journal_source_and_target_agree_on(tmp_path: Path
                                                                       ) -> None:
    source, target = _stores(tmp_path)
    infos = {info.key: info for info in source.list_objects()}
    assert [i.key for i in plan(source, target, {}, {}).copy] == sorted(infos)

    done = {key: copy_one(source, target, info, None) for key, info in infos.items()}
    assert plan(source, target, done, {}).copy == []
    # the catalog's SHA-256 of an original must be the journal's
    other = {"videos/a/a.mp4": "f" * 64}
    assert [i.key for i in plan(source, target, done, other).copy] == ["videos/a/a.mp4"]
    # the source changed (a remade derivative), or the target lost the object
    os.utime(source.root / "derivatives/a/poster.jpg", (1, 1))
    target.delete("videos/a/a.mp4")
    assert sorted(i.key for i in plan(source, target, done, {}).copy) == sorted(infos)


def test_a_copy_is_checked_against_the_catalogs_sha256(tmp_path: Path) -> None:
    source, target = _stores(tmp_path)
    [info] = [i for i in source.list_objects() if i.key.startswith("videos/")]
    with pytest.raises(IntegrityFailure):
        copy_one(source, target, info, hashlib.sha256(b"bbbb").hexdigest())
    assert not target.exists(info.key)
    copied = copy_one(source, target, info, hashlib.sha256(b"aaaa").hexdigest())
    assert (copied.size, copied.sha256) == (4, hashlib.sha256(b"aaaa").hexdigest())
    assert target.exists(info.key)
