"""The derive role on either media store (file:// and a real S3 server, weed mini): a
ready video gets its poster, storyboard, scenes, packet index and (for an MP4 whose index
is at its end) a rendition, as objects under ``derivatives/<source_id>/`` of the store,
served over HTTP by the API, removed with the video; on s3 the children read the original
through a presigned URL (nothing of it, nor of the derivatives, is written under
VIDEODROP_MEDIA_ROOT); a derive role SIGKILLed mid-job, restarted, finishes the job and
leaves no unfinished upload nor scratch folder behind.

The ready rows are made as the prober makes them (the original put into the store, the
probe's metadata recorded through the catalog), without the prober role: these tests are
about the derive role and the API.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from derive.output import StoreOutput
from derive.scratch import ScratchRoot
from derive.source import redacted
from testbed.s3 import S3Server
from tests.harness import REPO, System, rows, videodrop, wait_for
from tests.integration.test_derive_pipeline import slow_ffmpeg
from tests.integration.test_renditions import packets as packet_list
from videodrop.catalog import Catalog, ProbeOutcome
from videodrop.derivatives import KINDS
from videodrop.settings import Settings
from videodrop.storage import MediaStore, from_settings

REAL_FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
STORES = ["file", "s3"]

#: every kind made of an H.264 video: its HEVC rendition is not needed (not HEVC)
H264_MADE = {**dict.fromkeys(KINDS, "ready"), "hevc": "skipped"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 320x240 H.264 + AAC with its index (moov) at the end: a browser would wait
    for the whole file, so its rendition is a remux (faststart)."""
    path = tmp_path_factory.mktemp("clip") / "late-moov.mp4"
    subprocess.run([REAL_FFMPEG, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=duration=4:size=320x240:rate=25", "-f", "lavfi", "-i",
                    "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-shortest",
                    str(path)], check=True, timeout=60)
    return path


