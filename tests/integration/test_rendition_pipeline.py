"""Renditions through the whole system (inbox → prober → derive → HTTP) with the real
broker, database and ffmpeg: ``/stream/`` switches to the rendition once it is ready and
``/download/`` keeps the original's bytes; ``playback`` says what is served; on-view
transcodes start on the first ``/stream/``; a derive worker SIGKILLed mid-transcode leaves
its message acked (no consumer timeout can end it) and, restarted, finishes the rendition
exactly once.

The rendition served and deleted, and a delete mid-transcode, run once per media store
(``store_env``: on s3 the rendition an object, served by proxy so that the API's own
headers are the ones checked); the rest is about ffmpeg, the broker and the jobs (the
derive role killed mid-job on s3 is test_derive_stores.py's)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

from deploy.devstack import ThrowawayRabbitMQ
from prober.isobmff import top_level_boxes
from testbed.processes import wait_until_gone
from tests.harness import System, rows, videodrop, wait_for
from tests.integration.test_api_uploads import media_of, stored_files
from tests.integration.test_retention_api import signed_in

REAL_FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def rendition_of(system: System, record: dict[str, Any]) -> dict[str, Any] | None:
    """The record's playback once its rendition is no longer pending."""
    item = system.http.get(record["api_links"]["api_endpoint"], timeout=5).json()
    playback = item["playback"]
    return playback if playback["status"] not in (None, "pending") else None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(system: System, key: str) -> bytes | None:
    """The bytes stored under ``key`` (a file or an object), None when there are none."""
    media = media_of(system)
    if not media.exists(key):
        return None
    with media.open(key) as reader:
        return reader.read()


def proxied(store_env: dict[str, str]) -> dict[str, str]:
    """``store_env`` with an S3 object's bytes served through the API."""
    return {**store_env, "VIDEODROP_S3_SERVE": "proxy"} if store_env else {}


