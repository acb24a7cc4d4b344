"""The derive role on the real pipeline (inbox → prober → PostgreSQL → derive → HTTP): the
derivatives of every sample end ready, skipped or failed with a reason; the endpoints over
HTTP; revocation and deletion; and the crash cases: nothing published by the prober (its
commit is the request), the broker out of reach, a derive worker killed mid-job.

On the file store; the revocation and the delete once per media store (``store_env``: on
s3 no presigned URL for a revoked token, the derivatives' objects gone with the video).
The derive role on s3 (every derivative made in the store, served, removed; killed
mid-job) is test_derive_stores.py's; the rest here is about ffmpeg, the broker, the jobs
and the catalog, the same on both."""

from __future__ import annotations

import itertools
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.harness import System, free_port, rows, videodrop, wait_for
from tests.integration.test_api_uploads import media_of
from tests.integration.test_health_metrics import NotifySocket
from tests.integration.test_probe_samples import EXPECTED
from videodrop.derivatives import KINDS, version_of
from videodrop.storage.base import read_chunks

REAL_FFMPEG = shutil.which("ffmpeg") or "ffmpeg"

#: every kind made of an H.264 video: its HEVC rendition is not needed (not HEVC)
H264_MADE = {**dict.fromkeys(KINDS, "ready"), "hevc": "skipped"}


def derivative_rows(system: System) -> list[tuple[Any, ...]]:
    return rows(system.database_url,
                "SELECT v.original_filename, d.kind, d.status, d.error_code, d.error"
                " FROM derivatives d JOIN videos v ON v.id = d.video_id ORDER BY 1, 2")


def settled(system: System, count: int) -> list[tuple[Any, ...]] | None:
    found = derivative_rows(system)
    if len(found) < count or any(r[2] == "pending" for r in found):
        return None
    return found


def test_every_sample_ends_with_each_derivative_settled(system: System, samples: Path):
    system.start_role("derive")
    for name in sorted(EXPECTED):
        shutil.copy(samples / name, system.inbox / name)
    items = system.wait_done(len(EXPECTED), timeout=180)
    ready = [v for v in items if v["status"] == "ready"]
    found = wait_for(lambda: settled(system, len(KINDS) * len(ready)), timeout=600,
                     interval=0.5, what="every derivative to settle")
    assert len(found) == len(KINDS) * len(ready)
    for name, kind, status, code, error in found:
        assert status in {"ready", "skipped", "failed"}, (name, kind)
        assert (status == "ready") == (error is None and code is None), (name, kind, error)
    failed = [r for r in found if r[2] == "failed"]
    # ffprobe 5.1 opens every stream's decoder before it lists any packet, and cannot open
    # this file's audio (AAC object type 29): no packet index (the prober reads its
    # summary log instead; the frame routes' own listing meets the same)
    assert [r[:4] for r in failed] == [
        ("sandwich-av-mp4a.40.5.mov", "packets", "failed", "ffmpeg_failed")], failed
    assert "cannot open the decoder of stream 1" in failed[0][4]
    # The record shows each state; nothing changed the videos' own status.
    for item in system.videos():
        if item["status"] == "ready":
            assert set(item["derivatives"]) == set(KINDS)
    assert [v["status"] for v in system.videos()] == [v["status"] for v in items]
    summaries = system.wait_log_events("derive", "derive")
    assert summaries and all("kinds" in s and "total_ms" in s for s in summaries)
    # what retention counts of each video's derivatives (migration 0022): the bytes of the
    # files its ready rows name and record, as they are on disk
    counted = rows(system.database_url,
                   "SELECT v.id, v.derivative_bytes, array_agg(d.data->>'file')"
                   " FILTER (WHERE d.data ? 'bytes') FROM videos AS v JOIN derivatives AS d"
                   " ON d.video_id = v.id AND d.status = 'ready' GROUP BY v.id")
    assert counted and any(total > 0 for _, total, _ in counted)
    for video_id, total, files in counted:
        on_disk = sum((system.media_root / f).stat().st_size for f in files or [] if f)
        assert total == on_disk, video_id


