"""The packet index (the ``packets`` derivative, ``/packets/``, ``/range/``) against
independent counts: ffprobe's own ``-show_packets`` JSON (parsed here, not by the code
under test) and its packet data, the oracle corpus's frames (testbed/frame_corpus.py) for
what the byte ranges decode to, and the frame endpoints' answers before the index was
made (ffprobe's listing per request) and after (the stored index).

One system per media store (``module_store_env``: the file store, then a prefix of the
session's bucket on a real S3 server, its /download/ a 307 to a presigned URL that the
Range requests here follow; the frames and the index made from the object through
presigned URLs): the API, the prober and the ingest with VIDEODROP_DERIVE=packets and no
derive role first (every index pending), then the derive role."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from testbed import frame_corpus
from tests.harness import REPO, System, own_system, wait_for
from tests.integration.test_api_uploads import media_of

NAMES = ["cfr.mp4", "vfr.mkv", "open.ts", "vp9.webm", "rotated.mp4", "edit.mp4"]
TIMES = 6  # seeded random times per clip for the frames compared before and after


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("packet-clips")
    paths = {p.name: p for p in frame_corpus.build(folder)}
    return {name: (paths[name], frame_corpus.oracle(paths[name])) for name in NAMES}


def times_of(name: str, oracle: frame_corpus.Oracle) -> list[float]:
    rng = random.Random(name)
    return [round(rng.uniform(0, oracle.times[-1]), 6) for _ in range(TIMES)] + [0.0]


def frame(system: System, token: str, t: float) -> tuple[int, float, np.ndarray]:
    resp = system.http.get(f"{system.base_url}/api/video/{token}/frame/",
                           params={"t": f"{t:.6f}", "format": "png"}, timeout=60)
    assert resp.status_code == 200, (t, resp.text)
    pixels = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    return (int(resp.headers["Video-Frame-Index"]), float(resp.headers["Video-Frame-Time"]),
            pixels)


def get(system: System, token: str, route: str, **params: object) -> requests.Response:
    return system.http.get(f"{system.base_url}/api/video/{token}/{route}", params=params,
                           timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory, database_url, amqp_url, amqp_prefix, clips,  # noqa: PLR0917 - fixtures
           module_store_env) -> Iterator[dict[str, Any]]:
    """``system``, ``tokens`` (name → token), ``broken`` (the token of a file that is no
    video), ``pending`` (answers of /packets/ and /range/ while the index was pending)
    and ``before`` (name → the frames served then), with every index made since."""
    kind = "s3" if module_store_env else "file"
    with own_system(tmp_path_factory.mktemp(f"packets-{kind}"), database_url, amqp_url,
                    f"{amqp_prefix}_packets_{kind}", "api", "prober", "ingest",
                    VIDEODROP_DERIVE="packets", **module_store_env) as system:
        for name in NAMES:
            (system.inbox / name).write_bytes(clips[name][0].read_bytes())
        (system.inbox / "broken.mp4").write_bytes(b"not a video at all" * 100)
        items = system.wait_done(len(NAMES) + 1, timeout=120)
        tokens = {v["original_filename"]: v["api_links"]["access_token"] for v in items}
        token = tokens["cfr.mp4"]
        pending = {"packets": get(system, token, "packets/"),
                   "range": get(system, token, "range/", start="1", end="2")}
        before = {name: [frame(system, tokens[name], t)
                         for t in times_of(name, clips[name][1])] for name in NAMES}
        system.start_role("derive")

        def made() -> list[dict[str, Any]] | None:
            found = [system.http.get(f"{system.base_url}/api/video/{tokens[n]}/",
                                     timeout=10).json() for n in NAMES]
            states = [v["derivatives"].get("packets", {}).get("status") for v in found]
            return found if all(s == "ready" for s in states) else None

        wait_for(made, timeout=120, interval=0.3, what="every packet index")
        yield {"system": system, "tokens": tokens, "broken": tokens["broken.mp4"],
               "pending": pending, "before": before}


def show_packets(path: Path) -> tuple[list[dict[str, Any]], Fraction]:
    """ffprobe's own listing of the first video stream's packets (JSON) and the start."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets",
         "-show_entries", "format=start_time", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60).stdout)
    return out["packets"], Fraction(out["format"].get("start_time", "0"))