def test_stream_switches_to_the_rendition_and_download_stays_the_original(
        make_system: Any, camera_corpus: Path, store_env: dict[str, str]):
    system = make_system(VIDEODROP_TRANSCODE="eager", **proxied(store_env)).start()
    system.start_role("derive")
    files = {"remux.mp4": "moov-at-end.mp4", "hevc.mp4": "hevc-hev1.mp4",
             "plays.mp4": "faststart.mp4"}
    for name, variant in files.items():
        shutil.copy(camera_corpus / variant, system.inbox / name)
    records = {name: system.wait_record(name) for name in files}
    done = {name: wait_for(lambda r=r: rendition_of(system, r), timeout=120, interval=0.3,
                           what=f"the rendition of {name}") for name, r in records.items()}
    assert (done["remux.mp4"]["stream"], done["remux.mp4"]["status"]) == ("remux", "ready")
    assert (done["hevc.mp4"]["stream"], done["hevc.mp4"]["status"]) == ("transcode", "ready")
    assert done["plays.mp4"] | {"reasons": []} == {
        "playable": True, "reasons": [], "needs": None, "unknown": [], "stream": "original",
        "status": "skipped", "error_code": "not_needed", "progress": None, "hevc": None}
    assert all(p["progress"] is None for p in done.values())

    hevc = records["hevc.mp4"]
    links = hevc["api_links"]
    stream = system.http.get(links["stream_url"], timeout=10)
    download = system.http.get(links["download_url"], timeout=10)
    original = (camera_corpus / files["hevc.mp4"]).read_bytes()
    assert sha256(download.content) == sha256(original)  # untouched
    key = f"derivatives/{hevc['source_id']}/rendition.mp4"
    made = stored(system, key)
    assert made is not None and stream.status_code == 200 and stream.content == made
    assert stream.headers["Content-Type"] == "video/mp4"
    assert stream.headers["ETag"] != download.headers["ETag"]
    # the bytes under /stream/ changed: revalidated, never reused from a cache blindly
    assert stream.headers["Cache-Control"] == "private, no-cache"
    assert download.headers["Cache-Control"] == "private, max-age=3600"
    part = system.http.get(links["stream_url"], headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206 and part.content == made[100:200]
    meta = system.http.get(links["metadata_url"], timeout=5).json()
    assert meta["playback"]["stream"] == "transcode" and meta["sha256"] == sha256(original)
    row = rows(system.database_url, "SELECT data FROM derivatives d JOIN videos v"
               " ON v.id = d.video_id WHERE d.kind = 'rendition' AND v.id = %s", hevc["id"])
    data = row[0][0]
    assert {k: data[k] for k in ("file", "stream", "content_type", "video_codec",
                                 "audio_codec", "width", "height")} == {
        "file": f"derivatives/{hevc['source_id']}/rendition.mp4", "stream": "transcode",
        "content_type": "video/mp4", "video_codec": "h264", "audio_codec": "aac",
        "width": 320, "height": 240}
    assert data["bytes"] == len(made) and data["ms"] > 0
    # the HEVC rendition (browsers that decode HEVC): the same frames, tagged hvc1, index
    # first, stored beside the rendition and served by ?rendition=hevc
    offered = system.http.get(links["api_endpoint"], timeout=5).json()["playback"]["hevc"]
    assert offered == {"status": "ready", "error_code": None, "stream": "remux",
                       "type": 'video/mp4; codecs="hvc1.1.6.L60.B0"',
                       "path": f"/stream/{links['access_token']}/?rendition=hevc"}
    hevc_key = f"derivatives/{hevc['source_id']}/hevc.mp4"
    copied = system.http.get(system.base_url + offered["path"], timeout=10)
    assert copied.status_code == 200 and copied.content == stored(system, hevc_key)
    assert copied.headers["Content-Type"] == "video/mp4"
    assert copied.headers["ETag"] not in (stream.headers["ETag"], download.headers["ETag"])
    copy_file = system.media_root.parent / "hevc-copy.mp4"
    copy_file.write_bytes(copied.content)
    assert [s["codec_tag_string"] for s in ffprobe_streams(copy_file)] == ["hvc1", "mp4a"]
    assert top_level_boxes(copy_file).moov_first is True
    assert framemd5(copy_file) == framemd5(camera_corpus / files["hevc.mp4"])
    plays = records["plays.mp4"]["api_links"]["stream_url"]
    plain = system.http.get(plays, timeout=5)
    assert sha256(plain.content) == sha256((camera_corpus / "faststart.mp4").read_bytes())
    assert plain.headers["Cache-Control"] == "private, no-cache"  # a rendition may come
    # revoked: 404; deleted: the rendition goes with it
    revoked = system.http.delete(f"{system.base_url}/api/videos/{hevc['id']}/token",
                                 headers=system.admin, timeout=5)
    assert revoked.status_code == 200
    assert system.http.get(links["stream_url"], timeout=5).status_code == 404
    assert system.http.get(system.base_url + offered["path"], timeout=5).status_code == 404
    gone = system.http.delete(f"{system.base_url}/api/videos/{hevc['id']}",
                              headers=system.admin, timeout=5)
    assert gone.status_code == 204 and stored(system, key) is None
    assert stored(system, hevc_key) is None
    assert not [k for k in stored_files(system) if hevc["source_id"] in k]


def ffprobe_streams(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                           f"file:{path}"], capture_output=True, check=True, timeout=60)
    return list(json.loads(done.stdout)["streams"])


def framemd5(path: Path) -> list[str]:
    """The decoded video frames' MD5s (ffmpeg's framemd5, the timing columns left out)."""
    done = subprocess.run([REAL_FFMPEG, "-v", "error", "-i", f"file:{path}", "-map", "0:v:0",
                           "-f", "framemd5", "-"], capture_output=True, check=True,
                          text=True, timeout=120)
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines()
            if line and not line.startswith("#")]