def store_env(kind: str, s3_server: S3Server | None, bucket: str | None) -> dict[str, str]:
    """The environment of a system on ``kind`` (``file``: VIDEODROP_MEDIA_ROOT, as ``make
    run``; ``s3``: a prefix of its own in the session's bucket)."""
    if kind == "file":
        return {}
    assert s3_server is not None and bucket is not None
    return {**s3_server.env(),
            "VIDEODROP_STORAGE_URL": f"s3://{bucket}/derive-{secrets.token_hex(4)}/"}


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment of one store (the s3 server only started for ``s3``); the test's
    own process gets the credentials too (it puts the original)."""
    if request.param == "s3":
        env = store_env("s3", request.getfixturevalue("s3_server"),
                        request.getfixturevalue("s3_bucket"))
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            yield env
    else:
        yield store_env("file", None, None)


def store_of(system: System) -> MediaStore:
    return from_settings(Settings.from_env(system.env))


def probed(path: Path) -> dict[str, Any]:
    """The metadata the prober records of ``path`` (``videodrop probe``)."""
    done = subprocess.run([sys.executable, "-m", "videodrop", "probe", str(path)],
                          capture_output=True, text=True, timeout=60, check=True, cwd=REPO,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("VIDEODROP_")})
    found = json.loads(done.stdout)
    for key in ("status", "processing_error", "error_code"):
        found.pop(key, None)
    return found


def add_ready(system: System, path: Path, filename: str) -> dict[str, Any]:
    """A ready video of ``path`` as the prober leaves one: its original put into the
    system's store, its metadata recorded and its derivatives requested in the same
    commit. Its record, through the API."""
    store = store_of(system)
    meta = probed(path)
    catalog = Catalog.connect(system.database_url)
    try:
        video = catalog.create_upload(filename=filename)
        stored = store.put_file(video.stored_path, path)
        catalog.upload_received(video.id, stored.size)
        catalog.start_processing(video.id)
        outcome = ProbeOutcome(status="ready", error=None, size=stored.size,
                               sha256=stored.sha256,
                               metadata={**meta, "size": stored.size, "sha256": stored.sha256},
                               raw=None)
        assert catalog.finish_processing(video.id, outcome, derive=KINDS) is not None
    finally:
        catalog.close()
    got = system.http.get(f"{system.base_url}/api/videos/{video.id}", headers=system.admin,
                          timeout=10)
    assert got.status_code == 200, got.text
    return dict(got.json())


def states(system: System, record: dict[str, Any]) -> dict[str, str]:
    item = system.http.get(record["api_links"]["api_endpoint"], timeout=5).json()
    return {k: v["status"] for k, v in item["derivatives"].items()}


def settled(system: System, record: dict[str, Any]) -> dict[str, str] | None:
    found = states(system, record)
    return found if set(found) == set(KINDS) and "pending" not in found.values() else None


def local_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_every_derivative_is_made_in_the_store_served_and_removed(
        make_system: Any, store_kind: dict[str, str], clip: Path, tmp_path: Path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    system: System = make_system(TMPDIR=str(scratch), **store_kind).start("api")
    system.start_role("derive")
    record = add_ready(system, clip, "late.mp4")
    sid, links = record["source_id"], record["api_links"]
    found = wait_for(lambda: settled(system, record), timeout=180, interval=0.3,
                     what="every derivative to settle")
    assert found == H264_MADE, found
    store = store_of(system)
    objects = {info.key: info for info in store.list_objects(f"derivatives/{sid}/")}
    names = sorted(key.rsplit("/", 1)[1] for key in objects)
    assert names == ["packets.npy", "poster.jpg", "rendition.mp4", "scenes-00.jpg",
                     "storyboard-00.jpg"], names
    if "VIDEODROP_STORAGE_URL" in store_kind:  # nothing of it under VIDEODROP_MEDIA_ROOT
        assert local_files(system.media_root) == []
        # the scratch folder: each job's files removed after it, the live process's lock
        mine = scratch / f"videodrop-derive-{os.getuid()}"
        assert {Path(f).name for f in local_files(mine)} == {".lock"}

    def body(key: str) -> bytes:
        reader = store.open(key)
        try:
            return reader.read(1 << 30)
        finally:
            reader.close()

    http = system.http
    poster = http.get(links["poster_url"], timeout=10)
    assert poster.status_code == 200 and poster.content == body(f"derivatives/{sid}/poster.jpg")
    board = http.get(links["storyboard_url"], timeout=10).json()
    sheet = http.get(board["tiles"][0]["url"], timeout=10)
    assert sheet.status_code == 200
    assert sheet.content == body(f"derivatives/{sid}/storyboard-00.jpg")
    scenes = http.get(links["scenes_url"], timeout=10).json()
    thumb = http.get(scenes["scenes"][0]["thumbnail"]["url"], timeout=10)
    assert thumb.status_code == 200 and thumb.content == body(f"derivatives/{sid}/scenes-00.jpg")
    packets = http.get(links["packets_url"], timeout=10)
    assert packets.status_code == 200, packets.text
    assert packets.json()["count"] == 100  # 4 s at 25 fps
    npy = http.get(links["packets_url"], params={"format": "npy"}, timeout=10)
    assert npy.status_code == 200 and npy.content.startswith(b"\x93NUMPY")
    span = http.get(links["packets_url"].replace("/packets/", "/range/"),
                    params={"start": "1", "end": "2"}, timeout=10)
    assert span.status_code == 200, span.text
    assert span.json()["size"] == clip.stat().st_size
    stream = http.get(links["stream_url"], timeout=10)  # the rendition, faststart
    rendition = body(f"derivatives/{sid}/rendition.mp4")
    assert stream.status_code == 200 and stream.content == rendition
    assert rendition.index(b"moov") < rendition.index(b"mdat")
    # the file store's original is a local file: its index moved first (derive/faststart.py);
    # on s3 ffmpeg reads the presigned URL (no local copy of the original is made)
    catalog = Catalog.connect(system.database_url)
    try:
        made = catalog.derivative(record["id"], "rendition")
    finally:
        catalog.close()
    assert made is not None
    on_s3 = "VIDEODROP_STORAGE_URL" in store_kind
    assert made.data["made_by"] == ("ffmpeg" if on_s3 else "moov_relocation"), made.data
    copy = tmp_path / "rendition.mp4"
    copy.write_bytes(rendition)
    if on_s3:  # ffmpeg's remux: the same video packets
        assert [p for p in packet_list(copy) if p.startswith("packet,0,")] == [
            p for p in packet_list(clip) if p.startswith("packet,0,")]
    else:  # the same packets, byte for byte, in the same file layout
        assert packet_list(copy) == packet_list(clip)
    download = http.get(links["download_url"], timeout=10)
    assert download.status_code == 200 and download.content == clip.read_bytes()

    gone = http.delete(f"{system.base_url}/api/videos/{record['id']}", headers=system.admin,
                       timeout=10)
    assert gone.status_code == 204
    assert list(store.list_objects(f"derivatives/{sid}/")) == []
    assert list(store.list_objects(f"videos/{sid}")) == []


def pids_running(argument: str) -> list[int]:
    """The processes whose command line holds ``argument`` (ours: a unique sleep)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if argument.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_derive_role_killed_mid_job_finishes_it_and_leaves_nothing_half_made(
        make_system: Any, store_kind: dict[str, str], clip: Path, tmp_path: Path):
    fake, command = slow_ffmpeg(tmp_path)
    sleep = command.split()[1]  # its unique argument
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    system: System = make_system(VIDEODROP_FFMPEG=str(fake), TMPDIR=str(scratch),
                                 **store_kind).start("api")
    system.start_role("derive")
    record = add_ready(system, clip, "killed.mp4")
    sid = record["source_id"]
    wait_for(lambda: pids_running(sleep), timeout=60, what="a job's ffmpeg to run")
    started = rows(system.database_url, "SELECT kind FROM derivatives WHERE attempts = 1"
                   " AND status = 'pending'")
    assert started, "a kind is being made"
    system.kill("derive")  # SIGKILL mid-job: its message goes back to the queue
    for pid in pids_running(sleep):  # its child dies with it (pdeathsig); ours if not
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pids_running(sleep), timeout=30, what="the slow ffmpeg to be gone")
    store = store_of(system)
    dead_uploads = []
    if "VIDEODROP_STORAGE_URL" in store_kind:
        # what a put killed half-way leaves on s3: a multipart upload with a part sent
        dead = [p for p in (scratch / f"videodrop-derive-{os.getuid()}").iterdir()]
        assert len(dead) == 1  # the killed process's scratch folder, left behind
        dead_uploads = [half_upload(store, f"derivatives/{sid}/scenes-00.jpg"),
                        half_upload(store, f"derivatives/{sid}/rendition.mp4")]
        assert uploads(store, f"derivatives/{sid}/") == sorted(dead_uploads)
    (tmp_path / "SLOW").unlink()
    system.start_role("derive")
    found = wait_for(lambda: settled(system, record), timeout=180, interval=0.3,
                     what="the redelivered job to finish")
    assert found == H264_MADE, found
    assert rows(system.database_url, "SELECT max(attempts) FROM derivatives"
                " WHERE kind = %s", started[0][0]) == [(2,)]
    names = sorted(i.key.rsplit("/", 1)[1] for i in store.list_objects(f"derivatives/{sid}/"))
    assert names == ["packets.npy", "poster.jpg", "rendition.mp4", "scenes-00.jpg",
                     "storyboard-00.jpg"]
    for info in store.list_objects(f"derivatives/{sid}/"):
        assert info.size > 0, info
    if "VIDEODROP_STORAGE_URL" in store_kind:
        assert uploads(store, f"derivatives/{sid}/") == []  # aborted by the next job
        assert dead_uploads
        # the dead process's scratch folder went at the next start: only the live one's
        left = list((scratch / f"videodrop-derive-{os.getuid()}").iterdir())
        assert len(left) == 1 and left[0].name != dead[0].name
        assert local_files(left[0]) == [".lock"]
        assert "scratch folders of dead processes removed" in system.log_text("derive")
    else:
        assert list((system.media_root / "derivatives").rglob(".tmp-*")) == []