def seconds(packet: dict[str, Any], key: str, start: Fraction) -> float | None:
    text = packet.get(f"{key}_time")
    return None if text in (None, "N/A") else float(Fraction(text) - start)


@pytest.mark.parametrize("name", NAMES)
def test_the_index_is_ffprobes_listing(served, clips, name):
    system, token = served["system"], served["tokens"][name]
    listed, start = show_packets(clips[name][0])
    resp = get(system, token, "packets/")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    cols = body["columns"]
    assert body["count"] == len(listed) == len(cols["pts"])
    assert body["start"] == pytest.approx(float(start))
    assert body["keyframes"] == sum("K" in p["flags"] for p in listed)
    for n, packet in enumerate(listed):
        for key in ("pts", "dts"):
            want = seconds(packet, key, start)
            got = cols[key][n]
            assert (got is None) == (want is None), (name, n, key)
            if want is not None:
                assert got == pytest.approx(want, abs=1e-6), (name, n, key)
        length = packet.get("duration_time")
        if length not in (None, "N/A"):
            assert cols["duration"][n] == pytest.approx(float(length), abs=1e-6)
        assert cols["pos"][n] == int(packet["pos"])
        assert cols["size"][n] == int(packet["size"])
        assert cols["key"][n] == int("K" in packet["flags"])
        assert cols["discard"][n] == int("D" in packet["flags"])
    # the same as one structured array
    npy = get(system, token, "packets/", format="npy")
    assert npy.headers["Content-Type"] == "application/x-npy"
    array = np.load(io.BytesIO(npy.content))
    assert len(array) == len(listed)
    assert array["pos"].tolist() == cols["pos"] and array["size"].tolist() == cols["size"]
    assert array["key"].tolist() == [bool(k) for k in cols["key"]]
    assert array["pts"] == pytest.approx(np.array(cols["pts"], dtype=float), abs=1e-6,
                                         nan_ok=True)