def test_the_hevc_rendition_is_offered_without_a_transcode(make_system: Any,
                                                           camera_corpus: Path,
                                                           tmp_path: Path):
    """on-view: HEVC gets its HEVC rendition at once (a copy; the original itself when it
    is fit already), and reading it asks for no transcode; HEVC a copy cannot serve
    (10-bit) has none, and ``?rendition=hevc`` answers 404 there, 400 for another value."""
    ten_bit = tmp_path / "ten.mkv"
    subprocess.run([REAL_FFMPEG, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=10:duration=1", "-c:v", "libx265", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error",
                    str(ten_bit)], check=True, timeout=120)
    system = make_system(VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    files = {"ts.ts": camera_corpus / "hevc-aac.ts", "fit.mp4": camera_corpus / "hevc-hvc1.mp4",
             "ten.mkv": ten_bit}
    for name, source in files.items():
        shutil.copy(source, system.inbox / name)
    records = {name: system.wait_record(name) for name in files}

    def hevc_settled(record: dict[str, Any]) -> dict[str, Any] | None:
        item = system.http.get(record["api_links"]["api_endpoint"], timeout=5).json()
        state = item["derivatives"].get("hevc", {}).get("status")
        return item if state not in (None, "pending") else None
    done = {name: wait_for(lambda r=r: hevc_settled(r), timeout=120, interval=0.3,
                           what=f"the HEVC rendition of {name}")
            for name, r in records.items()}
    assert done["ten.mkv"]["derivatives"]["hevc"]["error_code"] == "no_path"
    assert done["ten.mkv"]["playback"]["hevc"] is None
    ten_link = f"{records['ten.mkv']['api_links']['stream_url']}?rendition=hevc"
    missing = system.http.get(ten_link, timeout=5)
    assert missing.status_code == 404 and "No HEVC rendition" in missing.text
    for query in ("rendition=h264", "rendition=", "rendition=hevc&rendition=hevc",
                  "rendition=HEVC"):
        refused = system.http.get(f"{records['ts.ts']['api_links']['stream_url']}?{query}",
                                  timeout=5)
        assert refused.status_code == 400, query
    wanted = ("SELECT wanted_at IS NOT NULL FROM derivatives"
              " WHERE kind = 'rendition' AND video_id = %s")
    for name, record in records.items():
        offered = done[name]["playback"]["hevc"]
        if name == "ten.mkv":
            continue
        assert offered["status"] == "ready", name
        got = system.http.get(system.base_url + offered["path"], timeout=10)
        assert got.status_code == 200 and got.headers["Content-Type"] == "video/mp4"
        # want_rendition would write before the answer: nothing to wait for
        assert rows(system.database_url, wanted, record["id"]) == [(False,)], name
        if name == "fit.mp4":  # hvc1, index first, AAC: the original is served as it is
            assert offered["stream"] == "original"
            assert got.content == files[name].read_bytes()
        else:
            assert offered["stream"] == "remux"
            out = tmp_path / f"{name}.mp4"
            out.write_bytes(got.content)
            assert [s["codec_tag_string"] for s in ffprobe_streams(out)] == ["hvc1", "mp4a"]
            assert framemd5(out) == framemd5(files[name])
    # the page does not ask for the transcode either: a browser that does not decode HEVC
    # asks by reading /stream/ (the page's fallback source)
    page = signed_in(system).get(f"{system.base_url}/videos/{records['ts.ts']['id']}",
                                 timeout=5)
    assert page.status_code == 200 and 'data-hevc-src="/stream/' in page.text
    assert rows(system.database_url, wanted, records["ts.ts"]["id"]) == [(False,)]
    assert system.http.get(records["ts.ts"]["api_links"]["stream_url"],
                           timeout=5).status_code == 200
    assert rows(system.database_url, wanted, records["ts.ts"]["id"]) == [(True,)]


def test_on_view_transcode_starts_when_someone_streams(make_system: Any, camera_corpus: Path):
    system = make_system(VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "v.mp4")
    shutil.copy(camera_corpus / "h264-aac.ts", system.inbox / "r.ts")
    record = system.wait_record("v.mp4")
    remux = wait_for(lambda: rendition_of(system, system.wait_record("r.ts")), timeout=120,
                     interval=0.3, what="the remux")
    assert remux["stream"] == "remux"  # remuxes are made at once
    waiting = wait_for(lambda: rendition_of(system, record), timeout=60, interval=0.3,
                       what="the on-view skip")
    assert (waiting["status"], waiting["error_code"], waiting["stream"]) == (
        "skipped", "on_view", "original")
    first = system.http.get(record["api_links"]["stream_url"], timeout=5)
    assert first.status_code == 200 and first.content == (
        camera_corpus / "hevc-hvc1.mp4").read_bytes()  # the original meanwhile
    # the record may still show the skip for a moment (the token cache hears of the change
    # asynchronously): wait for what follows it
    ready = wait_for(lambda: (p := rendition_of(system, record)) and p["status"] != "skipped"
                     and p, timeout=120, interval=0.3, what="the viewed transcode")
    assert (ready["status"], ready["stream"]) == ("ready", "transcode")
    assert rows(system.database_url, "SELECT attempts FROM derivatives"
                " WHERE kind = 'rendition' AND video_id = %s", record["id"]) == [(1,)]


def test_a_head_of_the_stream_does_not_start_an_on_view_transcode(make_system: Any,
                                                                  camera_corpus: Path):
    """``HEAD /stream/`` (a link checker, a preview, ``curl -I``) watches nothing: only a
    GET (or the page) starts an on-view transcode, which costs a core for about the
    video's length (docs/playback.md, "Capacity"). A HEAD started it."""
    system = make_system(VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "h.mp4")
    record = system.wait_record("h.mp4")
    waiting = wait_for(lambda: rendition_of(system, record), timeout=60, interval=0.3,
                       what="the on-view skip")
    assert (waiting["status"], waiting["error_code"]) == ("skipped", "on_view")
    wanted = ("SELECT status, error_code, wanted_at IS NOT NULL FROM derivatives"
              " WHERE kind = 'rendition' AND video_id = %s")
    head = system.http.head(record["api_links"]["stream_url"], timeout=5)
    assert head.status_code == 200
    # want_rendition writes before the answer: nothing to wait for
    assert rows(system.database_url, wanted, record["id"]) == [("skipped", "on_view", False)]
    assert system.http.get(record["api_links"]["stream_url"], timeout=5).status_code == 200
    assert rows(system.database_url, wanted, record["id"])[0][2] is True


def test_a_viewer_before_the_job_plans_it_gets_the_transcode(make_system: Any,
                                                             camera_corpus: Path):
    """on-view: someone streams the video while its rendition is still pending (the derive
    role not running yet): the job that plans it transcodes it rather than wait."""
    system = make_system(VIDEODROP_TRANSCODE="on-view").start()
    shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "early.mp4")
    record = system.wait_record("early.mp4")
    assert record["playback"]["status"] == "pending"
    assert system.http.get(record["api_links"]["stream_url"], timeout=5).status_code == 200
    system.start_role("derive")
    ready = wait_for(lambda: rendition_of(system, record), timeout=120, interval=0.3,
                     what="the wanted transcode")
    assert (ready["status"], ready["stream"]) == ("ready", "transcode")