@pytest.fixture
def one_ready(make_system: Any, samples: Path) -> tuple[System, dict[str, Any]]:
    return ready_system(make_system, samples)


def ready_system(make_system: Any, samples: Path, **env: str
                 ) -> tuple[System, dict[str, Any]]:
    """A system (with ``env``) and the record of a video with every derivative ready."""
    system = make_system(**env).start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "bbb.mp4")
    record = system.wait_record("bbb.mp4")

    def made() -> dict[str, Any] | None:
        item = system.http.get(record["api_links"]["api_endpoint"], timeout=5).json()
        states = {k: v["status"] for k, v in item["derivatives"].items()}
        return item if states == H264_MADE else None
    return system, wait_for(made, timeout=120, interval=0.3, what="every derivative")


def test_the_endpoints_over_http(one_ready: tuple[System, dict[str, Any]]):
    system, record = one_ready
    links = record["api_links"]
    http = system.http
    got = http.get(links["poster_url"], timeout=5)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert got.content[:2] == b"\xff\xd8"
    assert got.headers["Cache-Control"] == "private, no-cache"  # revalidated: remakes
    etag = got.headers["ETag"]
    again = http.get(links["poster_url"], headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    board = http.get(links["storyboard_url"], timeout=5)
    assert board.status_code == 200
    view = board.json()
    assert view["decode"] in {"keyframes", "full"} and len(view["tiles"]) == 10  # 10 s clip
    tile = view["tiles"][3]
    assert set(tile) == {"start", "end", "url", "x", "y", "w", "h"}
    assert 160 <= tile["w"] <= 320
    sheet = http.get(tile["url"], timeout=5)
    assert sheet.status_code == 200 and sheet.headers["Content-Type"] == "image/jpeg"
    vtt = http.get(links["storyboard_vtt_url"], timeout=5)
    assert vtt.status_code == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    lines = vtt.text.splitlines()
    assert lines[0] == "WEBVTT" and f"{tile['url']}#xywh={tile['x']},{tile['y']}," \
        f"{tile['w']},{tile['h']}" in lines
    assert http.get(tile["url"].replace("/0.jpg", "/7.jpg"), timeout=5).status_code == 404
    assert http.get(links["poster_url"].replace("/poster/", "/storyboard/x.jpg"),
                    timeout=5).status_code == 404
    check_scenes(http, links, record["file_info"]["duration"])
    meta = http.get(links["metadata_url"], timeout=5).json()
    assert meta["derivatives"]["poster"]["status"] == "ready"
    assert meta["derivatives"]["scenes"] == {"status": "ready", "error": None,
                                             "error_code": None, "remaking": False}
    # No slash: the same 308 as the other token endpoints.
    bare = http.get(links["poster_url"].rstrip("/"), allow_redirects=False, timeout=5)
    assert bare.status_code == 308


def check_scenes(http: Any, links: dict[str, str], duration: float) -> None:
    got = http.get(links["scenes_url"], timeout=5)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith(
        "application/json")
    view = got.json()
    found = view["scenes"]
    assert view["count"] == len(found) >= 1 and found[0]["start"] == 0.0
    assert found[-1]["end"] == pytest.approx(duration, abs=0.1)
    assert found[-1]["end_frame"] == view["frames"]
    for before, after in itertools.pairwise(found):
        assert before["end"] == after["start"] and before["end_frame"] == after["start_frame"]
        assert after["transition"] in {"cut", "gradual"}
    assert found[0]["transition"] is None
    assert len(view["activity"]) == pytest.approx(duration, abs=1)
    assert all(0 <= a <= 255 for a in view["activity"])
    thumb = found[-1]["thumbnail"]
    assert (thumb["w"], thumb["h"]) == (160, 90)
    sheet = http.get(thumb["url"], timeout=5)
    assert sheet.status_code == 200 and sheet.headers["Content-Type"] == "image/jpeg"
    assert http.get(links["scenes_url"] + "9.jpg", timeout=5).status_code == 404
    vtt = http.get(links["scenes_vtt_url"], timeout=5)
    assert vtt.status_code == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    lines = vtt.text.splitlines()
    assert lines[0] == "WEBVTT" and "Scene 1" in lines and lines.count("") == len(found)


def test_revoked_token_and_deleted_video_take_their_derivatives_along(
        make_system: Any, samples: Path, store_env: dict[str, str]):
    system, record = ready_system(make_system, samples, **store_env)
    links = record["api_links"]
    derived = [links["poster_url"], links["storyboard_url"], links["storyboard_vtt_url"],
               links["storyboard_url"] + "0.jpg", links["scenes_url"],
               links["scenes_vtt_url"], links["scenes_url"] + "0.jpg"]
    folder = system.media_root / "derivatives" / record["source_id"]
    media, prefix = media_of(system), f"derivatives/{record['source_id']}/"
    assert media.exists(prefix + "poster.jpg") and media.exists(prefix + "scenes-00.jpg")
    # served before the revocation (the JSON and VTT by the API; the images through it on
    # both stores: on s3 a presigned URL changes each minute, so no browser could keep the
    # versioned poster a year nor revalidate an image)
    for url in derived:
        assert system.http.get(url, timeout=5).status_code == 200, url
    made_at = "SELECT completed_at FROM derivatives WHERE kind = 'poster'"
    version = version_of(rows(system.database_url, made_at)[0][0])
    with media.open(prefix + "poster.jpg") as reader:
        stored = b"".join(read_chunks(reader))
    poster = system.http.get(f"{links['poster_url']}?v={version}", timeout=5)
    assert (poster.history, poster.content) == ([], stored)
    assert poster.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    sheet = system.http.get(links["storyboard_url"] + "0.jpg", timeout=5)
    assert sheet.history == [] and sheet.headers["Cache-Control"] == "private, no-cache"
    again = system.http.get(links["storyboard_url"] + "0.jpg", timeout=5,
                            headers={"If-None-Match": sheet.headers["ETag"]})
    assert again.status_code == 304
    revoked = system.http.delete(f"{system.base_url}/api/videos/{record['id']}/token",
                                 headers=system.admin, timeout=5)
    assert revoked.status_code == 200
    for url in derived:
        got = system.http.get(url, timeout=5)
        assert got.status_code == 404, url
        assert "No video has this token" in got.json()["description"]
    gone = system.http.delete(f"{system.base_url}/api/videos/{record['id']}",
                              headers=system.admin, timeout=5)
    assert gone.status_code == 204
    assert not folder.exists()
    assert list(media.list_objects(prefix)) == []
    assert rows(system.database_url, "SELECT count(*) FROM derivatives") == [(0,)]


def test_requests_need_no_publish_by_the_prober_and_wait_out_the_broker(
        make_system: Any, samples: Path):
    """The prober only commits: the rows are the requests. A derive role that cannot
    reach the broker leaves them waiting; one that can publishes and makes them."""
    system = make_system().start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "a.mp4")
    assert system.wait_record("a.mp4")["status"] == "ready"
    assert rows(system.database_url, "SELECT kind, status, queued_at IS NULL"
                " FROM derivatives ORDER BY kind") == [("hevc", "pending", True),
                                                       ("packets", "pending", True),
                                                       ("poster", "pending", True),
                                                       ("rendition", "pending", True),
                                                       ("scenes", "pending", True),
                                                       ("storyboard", "pending", True)]
    record = system.records_named("a.mp4")[0]
    waiting = system.http.get(record["api_links"]["poster_url"], timeout=5)
    assert waiting.status_code == 409 and waiting.headers["Retry-After"] == "10"
    assert waiting.json()["description"] == "The poster is not made yet (pending)."
    scenes = system.http.get(record["api_links"]["scenes_url"], timeout=5)
    assert scenes.status_code == 409 and scenes.headers["Retry-After"] == "10"
    assert scenes.json()["description"] == "The scenes are not made yet (pending)."
    closed = unreachable_url(system.amqp_url)
    unreachable = system.start_role("derive", env={"VIDEODROP_AMQP_URL": closed})
    wait_for(lambda: "relay: part unavailable" in system.log_text("derive"), timeout=60,
             what="the relay to find the broker out of reach")
    assert rows(system.database_url, "SELECT count(*) FROM derivatives"
                " WHERE status = 'pending' AND queued_at IS NULL") == [(len(KINDS),)]
    unreachable.terminate()
    unreachable.wait(timeout=60)
    system.start_role("derive")
    wait_for(lambda: settled(system, len(KINDS)), timeout=120, interval=0.3, what="derivatives")
    assert {r[1]: r[2] for r in derivative_rows(system)} == H264_MADE