def packet_data(path: Path) -> list[bytes]:
    """Each video packet's bytes as the demuxer gives them (ffprobe's hex dump)."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets", "-show_data",
         "-of", "json", str(path)], check=True, capture_output=True, timeout=60).stdout)
    found = []
    for packet in out["packets"]:
        lines = [line for line in packet["data"].splitlines() if line]
        # "00000010: b796 2cd8 … 2d20  ascii": eight groups of hex digits, then the text
        found.append(bytes.fromhex("".join(line[10:49].replace(" ", "") for line in lines)))
    return found


@pytest.mark.parametrize("name", ["cfr.mp4", "vfr.mkv", "vp9.webm"])
def test_a_packets_bytes_follow_its_offset(served, clips, name):
    """Each packet's data lies in the file from its ``pos`` on, before the next packet's
    (exactly at ``pos`` in MP4; after the block's header in Matroska)."""
    path = clips[name][0]
    raw = path.read_bytes()
    cols = get(served["system"], served["tokens"][name], "packets/").json()["columns"]
    data = packet_data(path)
    for n, packet in enumerate(data):
        pos = cols["pos"][n]
        following = [p for p in cols["pos"][n + 1:] if p is not None and p > pos]
        stop = min(following) if following else len(raw)
        assert len(packet) == cols["size"][n]
        assert raw.find(packet, pos, stop) >= 0, (name, n)
        if name.endswith(".mp4"):
            assert hashlib.sha256(raw[pos:pos + len(packet)]).digest() == hashlib.sha256(
                packet).digest()


def fetch(system: System, token: str, pair: list[int]) -> bytes:
    """Bytes ``pair`` (inclusive) of the video through /download/ with a Range header."""
    resp = system.http.get(f"{system.base_url}/api/video/{token}/download/",
                           headers={"Range": f"bytes={pair[0]}-{pair[1]}"}, timeout=30)
    assert resp.status_code == 206, resp.status_code
    assert len(resp.content) == pair[1] - pair[0] + 1
    return resp.content


def decoded(path: Path, oracle: frame_corpus.Oracle) -> set[int]:
    """Indices of the oracle's frames that a decode of ``path`` gives exactly."""
    raw = subprocess.run(["ffmpeg", "-v", "quiet", "-err_detect", "ignore_err", "-i", str(path),
                          "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "pipe:1"], capture_output=True,
                         timeout=60).stdout
    h, w = oracle.pixels.shape[1:3]
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return {n for n, diff in map(oracle.nearest, frames) if diff < 1.0}


@pytest.mark.parametrize("name", ["cfr.mp4", "edit.mp4", "open.ts"])
def test_the_range_decodes_to_the_frames_asked(served, clips, name, tmp_path):
    """The bytes of ``range`` (with ``head`` and ``tail``: MP4 at their offsets, the rest of
    the file zeros; MPEG-TS, ``head`` then ``range``), fetched with Range requests, decode
    to every frame shown in [start, end), pixel for pixel."""
    system, token = served["system"], served["tokens"][name]
    oracle: frame_corpus.Oracle = clips[name][1]
    rng = random.Random(name)
    starts = [round(rng.uniform(0, oracle.times[-1]), 3) for _ in range(3)]
    spans = [(0.0, 0.3), (1.0, 1.5), (2.1, 2.9), (1.7, 1.75),
             *((s, round(s + 0.2, 3)) for s in starts)]
    for start, end in spans:
        resp = get(system, token, "range/", start=start, end=end)
        assert resp.status_code == 200, resp.text
        span = resp.json()
        want = [i for i in range(len(oracle.times))
                if i >= oracle.expected(start) and (oracle.times[i] < end
                                                    or i == oracle.expected(start))]
        assert span["frame"]["index"] == want[0]
        assert span["range"] == f"bytes={span['bytes'][0]}-{span['bytes'][1]}"
        body = fetch(system, token, span["bytes"])
        head = fetch(system, token, span["head"]) if span["head"] else b""
        out = tmp_path / f"{start}-{name}"
        if name.endswith(".ts"):
            out.write_bytes(head + body)
        else:
            sparse = bytearray(span["size"])
            for pair, part in ((span["head"], head), (span["bytes"], body),
                               (span["tail"], fetch(system, token, span["tail"])
                                if span["tail"] else b"")):
                if pair:
                    sparse[pair[0]:pair[1] + 1] = part
            out.write_bytes(bytes(sparse))
        got = decoded(out, oracle)
        assert set(want) <= got, (name, start, end, sorted(set(want) - got))


@pytest.mark.parametrize("name", ["vfr.mkv", "vp9.webm"])
def test_the_range_holds_every_packet_needed(served, clips, name):
    """Matroska: the range starts at the keyframe decoding starts from (shown at or
    before the frame at ``start``) and holds the data of every packet shown in
    [start, end) (ffprobe's packet data, found in the range)."""
    system, token = served["system"], served["tokens"][name]
    path, oracle = clips[name]
    raw = path.read_bytes()
    listed, start_time = show_packets(path)
    data = packet_data(path)
    for start, end in ((0.5, 1.2), (1.9, 2.5), (0.0, 0.1)):
        span = get(system, token, "range/", start=start, end=end).json()
        first, last = span["bytes"]
        inside = raw[first:last + 1]
        shown_at = oracle.times[oracle.expected(start)]
        key = listed[span["keyframe"]["packet"]]
        assert "K" in key["flags"] and seconds(key, "pts", start_time) <= shown_at + 1e-6
        for n, packet in enumerate(listed):
            t = seconds(packet, "pts", start_time)
            if t is not None and shown_at - 1e-6 <= t < end:
                assert data[n] in inside, (name, start, end, n)


def test_frames_are_the_same_with_the_index(served, clips):
    """Each frame asked before the index was made (ffprobe's listing) and after (the
    stored index): the same index, time and pixels, and the oracle's."""
    system, tokens = served["system"], served["tokens"]
    for name in NAMES:
        oracle: frame_corpus.Oracle = clips[name][1]
        for t, old in zip(times_of(name, oracle), served["before"][name], strict=True):
            new = frame(system, tokens[name], t)
            assert new[:2] == old[:2] and oracle.expected(t) == new[0], (name, t)
            assert np.array_equal(new[2], old[2]), (name, t)


def error_code(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) >= {"title", "description", "error_code"}
    return body["error_code"]


def test_refusals(served):
    system, tokens = served["system"], served["tokens"]
    for resp in served["pending"].values():  # before the derive role ran
        assert resp.status_code == 409 and error_code(resp) == "index_pending"
        assert resp.headers["Retry-After"] == "10"
    token = tokens["cfr.mp4"]
    broken = get(system, served["broken"], "packets/")
    assert broken.status_code == 409 and error_code(broken) == "not_ready"
    for params in ({"start": "1"}, {"start": "2", "end": "1"}, {"start": "-1", "end": "2"},
                   {"start": "1", "end": "2", "t": "3"}, {"start": ["1", "0"], "end": "2"}):
        assert error_code(get(system, token, "range/", **params)) == "bad_parameter", params
    assert error_code(get(system, token, "packets/", format="csv")) == "bad_parameter"
    past = get(system, token, "range/", start="3", end="4")
    assert past.status_code == 416 and error_code(past) == "past_end"
    unknown = get(system, "A" * 43, "packets/")
    record_404 = system.http.get(f"{system.base_url}/api/video/{'A' * 43}/", timeout=10)
    assert unknown.status_code == record_404.status_code == 404
    assert unknown.json() == record_404.json()


def test_cached_answers_and_links(served):
    system, tokens = served["system"], served["tokens"]
    token = tokens["vfr.mkv"]
    first = get(system, token, "packets/")
    assert first.headers["Cache-Control"] == "private, max-age=86400"
    etag = first.headers["ETag"]
    again = system.http.get(f"{system.base_url}/api/video/{token}/packets/",
                            headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and not again.content
    other = get(system, token, "packets/", format="npy")
    assert other.headers["ETag"] != etag
    record = system.http.get(f"{system.base_url}/api/video/{token}/", timeout=10).json()
    links = record["api_links"]
    base = f"{system.base_url}/api/video/{token}/"
    assert links["packets_url"] == base + "packets/"
    assert links["clip_url"] == base + "clip/?start={start}&end={end}"
    assert system.http.get(links["packets_url"], timeout=10).json() == first.json()


def test_a_revoked_token_gets_404(served):
    """Last: it revokes the token of edit.mp4."""
    system, token = served["system"], served["tokens"]["edit.mp4"]
    assert get(system, token, "packets/").status_code == 200
    record = system.http.get(f"{system.base_url}/api/video/{token}/", timeout=10).json()
    revoked = requests.delete(f"{system.base_url}/api/videos/{record['id']}/token",
                              headers=system.admin, timeout=10)
    assert revoked.status_code == 200
    for route, params in (("packets/", {}), ("range/", {"start": "1", "end": "2"})):
        resp = get(system, token, route, **params)
        assert resp.status_code == 404 and "error_code" not in resp.json()


def test_the_example_of_docs_models_md_runs(served):
    """The page's packet index block, as it is, against the real API."""
    system, tokens = served["system"], served["tokens"]
    page = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    [code] = [b for b in blocks if "packets_url" in b]
    record = system.http.get(f"{system.base_url}/api/video/{tokens['cfr.mp4']}/",
                             timeout=10).json()
    exec(compile(code, "docs/models.md", "exec"), {"record": record})


def test_deleting_a_video_removes_its_index(served):
    """Last: it deletes vp9.webm."""
    system, token = served["system"], served["tokens"]["vp9.webm"]
    record = system.http.get(f"{system.base_url}/api/video/{token}/", timeout=10).json()
    index, media = f"derivatives/{record['source_id']}/packets.npy", media_of(system)
    assert media.exists(index)
    gone = requests.delete(f"{system.base_url}/api/videos/{record['id']}",
                           headers=system.admin, timeout=10)
    assert gone.status_code == 204
    assert not media.exists(index)
    assert get(system, token, "packets/").status_code == 404