def fake_x264(folder: Path, before: str, flag: str) -> Path:
    """An ffmpeg that runs the shell line ``before`` ahead of a libx264 encode, and is the
    real ffmpeg otherwise; the file ``flag`` is made in ``folder``."""
    script = folder / "ffmpeg"
    script.write_text(f"""#!/bin/sh
case "$*" in *libx264*) {before} ;; esac
exec {REAL_FFMPEG} "$@"
""")
    script.chmod(0o755)
    (folder / flag).touch()
    return script


def slow_x264(folder: Path) -> Path:
    """libx264 encodes sleep (their pid in ``x264.pid``) while ``SLOW`` exists."""
    return fake_x264(folder, f"if [ -e {folder}/SLOW ]; then echo $$ > {folder}/x264.pid;"
                             " exec sleep 600; fi", "SLOW")


def test_a_worker_killed_mid_transcode_finishes_it_exactly_once_after_restart(
        make_system: Any, camera_corpus: Path, tmp_path: Path):
    fake = slow_x264(tmp_path)
    system = make_system(VIDEODROP_FFMPEG=str(fake), VIDEODROP_TRANSCODE="eager").start()
    system.start_role("derive")
    shutil.copy(camera_corpus / "hevc-aac.ts", system.inbox / "k.ts")
    record = system.wait_record("k.ts")
    wait_for(lambda: (tmp_path / "x264.pid").exists() and rows(
        system.database_url, "SELECT count(*) FROM derivatives WHERE kind = 'rendition'"
        " AND running_since IS NOT NULL")[0][0] == 1, timeout=120, what="the transcode to run")
    # Running, and its message is acked already: no consumer timeout can end it.
    wait_for(lambda: system.queue_counts("derive.transcode") == (0, 1), timeout=30,
             what="the transcode queue empty with its consumer")
    pid = int((tmp_path / "x264.pid").read_text())
    system.kill("derive")  # SIGKILL mid-transcode
    with contextlib.suppress(ProcessLookupError):  # the encoder dies with it (pdeathsig)
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: system.queue_counts("derive.transcode")[1] == 0, timeout=30,
             what="the broker to see the consumer gone")
    assert system.queue_counts("derive.transcode") == (0, 0)  # acked: nothing redelivered
    folder = system.media_root / "derivatives" / record["source_id"]
    assert not (folder / "rendition.mp4").exists()  # nothing half-written is served
    assert list(folder.glob(".tmp-rendition-*"))  # the dead job's scratch folder
    (tmp_path / "SLOW").unlink()
    system.start_role("derive")
    ready = wait_for(lambda: rendition_of(system, record), timeout=120, interval=0.3,
                     what="the transcode to finish after the restart")
    assert (ready["status"], ready["stream"]) == ("ready", "transcode")
    assert rows(system.database_url, "SELECT attempts, running_since IS NULL FROM derivatives"
                " WHERE kind = 'rendition'") == [(2, True)]
    made = system.wait_log_events("derive", "derived", kind="rendition", status="ready")
    assert len(made) == 1  # exactly once
    assert list(folder.glob(".tmp-*")) == [] and (folder / "rendition.mp4").is_file()