def unreachable_url(amqp_url: str) -> str:
    """``amqp_url`` on a port nothing listens on."""
    parts = urlsplit(amqp_url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
    netloc = f"{userinfo}@{host}:{free_port()}" if userinfo else f"{host}:{free_port()}"
    return urlunsplit(parts._replace(netloc=netloc))


def slow_ffmpeg(folder: Path) -> tuple[Path, str]:
    """An ffmpeg that sleeps a long while (a command unique on the machine) while the file
    ``SLOW`` exists in ``folder``, and is the real one otherwise."""
    sleep = f"sleep 600.{secrets.randbelow(10**9):09d}"
    script = folder / "ffmpeg"
    script.write_text(f"""#!/bin/sh
case "$*" in *-version*) exec {REAL_FFMPEG} "$@" ;; esac
[ -e {folder}/SLOW ] && exec {sleep}
exec {REAL_FFMPEG} "$@"
""")
    script.chmod(0o755)
    (folder / "SLOW").touch()
    return script, sleep


def test_a_worker_killed_mid_job_is_redelivered_and_the_job_finishes(
        make_system: Any, samples: Path, tmp_path: Path):
    fake, sleep = slow_ffmpeg(tmp_path)
    system = make_system(VIDEODROP_FFMPEG=str(fake)).start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "k.mp4")
    system.wait_record("k.mp4")
    wait_for(lambda: rows(system.database_url,
                          "SELECT count(*) FROM derivatives WHERE attempts = 1")[0][0] == 1,
             timeout=60, what="a job to start")
    system.kill("derive")  # SIGKILL mid-job: its message goes back to the queue
    subprocess.run(["pkill", "-f", sleep], check=False)
    (tmp_path / "SLOW").unlink()
    system.start_role("derive")
    found = wait_for(lambda: settled(system, len(KINDS)), timeout=120, interval=0.3,
                     what="the redelivered job to finish")
    assert {r[1]: r[2] for r in found} == H264_MADE
    assert rows(system.database_url, "SELECT max(attempts) FROM derivatives") == [(2,)]
    leftovers = list((system.media_root / "derivatives").rglob(".tmp-*"))
    assert leftovers == []


