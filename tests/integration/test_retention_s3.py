"""Retention on an s3 store (real SeaweedFS): generated rows whose originals and posters
are objects in the bucket. The quotas take exactly the oldest (computed here from the
generated rows, derivatives counted), their objects go and their rows stay as tombstones,
held ones stay; a SIGKILL mid-pass leaves no row pointing at a deleted object, and the
next pass finishes the rest. The same rules as tests/integration/test_retention.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from testbed.retention_rows import GenRow, add_derivatives, generate, insert
from testbed.s3 import S3Server
from tests.harness import REPO, free_port, rows, wait_for
from tests.integration.test_prober_pipeline import s3_store
from tests.integration.test_retention import (
    NOW,
    ORIGINS,
    RULES,
    assert_quotas_met_exactly,
    expected_gone,
    removable_anytime,
    state,
)
from videodrop import logs
from videodrop.errors import ConfigurationError
from videodrop.metrics import RETENTION
from videodrop.retention import rules as rules_file
from videodrop.retention.enforce import run_pass
from videodrop.storage import MediaStore

#: Rows of up to 40 kB: a few MB in the bucket, enough for every rule to take some.
SIZES = (1, 40_000)


@pytest.fixture
def s3_env(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> dict[str, str]:
    """The settings of an s3 store under a prefix of this test's own."""
    return {"VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/{tmp_path.name[-24:]}",
            **s3_server.env()}


@pytest.fixture
def media(s3_env: dict[str, str]) -> MediaStore:
    return s3_store(s3_env)


def put_tree(media: MediaStore, folder: Path) -> set[str]:
    """Put every file under ``folder`` into ``media`` under its relative path: the keys."""
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: media.put_file(kv[0], kv[1]), files.items()))
    return set(files)


def keys(media: MediaStore) -> set[str]:
    return {o.key for o in media.list_objects()}


def test_quotas_take_exactly_the_oldest_objects(db_url, catalog, media, tmp_path):
    local = tmp_path / "made"
    generated = insert(db_url, generate(300, ORIGINS, NOW, span=timedelta(days=10),
                                        sizes=SIZES), local)
    extra = add_derivatives(db_url, generated, local, sizes=(1, 600))
    put = put_tree(media, local)
    whole = [replace(r, size=r.size + extra.get(r.id, 0)) for r in generated]
    want = expected_gone(whole, NOW)
    assert {"max_age", "origin_quota", "global_quota"} <= set(want.values())  # all at work
    assert any(r.held and r.created_at < NOW - timedelta(days=5) for r in generated)

    result = run_pass(catalog, rules_file.parse(RULES), media, logs.get("test"), now=NOW)

    after = state(db_url)
    assert {i: why for i, (status, why, _) in after.items() if status == "expired"} == want
    assert all(removed for status, _, removed in after.values() if status == "expired")
    assert len(after) == len(generated)  # tombstones: every expired row is still there
    assert sum(result.files.values()) == len(want)
    assert_quotas_met_exactly(whole, want)
    left = keys(media)
    for r in generated:  # every expired video's objects are gone, every other's are there
        assert (r.stored_path in left) == (r.id not in want), r
        if r.id in extra:
            assert (f"derivatives/{r.id_key}/poster.jpg" in left) == (r.id not in want), r
        if r.held:
            assert after[r.id][0] != "expired" and r.stored_path in left
    gone = {r.stored_path for r in generated if r.id in want}
    gone |= {f"derivatives/{r.id_key}/poster.jpg" for r in generated
             if r.id in want and r.id in extra}
    assert left == put - gone  # nothing else removed
    # /metrics: no free bytes on an object store (a 0 would read as a full disk)
    assert RETENTION.get_sample_value("videodrop_retention_store_free_bytes") is None

    again = run_pass(catalog, rules_file.parse(RULES), media, logs.get("test"), now=NOW)
    assert sum(again.files.values()) == 0 and keys(media) == left


def test_keep_free_is_refused_on_s3(catalog, media):
    with pytest.raises(ConfigurationError, match=r"\[global\] keep_free.*object store"):
        run_pass(catalog, rules_file.parse('[global]\nkeep_free = "10GiB"\n'), media,
                 logs.get("test"), now=NOW)