class ShortTimeoutRabbitMQ(ThrowawayRabbitMQ):
    """A throwaway broker whose consumer timeout is 3 s, checked every second (a channel
    checks it at each tick, ``channel_tick_interval``: a minute by default)."""

    def _prepare(self) -> None:
        super()._prepare()
        with (self.base_dir / "rabbitmq.conf").open("a") as conf:
            conf.write("consumer_timeout = 3000\n")
        (self.base_dir / "advanced.config").write_text(
            "[{rabbit, [{channel_tick_interval, 1000}]}].\n")


def held_x264(folder: Path) -> Path:
    """libx264 encodes wait while ``HOLD`` exists (a long transcode), then run."""
    return fake_x264(folder, f"touch {folder}/HELD; while [ -e {folder}/HOLD ];"
                             " do sleep 0.5; done", "HOLD")


def test_a_transcode_outlives_the_brokers_consumer_timeout(
        make_system: Any, camera_corpus: Path, tmp_path: Path):
    """On a broker whose consumer timeout closes a channel holding an unacked delivery
    (shown by a consumer that holds one), a transcode running longer than it is neither
    ended nor run twice: its message was acked when it started."""
    broker = ShortTimeoutRabbitMQ(tmp_path / "rabbit").start()
    try:
        system = make_system(amqp=broker.url, VIDEODROP_FFMPEG=str(held_x264(tmp_path)),
                             VIDEODROP_TRANSCODE="eager").start()
        system.start_role("derive")
        holder = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = holder.channel()
        channel.queue_declare("holder", arguments={"x-queue-type": "quorum"}, durable=True)
        channel.basic_publish("", "holder", b"held")
        channel.basic_consume("holder", lambda *_: None)  # never acked
        shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "long.mp4")
        record = system.wait_record("long.mp4")
        wait_for((tmp_path / "HELD").exists, timeout=60, what="the transcode to run")

        def holder_closed() -> bool:
            with contextlib.suppress(pika.exceptions.AMQPError):
                holder.process_data_events(time_limit=0.5)
            return not channel.is_open
        wait_for(holder_closed, timeout=150, interval=0.5,
                 what="the broker's consumer timeout to close the holding channel")
        assert system.queue_counts("derive.transcode") == (0, 1)  # still there, nothing back
        (tmp_path / "HOLD").unlink()
        ready = wait_for(lambda: rendition_of(system, record), timeout=120, interval=0.3,
                         what="the long transcode to finish")
        assert (ready["status"], ready["stream"]) == ("ready", "transcode")
        assert rows(system.database_url, "SELECT attempts FROM derivatives"
                    " WHERE kind = 'rendition'") == [(1,)]
        attached = [e for e in system.log_events("derive", "consuming")
                    if e.get("queue", "").endswith(".derive.transcode")]
        assert len(attached) == 1  # never cut off and reconnected
    finally:
        broker.stop()