def test_requeue_derivatives_and_the_reconcile_at_start(make_system: Any, samples: Path):
    system = make_system().start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "r.mp4")
    system.wait_record("r.mp4")
    # A video made ready before derivatives existed (or with VIDEODROP_DERIVE off).
    rows(system.database_url, "DELETE FROM derivatives RETURNING 1")
    system.start_role("derive")
    wait_for(lambda: settled(system, len(KINDS)), timeout=120, interval=0.3,
             what="the reconcile at start to request and make them")
    rows(system.database_url, "UPDATE derivatives SET status = 'failed', error = 'x',"
         " error_code = 'internal' WHERE kind = 'poster' RETURNING 1")
    done = videodrop(system, "requeue", "--derivatives", "failed", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "requested 1 derivative(s) again" in done.stdout
    wait_for(lambda: rows(system.database_url, "SELECT status FROM derivatives"
                          " WHERE kind = 'poster'") == [("ready",)],
             timeout=120, what="the failed poster to be made again")
    bad = videodrop(system, "requeue", "--derivatives", "some", timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'some'" in bad.stderr


def stalling_ffmpeg(folder: Path) -> tuple[Path, str]:
    """An ffmpeg that fails (exit 1) while ``FAIL`` exists in ``folder``, sleeps a long
    while (a command unique on the machine) on the arguments containing the text of
    ``STALL`` while that file exists, and is the real one otherwise."""
    sleep = f"sleep 600.{secrets.randbelow(10**9):09d}"
    script = folder / "ffmpeg"
    script.write_text(f"""#!/bin/sh
case "$*" in *-version*) exec {REAL_FFMPEG} "$@" ;; esac
[ -e {folder}/FAIL ] && exit 1
if [ -e {folder}/STALL ]; then
  case "$*" in *"$(cat {folder}/STALL)"*) exec {sleep} ;; esac
fi
exec {REAL_FFMPEG} "$@"
""")
    script.chmod(0o755)
    return script, sleep


@pytest.fixture
def stalling(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """:func:`stalling_ffmpeg` in ``tmp_path``; its sleep is ended after the test."""
    fake, sleep = stalling_ffmpeg(tmp_path)
    yield fake, sleep
    subprocess.run(["pkill", "-f", sleep], check=False)


def test_a_remake_keeps_serving_the_previous_version_and_a_failed_one_removes_it(
        make_system: Any, samples: Path, tmp_path: Path, stalling: tuple[Path, str]):
    """requeue --derivatives all: every derivative stays ready and served (``remaking``)
    until its new version replaces it; each kind remade is logged as it is recorded (not
    at the job's end); a remake that fails records why and leaves no file behind."""
    fake, sleep = stalling
    system = make_system(VIDEODROP_FFMPEG=str(fake)).start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "w.mp4")
    record = system.wait_record("w.mp4")
    links = record["api_links"]
    wait_for(lambda: settled(system, len(KINDS)), timeout=120, interval=0.3,
             what="the first derivatives")
    folder = system.media_root / "derivatives" / record["source_id"]
    first_poster = system.http.get(links["poster_url"], timeout=5)
    assert first_poster.status_code == 200
    made_at = "SELECT completed_at FROM derivatives WHERE kind = 'poster'"
    first_version = version_of(rows(system.database_url, made_at)[0][0])
    kept = system.http.get(f"{links['poster_url']}?v={first_version}", timeout=5)
    assert kept.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    (tmp_path / "STALL").write_text("-f rawvideo -pixel_format rgb24")  # the scenes' sheets
    done = videodrop(system, "requeue", "--derivatives", "all", timeout=60)
    assert done.returncode == 0, done.stderr
    remade = "SELECT kind, status, remaking FROM derivatives ORDER BY kind"
    wait_for(lambda: rows(system.database_url, remade) == [
        ("hevc", "skipped", False), ("packets", "ready", False), ("poster", "ready", False),
        ("rendition", "ready", True),
        ("scenes", "ready", True), ("storyboard", "ready", False)], timeout=120,
        interval=0.3, what="the packet index, poster and storyboard remade, the scenes stalled")
    # Logged as each kind was recorded, while the job is still on its scenes.
    lines = system.wait_log_events("derive", "derived", count=3, remake=True)
    assert sorted(e["kind"] for e in lines) == ["packets", "poster", "storyboard"]
    assert all(e["status"] == "ready" for e in lines)
    # The scenes being remade are served as they were; the record says so.
    item = system.http.get(links["api_endpoint"], timeout=5).json()
    assert item["derivatives"]["scenes"]["status"] == "ready"
    assert item["derivatives"]["scenes"]["remaking"] is True
    assert system.http.get(links["scenes_url"], timeout=5).status_code == 200
    assert system.http.get(links["scenes_url"] + "0.jpg", timeout=5).status_code == 200
    poster = system.http.get(links["poster_url"], timeout=5)
    assert poster.status_code == 200 and poster.headers["ETag"] != first_poster.headers["ETag"]
    # the remade poster has a new version: the old one's URL is revalidated, not kept
    version = version_of(rows(system.database_url, made_at)[0][0])
    assert version != first_version
    for asked, cache in ((first_version, "private, no-cache"),
                         (version, "private, max-age=31536000, immutable")):
        got = system.http.get(f"{links['poster_url']}?v={asked}", timeout=5)
        assert got.headers["Cache-Control"] == cache and got.content == poster.content
    # The scenes' remake fails: its previous files go, the state says why.
    (tmp_path / "FAIL").touch()
    subprocess.run(["pkill", "-f", sleep], check=False)
    wait_for(lambda: rows(system.database_url, "SELECT status, remaking FROM derivatives"
                          " WHERE kind = 'scenes'") == [("failed", False)],
             timeout=120, what="the scenes' remake to fail")
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("scenes")) == []
    refused = system.http.get(links["scenes_url"] + "0.jpg", timeout=5)
    assert refused.status_code == 409
    assert refused.json()["description"].startswith("Making the scenes failed: ")
    assert (folder / "poster.jpg").is_file()


def test_a_job_that_keeps_crashing_goes_to_the_dead_letter_queue(make_system: Any,
                                                                 samples: Path):
    system = make_system().start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "p.mp4")
    system.wait_record("p.mp4")
    # A database that refuses to start a job: a crash in the handler that is neither
    # transient nor a bad message (a schema bug, say).
    with psycopg.connect(system.database_url, autocommit=True) as db:
        db.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refusing to start a derive job'; END $$""")
        db.execute("""CREATE TRIGGER refuse BEFORE UPDATE ON derivatives FOR EACH ROW
            WHEN (NEW.attempts > OLD.attempts) EXECUTE FUNCTION refuse()""")
    system.start_role("derive")
    wait_for(lambda: system.queue_counts("derive.dead")[0] == 1, timeout=120,
             what="the job to be dead-lettered")
    assert system.log_text("derive").count("handler crashed") == 5
    found = wait_for(lambda: settled(system, len(KINDS)), timeout=30, what="the failure recorded")
    for _name, _kind, status, code, error in found:
        assert (status, code) == ("failed", "internal")
        assert "refusing to start a derive job" in error
    assert system.queue_counts("derive")[1] == 1  # the worker is unharmed: still consuming
    # The way out, once the cause is fixed: drain the dead letters (logged), make them again.
    with psycopg.connect(system.database_url, autocommit=True) as db:
        db.execute("DROP TRIGGER refuse ON derivatives")
    drained = videodrop(system, "requeue", "--dead", timeout=60)
    assert drained.returncode == 0, drained.stderr
    assert "and 1 dead-lettered message(s)" in drained.stdout
    said = drained.stdout + drained.stderr
    assert "dead letter requeued" in said and f"{system.prefix}.derive.dead" in said
    assert system.queue_counts("derive.dead")[0] == 0
    again = videodrop(system, "requeue", "--derivatives", "failed", timeout=60)
    assert again.returncode == 0, again.stderr
    wait_for(lambda: {kind: status for kind, status in rows(
        system.database_url, "SELECT kind, status FROM derivatives")} == H264_MADE,
        timeout=120, what="the failed ones made again")


