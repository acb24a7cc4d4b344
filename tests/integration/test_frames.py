"""The frame endpoints against an oracle (testbed/frame_corpus.py): for seeded random
times, and at and just before frames' own times, the frame served is exactly the one the
rule names (its index from ffprobe's frames, its pixels from a full decode), through the
real API over a socket, in constant and variable frame rate, B-frames, an open GOP, an
edit list, a non-zero start time, a rotation, MP4, MKV, WebM and TS.

On both media stores, one system each (``on_stores``: on s3 every frame decoded from the
object through a presigned URL), but for a worker's decode slot (whatever the store)."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from testbed import frame_corpus
from tests.harness import REPO, System, own_system, wait_for
from tests.s3server import on_stores, on_stores_each, store_settings

NAMES = ["cfr.mp4", "vfr.mkv", "open.ts", "vp9.webm", "rotated.mp4", "edit.mp4"]
TIMES_PER_CLIP = 6  # random times per clip, beside the boundaries


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, samples: Path
          ) -> dict[str, frame_corpus.Oracle]:
    """The corpus and its oracles by name; ``_folder``: the corpus's folder, which also
    holds a sample whose pixels are twice as wide as high (640x360, SAR 2:1), 0.4 s of
    1080p noise (``noise.mp4``: megabytes a JPEG frame) and a raw
    H.264 stream (no timestamps)."""
    folder = tmp_path_factory.mktemp("frame-clips")
    paths = frame_corpus.build(folder)
    shutil.copy(samples / "sar_2x1.mp4", folder / "sar_2x1.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",  # packets without pts
                    "testsrc=size=64x64:rate=25:duration=2", "-c:v", "libx264", "-f", "h264",
                    str(folder / "raw.264")], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",  # ~MBs a JPEG frame
                    "color=c=gray:s=1920x1080:r=25:d=0.4,noise=alls=100:allf=t", "-c:v",
                    "libx264", "-preset", "ultrafast", "-crf", "10",
                    str(folder / "noise.mp4")], check=True, timeout=60)
    return {path.name: frame_corpus.oracle(path) for path in paths} | {
        "_folder": folder}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory, database_url, amqp_url,  # noqa: PLR0917
           amqp_prefix, clips) -> Iterator[tuple[System, dict[str, str]]]:
    """The system with every file of the corpus's folder ready, and one file that is not
    a video: name → token. On the media store the test names (``on_stores``: the file
    store, or a prefix of the session's bucket, every frame decoded from the object
    through a presigned URL)."""
    kind = request.param
    with own_system(tmp_path_factory.mktemp(f"frames-{kind}"), database_url, amqp_url,
                    f"{amqp_prefix}_frames_{kind}", "api", "prober", "ingest",
                    **store_settings(request, kind),
                    VIDEODROP_DERIVE="", VIDEODROP_FRAME_CONCURRENCY="1",
                    VIDEODROP_FRAMES_MAX="8",
                    VIDEODROP_INBOX_EXTENSIONS="*") as system:  # raw.264 too
        folder: Path = clips["_folder"]  # type: ignore[assignment]
        names = sorted(path.name for path in folder.iterdir())
        for name in names:
            shutil.copy(folder / name, system.inbox / name)
        (system.inbox / "broken.mp4").write_bytes(b"not a video at all" * 100)
        items = system.wait_done(len(names) + 1, timeout=120)
        tokens = {v["original_filename"]: v["api_links"]["access_token"] for v in items}
        assert all(v["status"] == "ready" for v in items
                   if v["original_filename"] != "broken.mp4"), items
        yield system, tokens


def frame(system: System, token: str, **params: object) -> requests.Response:
    return system.http.get(f"{system.base_url}/api/video/{token}/frame/", params=params,
                           timeout=60)


def picture(resp: requests.Response) -> np.ndarray:
    """RGB pixels of a PNG or JPEG answer."""
    bgr = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, resp.headers
    return bgr[:, :, ::-1]


def times_to_try(oracle: frame_corpus.Oracle, seed: str) -> list[float]:
    """Seeded random times within the clip, a frame's own time, a hair before one, and
    the frames shown just before two keyframes (in an open GOP, frames decoded after the
    keyframe that depend on the GOP before it)."""
    rng = random.Random(seed)
    last = oracle.times[-1]
    chosen = [round(rng.uniform(0, last), 6) for _ in range(TIMES_PER_CLIP)]
    k = rng.randrange(1, len(oracle.times))
    before_keys = [oracle.times[key - 1] + 0.001 for key in oracle.keys[1:3]]
    return [*chosen, oracle.times[k], round(oracle.times[k] - 0.0005, 6), 0.0, *before_keys]


@on_stores_each("served", "name", NAMES, NAMES)
def test_the_frame_served_at_t_is_the_one_shown_then(served, clips, name):
    system, tokens = served
    oracle: frame_corpus.Oracle = clips[name]
    for t in times_to_try(oracle, name):
        want = oracle.expected(t)
        resp = frame(system, tokens[name], t=f"{t:.6f}", format="png")
        assert resp.status_code == 200, (t, resp.text)
        assert resp.headers["Content-Type"] == "image/png"
        assert int(resp.headers["Video-Frame-Index"]) == want, (name, t)
        assert float(resp.headers["Video-Frame-Time"]) == pytest.approx(oracle.times[want],
                                                                        abs=1e-6)
        got = picture(resp)
        assert got.shape == oracle.pixels[want].shape
        nearest, diff = oracle.nearest(got)
        assert nearest == want and diff < 1.0, (name, t, nearest, want, diff)


@on_stores("served")
def test_frames_as_npy_and_as_tar(served, clips):
    system, tokens = served
    oracle: frame_corpus.Oracle = clips["vfr.mkv"]
    times = [2.5, 0.0, 1.017, 1.013]
    want = [oracle.expected(t) for t in times]
    url = f"{system.base_url}/api/video/{tokens['vfr.mkv']}/frames/"
    resp = system.http.get(url, params={"t": ",".join(map(str, times))}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/x-npy"
    array = np.load(io.BytesIO(resp.content))
    assert array.dtype == np.uint8 and array.shape == (4, 240, 320, 3)
    assert json.loads(resp.headers["Video-Frame-Indices"]) == want
    assert json.loads(resp.headers["Video-Frame-Times"]) == pytest.approx(
        [oracle.times[i] for i in want], abs=1e-6)
    for got, index in zip(array, want, strict=True):
        assert oracle.nearest(got)[0] == index
        assert np.abs(got.astype(int) - oracle.pixels[index]).mean() < 1.0

    resp = system.http.get(url, params={"t": "2.5,0", "format": "tar"}, timeout=60)
    assert resp.status_code == 200, resp.text
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as tar:
        assert tar.getnames() == ["000000.jpg", "000000.json", "000001.jpg", "000001.json"]
        for n, t in enumerate((2.5, 0.0)):
            meta = json.loads(tar.extractfile(f"{n:06d}.json").read())  # type: ignore[union-attr]
            assert meta == {"t": t, "pts": round(oracle.times[want[n]], 6),
                            "index": want[n]}
            jpeg = tar.extractfile(f"{n:06d}.jpg").read()  # type: ignore[union-attr]
            pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
            assert oracle.nearest(pixels) == (want[n], pytest.approx(0, abs=3))


@on_stores("served")
def test_width_rotation_and_raw(served, clips):
    system, tokens = served
    turned = frame(system, tokens["rotated.mp4"], t="1")
    assert turned.status_code == 200
    assert picture(turned).shape == (320, 240, 3)
    assert picture(frame(system, tokens["rotated.mp4"], t="1", raw="1")).shape == (240, 320, 3)
    assert picture(frame(system, tokens["cfr.mp4"], t="1", width="160")).shape == (120, 160, 3)
    assert picture(frame(system, tokens["cfr.mp4"], t="1", width="1000")).shape == (240, 320, 3)
    # the sample aspect ratio: shown as the record's resolution says, or as coded
    record = system.http.get(f"{system.base_url}/api/video/{tokens['sar_2x1.mp4']}/",
                             timeout=10).json()
    assert record["file_info"]["resolution"] == "1280x360"
    assert picture(frame(system, tokens["sar_2x1.mp4"], t="1")).shape == (360, 1280, 3)
    assert picture(frame(system, tokens["sar_2x1.mp4"], t="1", raw="1")).shape == (360, 640, 3)
    assert picture(frame(system, tokens["sar_2x1.mp4"], t="1", width="640")).shape == (
        180, 640, 3)
    # so narrow that the height would round to 0 (ffmpeg's "as the input"): 2 rows
    assert picture(frame(system, tokens["cfr.mp4"], t="1", width="2", format="png")
                   ).shape == (2, 2, 3)
    assert picture(frame(system, tokens["sar_2x1.mp4"], t="1", width="3", format="png")
                   ).shape == (2, 3, 3)


def error_code(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) >= {"title", "description", "error_code"}
    return body["error_code"]


@on_stores("served")
def test_refusals(served, clips):
    system, tokens = served
    token = tokens["cfr.mp4"]
    for bad in ("-1", "nan", "inf", "1e3", "abc", "", " 1", "0x10"):
        assert error_code(frame(system, token, t=bad)) == "bad_parameter", bad
    assert error_code(frame(system, token)) == "bad_parameter"
    assert error_code(frame(system, token, t="1", width="1921")) == "bad_parameter"
    assert error_code(frame(system, token, t="1", format="gif")) == "bad_parameter"
    assert error_code(frame(system, token, t="1", colour="red")) == "bad_parameter"
    # requests' own way to give a list, t=1&t=2: refused, never one frame silently
    repeated = system.http.get(f"{system.base_url}/api/video/{token}/frames/",
                               params={"t": ["1", "2"]}, timeout=10)
    assert repeated.status_code == 400 and error_code(repeated) == "bad_parameter"
    assert "comma" in repeated.json()["description"]
    assert error_code(frame(system, token, t="1", width=["8", "16"])) == "bad_parameter"
    past = frame(system, token, t="3.0")  # 75 frames at 25 fps: the last ends at 3.0 s
    assert past.status_code == 416 and error_code(past) == "past_end"
    assert frame(system, token, t="2.999").headers["Video-Frame-Index"] == "74"
    many = system.http.get(f"{system.base_url}/api/video/{token}/frames/",
                           params={"t": ",".join(["1"] * 9)}, timeout=10)
    assert many.status_code == 400 and error_code(many) == "bad_parameter"
    head = system.http.head(f"{system.base_url}/api/video/{token}/frames/",
                            params={"t": "1,2", "format": "tar"}, timeout=30)
    assert head.status_code == 200 and head.headers["Video-Frame-Indices"] == "[25,50]"
    assert frame(system, token, t="1").status_code == 200  # the HEAD gave its slot back
    raw = frame(system, tokens["raw.264"], t="1")
    assert raw.status_code == 422 and error_code(raw) == "no_timestamps"
    broken = frame(system, tokens["broken.mp4"], t="1")
    assert broken.status_code == 409 and error_code(broken) == "not_ready"
    unknown = frame(system, "A" * 43, t="1")
    record_404 = system.http.get(f"{system.base_url}/api/video/{'A' * 43}/", timeout=10)
    assert unknown.status_code == record_404.status_code == 404
    assert unknown.json() == record_404.json()


@on_stores("served", "file")  # the worker's decode slot, whatever the store
def test_a_worker_decodes_at_most_its_share_at_once(served, clips):
    """VIDEODROP_FRAME_CONCURRENCY=1: of two requests sent together (each ~1 s of
    decoding: 8 frames of 1080p noise asked last first, each decoded from the one
    keyframe), one is refused at once with 503 busy and Retry-After while the other
    decodes; lookups still answer meanwhile; both get their frames by trying again."""
    system, tokens = served
    url = f"{system.base_url}/api/video/{tokens['noise.mp4']}/frames/"
    together = threading.Barrier(2)
    refusals: list[requests.Response] = []
    statuses: list[int] = []

    def decode_many() -> None:  # a client that tries again while the slot is taken
        together.wait(timeout=30)

        def answered() -> requests.Response | None:
            resp = requests.get(url, params={"t": "0.36,0.32,0.28,0.24,0.2,0.16,0.12,0.08"},
                                timeout=120)
            if resp.status_code == 503:
                refusals.append(resp)
                return None
            return resp
        statuses.append(wait_for(answered, timeout=60, interval=0.01,
                                 what="the request to get the slot").status_code)

    clients = [threading.Thread(target=decode_many) for _ in range(2)]
    for client in clients:
        client.start()
    record = requests.get(f"{system.base_url}/api/video/{tokens['cfr.mp4']}/", timeout=5)
    for client in clients:
        client.join(timeout=120)
    assert record.status_code == 200
    assert statuses == [200, 200]
    assert refusals, "two decodes at once in a worker whose limit is one"
    assert {error_code(r) for r in refusals} == {"busy"}
    assert {r.headers["Retry-After"] for r in refusals} == {"1"}


@on_stores("served")
def test_a_tar_read_slowly_holds_no_decode_slot(served):
    """VIDEODROP_FRAME_CONCURRENCY=1: a client that asks a tar of 8 frames of megabytes
    each and stops reading after its first bytes holds a thread (its socket), never the
    worker's decode slot: a frame asked meanwhile is decoded."""
    system, tokens = served
    host, port = system.base_url.removeprefix("http://").rsplit(":", 1)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    try:
        stalled.connect((host, int(port)))
        times = ",".join(f"{n * 0.04:.2f}" for n in range(8))
        stalled.sendall(f"GET /api/video/{tokens['noise.mp4']}/frames/?t={times}&format=tar"
                        " HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        assert stalled.recv(12) == b"HTTP/1.1 200"

        def decoded() -> requests.Response | None:
            resp = frame(system, tokens["cfr.mp4"], t="1")
            return resp if resp.status_code == 200 else None
        wait_for(decoded, timeout=30, interval=0.2, what="a frame while a tar is read slowly")
    finally:
        stalled.close()


@on_stores("served")
def test_the_example_of_docs_models_md_runs(served):
    """The page's Python block, as it is, against the real API."""
    system, tokens = served
    page = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    [code] = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "frame_url" in b]
    record = system.http.get(f"{system.base_url}/api/video/{tokens['cfr.mp4']}/",
                             timeout=10).json()
    exec(compile(code, "docs/models.md", "exec"), {"record": record})