def test_requeue_all_during_a_transcode_ends_without_a_restart(
        make_system: Any, camera_corpus: Path, tmp_path: Path):
    """on-view: ``videodrop requeue --derivatives all`` while a viewed transcode runs. The
    transcode's outcome is dropped (requested afresh meanwhile); the fresh request must get
    a job once the transcode lets go of the rendition, and end, without a restart of the
    derive role (it used to stay pending: its job met the running transcode's lock)."""
    system = make_system(VIDEODROP_FFMPEG=str(held_x264(tmp_path)),
                         VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "rq.mp4")
    record = system.wait_record("rq.mp4")
    wait_for(lambda: rendition_of(system, record), timeout=60, interval=0.3,
             what="the on-view skip")
    assert system.http.get(record["api_links"]["stream_url"], timeout=5).status_code == 200
    wait_for((tmp_path / "HELD").exists, timeout=60, what="the viewed transcode to run")
    done = videodrop(system, "requeue", "--derivatives", "all", timeout=60)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: rows(system.database_url, "SELECT queued_at IS NOT NULL FROM derivatives"
                          " WHERE kind = 'rendition'") == [(True,)], timeout=30,
             what="the fresh request's job published")
    wait_for(lambda: system.queue_counts("derive")[0] == 0, timeout=30,
             what="the fresh request's job taken (it meets the transcode's lock)")
    (tmp_path / "HOLD").unlink()
    ended = wait_for(lambda: rendition_of(system, record), timeout=60, interval=0.3,
                     what="the requested-again rendition to end")
    assert (ended["status"], ended["error_code"]) == ("skipped", "on_view")
    assert [e.get("status") for e in system.wait_log_events(
        "derive", "derived", count=3, kind="rendition")] == ["skipped", "dropped", "skipped"]
    folder = system.media_root / "derivatives" / record["source_id"]
    assert not list(folder.glob("rendition.*"))  # the dropped transcode's file withdrawn


def transcoding(make_system: Any, folder: Path, name: str, **env: str
                ) -> tuple[System, subprocess.Popen[bytes], dict[str, Any], int]:
    """A system (eager transcodes) with a derive role transcoding a 20 s HEVC file dropped
    as ``name``, its transcode reading the input at its own pace (it runs 20 s) and past
    its first progress report: (system, the derive process, the record, the encoder's
    pid)."""
    source = folder / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                    "-t", "20", "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
                    "-x265-params", "log-level=error", str(source)], check=True)
    fake = fake_x264(folder, f'echo $$ > {folder}/x264.pid; exec {REAL_FFMPEG} -re "$@"',
                     "unused")
    system = make_system(VIDEODROP_FFMPEG=str(fake), VIDEODROP_TRANSCODE="eager",
                         **env).start()
    derive = system.start_role("derive")
    shutil.copy(source, system.inbox / name)
    record = system.wait_record(name)
    wait_for(lambda: rows(system.database_url, "SELECT progress > 0 FROM derivatives"
                          " WHERE kind = 'rendition'") == [(True,)], timeout=90, interval=0.3,
             what="the transcode to report progress")
    return system, derive, record, int((folder / "x264.pid").read_text())