def test_a_missing_ffmpeg_is_waited_out_as_one_job(make_system: Any, samples: Path,
                                                   tmp_path: Path):
    """ffmpeg gone for a while (an upgrade): the job is retried in place, and counts as
    one job (attempts 1), not one per try (which would end in gave_up)."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\nexec {REAL_FFMPEG} \"$@\"\n")
    fake.chmod(0o755)
    system = make_system(VIDEODROP_FFMPEG=str(fake)).start()
    system.start_role("derive")
    system.wait_consumers(1, queue="derive")
    fake.chmod(0o644)  # not executable: prlimit cannot run it
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "m.mp4")
    system.wait_record("m.mp4")
    wait_for(lambda: system.log_text("derive").count("transient problem; retrying") >= 6,
             timeout=120, what="ffmpeg's absence to be retried in place")
    fake.chmod(0o755)
    found = wait_for(lambda: settled(system, len(KINDS)), timeout=120, interval=0.3,
                     what="the derivatives once ffmpeg is back")
    assert {r[1]: r[2] for r in found} == H264_MADE
    assert rows(system.database_url, "SELECT max(attempts) FROM derivatives") == [(1,)]


def test_a_request_made_while_another_job_holds_the_video_ends_without_a_restart(
        make_system: Any, samples: Path, tmp_path: Path):
    """Two derive jobs at once (VIDEODROP_DERIVE_CONCURRENCY=2): ``videodrop requeue
    --derivatives all`` while a job is making the scenes. The fresh requests' job meets
    that job's lock and does nothing; the lock's holder publishes them again once it lets
    go, and every kind ends remade, without a restart of the role (they stayed pending,
    remaking, until one)."""
    fake = tmp_path / "ffmpeg"  # the scenes pass (raw frames to a pipe) waits while HOLD
    fake.write_text(f"""#!/bin/sh