def s3_client(store: MediaStore) -> Any:
    return store._client  # type: ignore[attr-defined]  # the test's own look at the bucket


def half_upload(store: MediaStore, key: str) -> str:
    """Start a multipart upload of ``key`` and send one part, as a put SIGKILLed half-way
    leaves it (videodrop/storage/s3store.py); the key."""
    client, bucket, full = s3_client(store), store.bucket, store.prefix + key  # type: ignore[attr-defined]
    upload = client.create_multipart_upload(Bucket=bucket, Key=full)["UploadId"]
    client.upload_part(Bucket=bucket, Key=full, UploadId=upload, PartNumber=1,
                       Body=os.urandom(5 << 20))
    return key


def uploads(store: MediaStore, prefix: str) -> list[str]:
    """The keys of the unfinished multipart uploads under ``prefix``."""
    answer = s3_client(store).list_multipart_uploads(
        Bucket=store.bucket, Prefix=store.prefix + prefix)  # type: ignore[attr-defined]
    return sorted(u["Key"][len(store.prefix):] for u in answer.get("Uploads", ()))  # type: ignore[attr-defined]


def test_a_publish_replaces_and_withdraws_objects_of_one_kind(
        s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A remade kind: the new objects are put first, then the ones it no longer has go;
    another kind's objects stay; a put that is not the file's bytes leaves nothing."""
    env = store_env("s3", s3_server, s3_bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = from_settings(Settings.from_env(env))
    out = StoreOutput(store, ScratchRoot(tmp_path / "scratch"))
    with out.scratch("abc", "storyboard") as temp:
        made = {}
        for i in range(3):
            (temp / f"s{i}.jpg").write_bytes(b"first %d" % i)
            made[temp / f"s{i}.jpg"] = f"storyboard-{i:02d}.jpg"
        assert out.publish("abc", made, "storyboard-") == [
            "derivatives/abc/storyboard-00.jpg", "derivatives/abc/storyboard-01.jpg",
            "derivatives/abc/storyboard-02.jpg"]
    assert not temp.exists()
    with out.scratch("abc", "poster") as temp:
        (temp / "p.jpg").write_bytes(b"poster")
        out.publish("abc", {temp / "p.jpg": "poster.jpg"}, "poster")
    with out.scratch("abc", "storyboard") as temp:
        (temp / "a.jpg").write_bytes(b"second")
        out.publish("abc", {temp / "a.jpg": "storyboard-00.jpg"}, "storyboard-")
    keys = [i.key for i in store.list_objects("derivatives/abc/")]
    assert keys == ["derivatives/abc/poster.jpg", "derivatives/abc/storyboard-00.jpg"]
    assert store.open("derivatives/abc/storyboard-00.jpg").read() == b"second"
    out.withdraw("abc", "storyboard-")
    assert [i.key for i in store.list_objects("derivatives/abc/")] == [
        "derivatives/abc/poster.jpg"]
    out.remove_all("abc")
    assert list(store.list_objects("derivatives/abc/")) == []


def test_scratch_folders_of_dead_processes_go_and_live_ones_stay(tmp_path: Path):
    parent = tmp_path / "scratch"
    live = ScratchRoot(parent)
    dead = subprocess.run(  # a process that makes its folder and dies without a clean stop
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from derive.scratch import ScratchRoot;"
         " r = ScratchRoot(Path(sys.argv[1])); (r.path / 'half.jpg').write_bytes(b'x');"
         " print(r.path.name)", str(parent)],
        capture_output=True, text=True, check=True, timeout=60, cwd=REPO)
    name = dead.stdout.strip()
    assert (parent / name / "half.jpg").exists()
    with live.job("poster-abc-") as job:
        (job / "poster.jpg").write_bytes(b"x")
        again = ScratchRoot(parent)  # the next start, while ``live`` works
        assert again.removed == [name]
        assert (job / "poster.jpg").exists()
    assert not job.exists()
    assert sorted(p.name for p in parent.iterdir()) == sorted([live.path.name,
                                                              again.path.name])
    live.close()
    assert not live.path.exists()


def test_a_presigned_url_never_reaches_an_error_sentence():
    said = ("[http @ 0x55] HTTP error 403 Forbidden\n"
            "http://127.0.0.1:8333/b/derive/videos/x/a.mp4?X-Amz-Signature=abc&X-Amz-Credential"
            "=K%2F: Server returned 403 Forbidden (access denied)\n"
            "Error opening input 'https://s3.example.com/b/k?X-Amz-Signature=d'.")
    clean = redacted(said)
    assert "X-Amz" not in clean and "127.0.0.1" not in clean
    assert "<stored video>: Server returned 403 Forbidden" in clean
    assert "Error opening input '<stored video>'." in clean


def test_stream_links_are_ignored_on_s3_with_a_warning(s3_server: S3Server, s3_bucket: str,
                                                      tmp_path: Path, make_system: Any):
    system: System = make_system(VIDEODROP_STREAM_LINKS=str(tmp_path / "links"),
                                 **store_env("s3", s3_server, s3_bucket))
    done = videodrop(system, "links", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "VIDEODROP_STREAM_LINKS is ignored" in done.stdout + done.stderr
    assert not (tmp_path / "links").exists()