def test_deleting_a_video_mid_transcode_stops_its_ffmpeg(make_system: Any, tmp_path: Path,
                                                         store_env: dict[str, str]):
    """A video deleted while its transcode runs: the transcode's ffmpeg is killed at its
    next progress report (not run to an outcome never recorded), nothing of it is left.
    Once per media store (``store_env``: on s3 no object and no open upload)."""
    system, _, record, pid = transcoding(make_system, tmp_path, "gone.mp4", **store_env)
    gone = system.http.delete(f"{system.base_url}/api/videos/{record['id']}",
                              headers=system.admin, timeout=5)
    assert gone.status_code == 204
    assert wait_until_gone([pid], within=8), "the deleted video's transcode ran on"
    wait_for(lambda: [e.get("status") for e in system.log_events("derive", "derived")
                      if e.get("kind") == "rendition"] == ["dropped"], timeout=10,
             what="the transcode's outcome dropped")
    assert not (system.media_root / "derivatives" / record["source_id"]).exists()
    assert not [k for k in stored_files(system) if record["source_id"] in k]


def test_a_viewer_does_not_wait_behind_the_other_kinds_of_the_video(
        make_system: Any, camera_corpus: Path, tmp_path: Path):
    """on-view: someone asks while the video's derive job is still making its scenes (the
    rendition pending behind them): the transcode starts at once on its own queue."""
    script = tmp_path / "ffmpeg"  # the scenes pass (rgb24 frames to a pipe) waits on HOLD
    script.write_text(f"""#!/bin/sh
case "$*" in *rgb24*rawvideo*) touch {tmp_path}/HELD;
  while [ -e {tmp_path}/HOLD ]; do sleep 0.5; done ;; esac
exec {REAL_FFMPEG} "$@"
""")
    script.chmod(0o755)
    (tmp_path / "HOLD").touch()
    system = make_system(VIDEODROP_FFMPEG=str(script), VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    shutil.copy(camera_corpus / "hevc-hvc1.mp4", system.inbox / "asked.mp4")
    record = system.wait_record("asked.mp4")
    wait_for((tmp_path / "HELD").exists, timeout=60, what="the scenes pass to run")
    assert record["playback"]["status"] == "pending"
    assert system.http.get(record["api_links"]["stream_url"], timeout=5).status_code == 200
    try:
        ready = wait_for(lambda: rendition_of(system, record), timeout=45, interval=0.3,
                         what="the wanted transcode while the scenes are held")
        assert (ready["status"], ready["stream"]) == ("ready", "transcode")
    finally:
        (tmp_path / "HOLD").unlink()


def test_stopping_the_role_mid_transcode_gives_the_job_back(make_system: Any, tmp_path: Path):
    """SIGTERM to the derive role (systemd's stop: KillMode=mixed signals the main process
    only) while a transcode runs: its ffmpeg is killed at its next progress report rather
    than run to the end, the job is given back (not counted as an attempt, nothing
    half-made served), and the next start makes the rendition once."""
    system, derive, record, pid = transcoding(make_system, tmp_path, "stopped.mp4")
    os.kill(derive.pid, signal.SIGTERM)  # the main process only, as systemd does
    assert wait_until_gone([pid], within=8), "the stopping role's transcode ran on"
    assert derive.wait(timeout=60) == 0
    del system.procs["derive"]
    # given back: still to make, not running, the attempt not counted, nothing served
    assert rows(system.database_url, "SELECT status, running_since IS NULL, attempts"
                " FROM derivatives WHERE kind = 'rendition'") == [("pending", True, 0)]
    assert [e.get("kind") for e in system.log_events("derive", "derived")
            if e.get("kind") == "rendition"] == []
    assert len(system.log_events("derive", "transcode interrupted: the role stops")) == 1
    folder = system.media_root / "derivatives" / record["source_id"]
    assert not (folder / "rendition.mp4").exists() and list(folder.glob(".tmp-rendition-*")) == []
    system.start_role("derive")
    ready = wait_for(lambda: rendition_of(system, record), timeout=120, interval=0.3,
                     what="the transcode to finish after the restart")
    assert (ready["status"], ready["stream"]) == ("ready", "transcode")
    assert rows(system.database_url, "SELECT attempts FROM derivatives"
                " WHERE kind = 'rendition'") == [(1,)]