case "$*" in *rawvideo*) touch {tmp_path}/HELD
  while [ -e {tmp_path}/HOLD ]; do sleep 0.2; done ;; esac
exec {REAL_FFMPEG} "$@"
""")
    fake.chmod(0o755)
    (tmp_path / "HOLD").touch()
    system = make_system(VIDEODROP_FFMPEG=str(fake), VIDEODROP_DERIVE_CONCURRENCY="2",
                         VIDEODROP_DERIVE="poster,storyboard,scenes").start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "held.mp4")
    system.wait_record("held.mp4")
    wait_for((tmp_path / "HELD").exists, timeout=60, what="the scenes pass to run")
    done = videodrop(system, "requeue", "--derivatives", "all", timeout=60)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: rows(system.database_url, "SELECT count(*) FROM derivatives"
                          " WHERE queued_at IS NOT NULL AND (status = 'pending' OR remaking)")
             == [(3,)], timeout=30, what="the fresh requests' job published")
    wait_for(lambda: any("duplicate" in str(e.get("event"))
                         for e in system.log_events("derive")),
             timeout=30, what="the fresh requests' job to meet the held job's lock")
    (tmp_path / "HOLD").unlink()
    wait_for(lambda: rows(system.database_url, "SELECT kind FROM derivatives WHERE"
                          " status = 'ready' AND NOT remaking ORDER BY kind")
             == [("poster",), ("scenes",), ("storyboard",)],
             timeout=120, interval=0.3, what="every kind remade, with no restart")


def test_an_empty_derive_setting_turns_the_role_off(make_system: Any, samples: Path):
    """VIDEODROP_DERIVE empty: the prober requests nothing when a video turns ready, the
    role exits at once (status 0, saying why), and the derivative URLs say the kind is
    left out rather than pending."""
    system = make_system(VIDEODROP_DERIVE="").start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "off.mp4")
    record = system.wait_record("off.mp4")
    assert record["status"] == "ready"
    assert rows(system.database_url, "SELECT count(*) FROM derivatives") == [(0,)]
    notify = NotifySocket()  # under systemd (Type=notify): READY=1 before the clean exit
    try:
        role = system.start_role("derive", env={"NOTIFY_SOCKET": notify.address})
        assert role.wait(timeout=60) == 0
        ready = notify.wait_for("READY=1", timeout=5)
    finally:
        notify.close()
    assert "STATUS=VIDEODROP_DERIVE is empty: nothing to make" in ready.split("\n")
    assert "VIDEODROP_DERIVE is empty: nothing to make" in system.log_text("derive")
    assert rows(system.database_url, "SELECT count(*) FROM derivatives") == [(0,)]
    got = system.http.get(record["api_links"]["poster_url"], timeout=5)
    assert got.status_code == 409 and "Retry-After" not in got.headers
    assert got.json()["description"] == (
        "The poster is not requested (VIDEODROP_DERIVE leaves it out).")