def check_objects(db_url: str, media: MediaStore, generated: list[GenRow]) -> dict[str, int]:
    """No object removed whose row says it exists; no object left whose row says its files
    are removed. Counts of the expired rows and of those whose removal is still to do."""
    after, left = state(db_url), keys(media)
    counts = {"expired": 0, "unremoved": 0}
    for r in generated:
        status, _, removed = after[r.id]
        if status != "expired":
            assert r.stored_path in left, f"row {r.id} says its object exists; it is gone"
            continue
        counts["expired"] += 1
        if removed:
            assert r.stored_path not in left, f"row {r.id} says its objects are removed"
        else:
            counts["unremoved"] += 1
    return counts


def test_sigkill_mid_pass_on_s3_then_another_pass(db_url, media, s3_env, tmp_path):
    local = tmp_path / "made"
    generated = insert(db_url, generate(300, ORIGINS, NOW, span=timedelta(days=10)), local)
    put_tree(media, local)
    rules = tmp_path / "rules.toml"
    rules.write_text('[global]\nquota = 1\n[uploads]\n')  # everything removable goes
    total = sum(removable_anytime(r) or (r.origin == "upload" and r.status != "processing"
                                         and not r.held) for r in generated)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEODROP_")}
    env.update({"VIDEODROP_DATABASE_URL": db_url, "VIDEODROP_MEDIA_ROOT": str(tmp_path / "no"),
                "VIDEODROP_RETENTION_FILE": str(rules), "VIDEODROP_LOG_FORMAT": "json",
                **s3_env})
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def some_removed() -> Any:
            [(n,)] = rows(db_url, "SELECT count(*) FROM videos WHERE status = 'expired'"
                          " AND files_removed_at IS NULL")
            return (n > 0 and len(keys(media)) < len(generated)) or proc.poll() is not None
        wait_for(some_removed, timeout=60, interval=0.005,
                 what="the pass to delete some objects")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the pass ended before the kill: no test"
    counts = check_objects(db_url, media, generated)
    assert 0 < counts["expired"] < total and counts["unremoved"] > 0

    done = subprocess.run([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert check_objects(db_url, media, generated) == {"expired": total, "unremoved": 0}
    after = state(db_url)
    kept = {r.stored_path for r in generated if after[r.id][0] != "expired"}
    assert keys(media) == kept  # no expired row's object is left anywhere
    assert not (tmp_path / "no").exists()  # nothing went to VIDEODROP_MEDIA_ROOT


def test_a_store_that_does_not_answer_stops_the_pass(db_url, catalog, media, s3_env,
                                                     tmp_path):
    """The bucket's endpoint refuses connections: ``videodrop retention`` expires its first
    batch, stops at the first removal (one error line, not one per video), deletes
    nothing and exits 69; the next pass, the store back, finishes those rows."""
    local = tmp_path / "made"
    generated = insert(db_url, generate(60, ORIGINS, NOW, span=timedelta(days=10)), local)
    put = put_tree(media, local)
    rules = tmp_path / "rules.toml"
    rules.write_text('[global]\nquota = 1\n[uploads]\n')  # all that may go
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEODROP_")}
    env.update({"VIDEODROP_DATABASE_URL": db_url, "VIDEODROP_RETENTION_FILE": str(rules),
                "VIDEODROP_LOG_FORMAT": "json", **s3_env,
                "VIDEODROP_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    done = subprocess.run([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 69, done.stderr
    said = done.stdout + done.stderr
    assert said.count('"retention pass stopped: the media store fails') == 1
    assert "files not removed" not in said and '"video expired"' not in said
    counts = check_objects(db_url, media, generated)
    assert counts["expired"] == counts["unremoved"] > 1
    assert keys(media) == put

    result = run_pass(catalog, rules_file.parse(rules.read_text()), media, logs.get("test"))
    assert not result.stopped and result.finished == counts["expired"]
    assert check_objects(db_url, media, generated) == {**counts, "unremoved": 0}
    expired = {i for i, (status, _, _) in state(db_url).items() if status == "expired"}
    assert keys(media) == put - {r.stored_path for r in generated if r.id in expired}
