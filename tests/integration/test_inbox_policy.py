"""The inbox policy on the real pipeline (ingest → RabbitMQ → prober → PostgreSQL → HTTP):
what is not a video stays in the inbox, refused once and counted; every format of
videodrop/formats.py is taken and served with its Content-Type.

The periodic rescan is an hour here: nothing below can be saved by it."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FORMAT_CLIPS
from tests.harness import System, free_port, own_system, rows, wait_for
from videodrop import formats

SOURCE = "bbb_chapters.mp4"
SIDECARS = {"clip.xml": b"<clip/>", "clip.jpg": b"\xff\xd8\xff\xe0 not really",
            "clip.txt": b"notes\n", "clip.json": b"{}", "clip.srt": b"1\n00:00:00,000 --> 1\n",
            "clip.idx": b"# VobSub index\n", "README": b"no extension at all\n"}


@pytest.fixture(scope="module")
def limit(samples: Path) -> int:
    """VIDEODROP_INBOX_MAX_FILE_SIZE of the module's system: the sample's own size."""
    return (samples / SOURCE).stat().st_size


@pytest.fixture(scope="module")
def policed(tmp_path_factory, database_url, amqp_url, amqp_prefix, limit) -> Iterator[System]:
    port = free_port()
    with own_system(tmp_path_factory.mktemp("policy"), database_url, amqp_url,
                    f"{amqp_prefix}_policy", VIDEODROP_RESCAN_SECONDS="3600",
                    VIDEODROP_INBOX_MAX_FILE_SIZE=str(limit),
                    VIDEODROP_METRICS_BIND=f"127.0.0.1:{port}-{port + 20}") as system:
        yield system


def log_lines(system: System, role: str) -> list[dict]:
    return [json.loads(line) for line in system.log_text(role).splitlines()
            if line.startswith("{")]


def refusals(system: System) -> dict[str, list[str]]:
    """The ingest's ``refused`` lines: {path: [code, ...]}."""
    found: dict[str, list[str]] = {}
    for line in log_lines(system, "ingest"):
        if line["event"] == "refused":
            found.setdefault(line["path"], []).append(line["code"])
    return found


def refused_counts(system: System) -> dict[str, float]:
    """``videodrop_ingest_files_refused_total`` by reason, from the ingest's /metrics."""
    [url] = [line["url"] for line in log_lines(system, "ingest") if line["event"] == "metrics"]
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {s.labels["reason"]: s.value for fam in text_string_to_metric_families(text)
            if fam.name == "videodrop_ingest_files_refused" for s in fam.samples
            if s.name.endswith("_total")}


def barrier(system: System, samples: Path, name: str) -> None:
    """A video dropped after the files under test, followed to ``ready``: the ingest handles
    events in order, so everything before it has been decided on."""
    shutil.copy(samples / SOURCE, system.inbox / name)
    assert system.wait_record(name)["status"] == "ready"


def test_files_that_are_not_videos_stay_refused_once_and_counted(policed, samples):
    before = refused_counts(policed)
    folder = policed.inbox / "cam7"
    folder.mkdir()
    for name, data in SIDECARS.items():
        (folder / name).write_bytes(data)
    (folder / "empty.mp4").touch()
    for name in ("empty2.mkv", "empty3.ts"):
        (folder / name).write_bytes(b"")
    wanted = {f"cam7/{n}" for n in [*SIDECARS, "empty.mp4", "empty2.mkv", "empty3.ts"]}
    wait_for(lambda: wanted <= set(refusals(policed)), timeout=30, what="the refusals")
    # Something happens to a sidecar again: no second line, no second count.
    (folder / "clip.xml").chmod(0o600)
    (folder / "clip.txt").write_bytes(b"more notes\n")
    barrier(policed, samples, "after-sidecars.mp4")

    found = refusals(policed)
    assert {p: found[p] for p in wanted} == {
        **{f"cam7/{n}": ["extension"] for n in SIDECARS},
        **{f"cam7/{n}": ["empty"] for n in ("empty.mp4", "empty2.mkv", "empty3.ts")}}
    after = refused_counts(policed)
    assert after["extension"] - before.get("extension", 0) == len(SIDECARS)
    assert after["empty"] - before.get("empty", 0) == 3
    # Left where they were, byte for byte; no row, no token.
    assert sorted(p.name for p in folder.iterdir()) == sorted([*SIDECARS, "empty.mp4",
                                                               "empty2.mkv", "empty3.ts"])
    assert (folder / "clip.xml").read_bytes() == SIDECARS["clip.xml"]
    assert rows(policed.database_url,
                "SELECT count(*) FROM videos WHERE origin = 'inbox/cam7'") == [(0,)]


def test_the_inbox_size_limit_refuses(policed, samples, limit):
    data = (samples / SOURCE).read_bytes()
    assert len(data) == limit
    (policed.inbox / "over.mp4").write_bytes(data + b"\0")  # one byte over
    (policed.inbox / "at-limit.mp4").write_bytes(data)
    assert policed.wait_record("at-limit.mp4")["status"] == "ready"
    wait_for(lambda: refusals(policed).get("over.mp4"), timeout=30, what="the refusal")
    barrier(policed, samples, "after-over.mp4")
    assert refusals(policed)["over.mp4"] == ["too_large"]
    assert refused_counts(policed)["too_large"] == 1
    assert (policed.inbox / "over.mp4").stat().st_size == limit + 1
    assert policed.records_named("over.mp4") == []


# --- every container of the table, by both ways in --------------------------------------

def test_mpeg_ts_and_3gp_from_the_inbox_are_served_with_their_types(policed,
                                                                      format_clips):
    for name in FORMAT_CLIPS:
        shutil.copy(format_clips / name, policed.inbox / name)
    for name, (_args, ctype) in FORMAT_CLIPS.items():
        record = policed.wait_record(name)
        assert record["status"] == "ready", record
        assert formats.by_content(record["file_info"]["format"]) is formats.BY_EXTENSION[
            name.rsplit(".", 1)[1]], record["file_info"]
        stream = policed.http.get(record["api_links"]["stream_url"], timeout=10)
        assert stream.status_code == 200 and stream.headers["Content-Type"] == ctype, name
        assert stream.content == (format_clips / name).read_bytes()
