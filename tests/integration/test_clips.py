"""The clip endpoint against the frame oracle (testbed/frame_corpus.py), through the real
API over a socket: ``exact`` holds exactly the frames whose time is in ``[start, end)``
and ``copy`` exactly the frames of the bounds it states, each checked by decoding the
clip with ffmpeg and naming every frame by its pixels (constant and variable frame rate,
B-frames, an open GOP, an edit list, a non-zero start, a rotation; MP4, MKV, WebM, TS);
the streams and durations of the MP4 by ffprobe; the limits and the refusals.

One system per media store (``on_stores``: on s3 every clip cut from the object through
a presigned URL). On s3 a representative part, the whole module twice costing minutes:
``exact`` of open.ts (open GOPs), stitched edit.mp4 (an edit list) and av.mp4 (audio, a
second input of the object), ``copy`` of cfr.mp4, the streams and durations, a video
after its audio, the limits, refusals and a revoked token. On the file store only: the
other names (the cut is the same code, whatever it reads), the re-encode decisions and the
odd size (from the probe's metadata), a worker's cut slot and Chromium's playback."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testbed import frame_corpus
from tests.harness import System, own_system, wait_for
from tests.s3server import on_stores, on_stores_each, store_settings

CORPUS = ["cfr.mp4", "vfr.mkv", "open.ts", "vp9.webm", "edit.mp4", "rotated.mp4"]
MAX_BYTES = 5_000_000  # VIDEODROP_CLIP_MAX_BYTES here: above every clip but noise.mp4's


def with_audio(out: Path) -> Path:
    """The corpus's pattern with a 1 kHz tone (AAC), 3 s, GOPs of 25: ``out``."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", frame_corpus.index_pattern(),
                    "-f", "lavfi", "-i", "sine=frequency=1000:duration=3", "-c:v", "libx264",
                    "-crf", "8", "-g", "25", "-c:a", "aac", "-shortest", str(out)],
                   check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, frame_corpus.Oracle]]:
    """The corpus, ``odd.mp4`` (321x241), ``vp8.webm`` (a codec MP4 cannot carry),
    ``closed.ts`` (closed GOPs, B-frames, H.264 Main in MPEG-TS),
    ``av.mp4`` (the pattern with a 1 kHz tone, AAC), ``late.mp4`` (the same, its video
    0.2 s after its audio), ``noise.mp4`` (4 s of noise, ~2 MB a second) and ``slow.mp4``
    (8 s at 1280x720 in one GOP: seconds to re-encode): the folder, and the oracles of the corpus,
    of av.mp4 and of odd.mp4 by name."""
    folder = tmp_path_factory.mktemp("clip-corpus")
    paths = frame_corpus.build(folder)
    with_audio(folder / "av.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-itsoffset", "0.2", "-i", str(folder / "av.mp4"),
                    "-i", str(folder / "av.mp4"), "-map", "0:v", "-map", "1:a", "-c", "copy",
                    str(folder / "late.mp4")], check=True, timeout=60)
    # slow.mp4 is one GOP: an exact clip of it is re-encoded whole, not stitched
    for name, source, gop in (
            ("noise.mp4", "color=c=gray:s=320x240:r=25:d=4,noise=alls=100:allf=t", "50"),
            ("slow.mp4", "testsrc2=s=1280x720:r=25:d=8", "250")):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-c:v", "libx264",
                        "-preset", "ultrafast", "-crf", "10", "-g", gop, str(folder / name)],
                       check=True, timeout=120)
    # odd width and height (4:4:4, which H.264 allows at any size): an exact clip is 4:2:0
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    frame_corpus.index_pattern(seconds=2, size="321x241").replace(
                        "yuv420p", "yuv444p"), "-c:v", "libx264",
                    "-crf", "8", "-g", "25", "-pix_fmt", "yuv444p", str(folder / "odd.mp4")],
                   check=True, timeout=120)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=2",
                    "-c:v", "libvpx", str(folder / "vp8.webm")], check=True, timeout=120)
    # closed GOPs with B-frames in MPEG-TS (its start 1.4 s): the stitch's TS case
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", frame_corpus.index_pattern(),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "8", "-bf", "3", "-g", "12",
                    "-profile:v", "main", str(folder / "closed.ts")], check=True, timeout=120)
    named = {p.name: frame_corpus.oracle(p)
             for p in [*paths, folder / "av.mp4", folder / "odd.mp4", folder / "closed.ts"]}
    return folder, named


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory, database_url, amqp_url,  # noqa: PLR0917
           amqp_prefix, clips) -> Iterator[tuple[System, dict[str, dict]]]:
    """The system with every file of the corpus ready, and one that is not a video:
    name → record. On the media store the test names (``on_stores``: the file store, or
    a prefix of the session's bucket, every clip cut from the object through a presigned
    URL)."""
    folder, _ = clips
    kind = request.param
    with own_system(tmp_path_factory.mktemp(f"clips-{kind}"), database_url, amqp_url,
                    f"{amqp_prefix}_clips_{kind}", "api", "prober", "ingest",
                    **store_settings(request, kind),
                    VIDEODROP_DERIVE="", VIDEODROP_CLIP_CONCURRENCY="1",
                    VIDEODROP_CLIP_MAX_SECONDS="8",
                    VIDEODROP_CLIP_MAX_BYTES=str(MAX_BYTES)) as system:
        names = sorted(path.name for path in folder.iterdir())
        for name in names:
            (system.inbox / name).write_bytes((folder / name).read_bytes())
        (system.inbox / "broken.mp4").write_bytes(b"not a video at all" * 100)
        items = system.wait_done(len(names) + 1, timeout=120)
        yield system, {v["original_filename"]: v for v in items}


def clip(system: System, token: str, **params: object) -> requests.Response:
    return system.http.get(f"{system.base_url}/api/video/{token}/clip/", params=params,
                           timeout=120)


def token(records: dict[str, dict], name: str) -> str:
    return records[name]["api_links"]["access_token"]


def decoded(resp: requests.Response, folder: Path) -> frame_corpus.Oracle:
    """The clip's frames, by ffprobe and an ffmpeg decode (the oracle's own reading)."""
    path = folder / "clip.mp4"
    path.write_bytes(resp.content)
    return frame_corpus.oracle(path)


def probe(resp: requests.Response, folder: Path) -> dict:
    path = folder / "probe.mp4"
    path.write_bytes(resp.content)
    return json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=format_name,duration:stream=codec_type,codec_name,duration",
         "-of", "json", str(path)], check=True, capture_output=True, timeout=60).stdout)


def named_frames(got: frame_corpus.Oracle, oracle: frame_corpus.Oracle, worst: float
                 ) -> list[int]:
    """The index in ``oracle`` of each frame of ``got``, each within ``worst`` levels."""
    names = []
    for picture in got.pixels:
        index, diff = oracle.nearest(picture)
        assert diff < worst, (index, diff)
        names.append(index)
    return names


def spans(oracle: frame_corpus.Oracle, seed: str) -> list[tuple[float, float]]:
    """Seeded random spans, one from a frame's own time to another's (that one excluded),
    one from the start, one running past the end."""
    rng = random.Random(seed)
    last = oracle.times[-1]
    out = []
    for _ in range(2):
        a = round(rng.uniform(0, last - 0.2), 6)
        out.append((a, round(rng.uniform(a + 0.05, a + 1.5), 6)))
    k = rng.randrange(1, len(oracle.times) - 20)
    out.append((round(oracle.times[k], 6), round(oracle.times[k + 17], 6)))
    return [*out, (0.0, 0.5), (round(last - 0.3, 6), round(last + 2, 6))]


def expect_headers(resp: requests.Response, oracle: frame_corpus.Oracle,
                   frames: list[int]) -> None:
    assert resp.headers["Content-Type"] == "video/mp4"
    assert int(resp.headers["Clip-Frames"]) == len(frames)
    assert int(resp.headers["Clip-First-Index"]) == frames[0]
    assert float(resp.headers["Clip-Start"]) == pytest.approx(oracle.times[frames[0]],
                                                              abs=1e-6)
    after = frames[-1] + 1
    if after < len(oracle.times):
        assert float(resp.headers["Clip-End"]) == pytest.approx(oracle.times[after], abs=1e-6)
    else:
        assert float(resp.headers["Clip-End"]) > oracle.times[-1]


@on_stores_each("served", "name", CORPUS, ["open.ts"])
def test_exact_holds_exactly_the_frames_in_the_span(served, clips, name, tmp_path):
    system, records = served
    oracle = clips[1][name]
    for start, end in spans(oracle, name):
        want = [i for i, t in enumerate(oracle.times) if start <= t < end]
        resp = clip(system, token(records, name), start=start, end=end, mode="exact")
        assert resp.status_code == 200, (start, end, resp.text)
        expect_headers(resp, oracle, want)
        got = decoded(resp, tmp_path)
        assert named_frames(got, oracle, worst=4.0) == want, (name, start, end)
        # each frame keeps its time: the clip's timeline is the source's from Clip-Start
        first = oracle.times[want[0]]
        assert got.times == pytest.approx([oracle.times[i] - first for i in want], abs=2e-3)


@on_stores("served", "file")
def test_exact_of_an_odd_size(served, clips, tmp_path):
    """4:2:0 needs even sizes: the clip of a 321x241 video is 322x242, every source pixel
    at its place, the added column and row at the right and the bottom."""
    system, records = served
    oracle = clips[1]["odd.mp4"]
    resp = clip(system, token(records, "odd.mp4"), start=0.5, end=1.0, mode="exact")
    assert resp.status_code == 200, resp.text
    want = [i for i, t in enumerate(oracle.times) if 0.5 <= t < 1.0]
    expect_headers(resp, oracle, want)
    got = decoded(resp, tmp_path)
    assert got.pixels.shape[1:] == (242, 322, 3)
    cropped = frame_corpus.Oracle(got.times, got.pixels[:, :241, :321], got.keys)
    assert named_frames(cropped, oracle, worst=4.0) == want


def slices(path: Path) -> list[tuple[float, list[str]]]:
    """Each video packet of ``path`` in decoding order, those an edit list cuts off left
    out: (its time, pts less the container's start, seconds; the sha256 of each of its
    slice NAL units, in Annex B (MPEG-TS) or 4-byte length-prefixed (MP4, Matroska))."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "format=start_time:packet=pts_time,flags,data", "-show_data", "-of", "json",
         str(path)], check=True, capture_output=True, timeout=60).stdout)
    start = float(out["format"].get("start_time", 0))
    found = []
    for packet in out["packets"]:
        if "D" in packet["flags"]:
            continue
        # "00000010: b796 2cd8 … 2d20  ascii": eight groups of hex digits, then the text
        data = bytes.fromhex("".join(line[10:49].replace(" ", "")
                                     for line in packet["data"].splitlines() if line))
        if data.startswith((b"\0\0\1", b"\0\0\0\1")):
            units = [unit.rstrip(b"\0") for unit in data.split(b"\0\0\1")[1:]]
        else:
            units, n = [], 0
            while n + 4 <= len(data):
                size = int.from_bytes(data[n:n + 4], "big")
                units.append(data[n + 4:n + 4 + size])
                n += 4 + size
        found.append((float(packet["pts_time"]) - start,
                      [hashlib.sha256(u).hexdigest() for u in units if u[0] & 0x1F in (1, 5)]))
    return found


def between(packets: list[tuple[float, list[str]]], low: float, high: float) -> list[list[str]]:
    """The slices of the packets whose time is in ``[low, high)`` (1 ms early)."""
    return [hashes for t, hashes in packets if low - 1e-3 <= t < high - 1e-3]


STITCHED = ["cfr.mp4", "vfr.mkv", "closed.ts", "edit.mp4", "rotated.mp4", "av.mp4"]


@on_stores_each("served", "name", STITCHED, ["edit.mp4", "av.mp4"])
def test_exact_stitches_copying_the_middle_as_stored(served, clips, name, tmp_path):
    """H.264 in closed GOPs (constant and variable frame rates, B-frames, an edit list,
    a non-zero start, a rotation; MP4, MKV, TS): an exact clip holding a whole GOP is
    re-encoded at its ends only (``Clip-Method: stitch``, ``Clip-Copied``): exactly the
    frames in ``[start, end)`` at their times, the middle's packets the source's byte for
    byte (every slice), decoded without an error; with and without a head and a tail."""
    system, records = served
    folder, oracles = clips
    oracle = oracles[name]
    source = slices(folder / name)
    first_key, last_key = oracle.keys[1], oracle.keys[-1]
    times = oracle.times
    for start, end in ((round(times[first_key - 2], 6), round(times[last_key] + 0.15, 6)),
                       (round(times[first_key], 6), round(times[last_key], 6))):
        resp = clip(system, token(records, name), start=start, end=end, mode="exact")
        assert resp.status_code == 200, (start, end, resp.text)
        assert resp.headers["Clip-Method"] == "stitch", resp.headers.get("Clip-Method-Reason")
        low, high = (float(t) for t in resp.headers["Clip-Copied"].split("-"))
        assert (low, high) == (pytest.approx(times[first_key], abs=1e-6),
                               pytest.approx(times[last_key], abs=1e-6))
        want = [i for i, t in enumerate(times) if start <= t < end]
        expect_headers(resp, oracle, want)
        got = decoded(resp, tmp_path)
        assert named_frames(got, oracle, worst=4.0) == want, (name, start, end)
        assert got.times == pytest.approx([times[i] - times[want[0]] for i in want], abs=2e-3)
        path = tmp_path / "clip.mp4"
        # every frame decoded, as it is timed (the null output in the clip's time base)
        errors = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-fps_mode",
                                 "passthrough", "-enc_time_base:v", "-1", "-f", "null", "-"],
                                capture_output=True, timeout=60)
        assert errors.returncode == 0 and not errors.stderr, errors.stderr[-500:]
        middle = between(source, low, high)
        shift = float(resp.headers["Clip-Start"])
        assert middle and all(middle)
        assert between(slices(path), low - shift, high - shift) == middle
    if name == "av.mp4":  # the audio covers the clip
        info = probe(resp, tmp_path)
        length = float(resp.headers["Clip-End"]) - float(resp.headers["Clip-Start"])
        assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
        for stream in info["streams"]:
            assert float(stream["duration"]) == pytest.approx(length, abs=0.05), stream


@on_stores("served", "file")
@pytest.mark.parametrize("case", [
    ("open.ts", 0.3, 2.9, "IDR"),  # open GOPs: recovery points, not IDR pictures
    ("vp9.webm", 0.3, 2.9, "vp9"),
    ("odd.mp4", 0.3, 1.9, "yuv444p"),
    ("cfr.mp4", 1.0, 1.2, "no whole GOP (")])  # closed GOPs of 12 frames: shorter
def test_exact_says_when_it_re_encodes_the_whole_span(served, clips, case, tmp_path):
    """Not stitched (``Clip-Method: encode``, ``Clip-Method-Reason`` says why), the
    frames still exactly those in ``[start, end)``."""
    name, start, end, why = case
    system, records = served
    resp = clip(system, token(records, name), start=start, end=end, mode="exact")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Clip-Method"] == "encode"
    assert why in resp.headers["Clip-Method-Reason"]
    if name != "open.ts":  # closed GOPs: never blamed on an open GOP
        assert "open GOP" not in resp.headers["Clip-Method-Reason"]
    assert "Clip-Copied" not in resp.headers
    oracle = clips[1][name]
    want = [i for i, t in enumerate(oracle.times) if start <= t < end]
    got = decoded(resp, tmp_path)
    if name == "odd.mp4":
        got = frame_corpus.Oracle(got.times, got.pixels[:, :241, :321], got.keys)
    assert named_frames(got, oracle, worst=4.0) == want


@on_stores_each("served", "name", CORPUS, ["cfr.mp4"])
def test_copy_holds_whole_gops_and_says_which(served, clips, name, tmp_path):
    """The frames of a copy are exactly those of its stated bounds (by their pixels), it
    starts at a keyframe at or before start (the first one shown when start is before it)
    and ends at one at or after end, or the stream's end, less perhaps the last frame
    when the source keeps no packet durations (Matroska: docs/models.md); the headers say
    which frames it holds in every case."""
    system, records = served
    oracle = clips[1][name]
    keys = [oracle.times[k] for k in oracle.keys]
    for start, end in spans(oracle, name):
        resp = clip(system, token(records, name), start=start, end=end, mode="copy")
        assert resp.status_code == 200, (start, end, resp.text)
        got = decoded(resp, tmp_path)
        frames = named_frames(got, oracle, worst=1.0)
        assert frames == list(range(frames[0], frames[0] + len(frames)))
        expect_headers(resp, oracle, frames)
        first = oracle.times[frames[0]]
        assert first in keys
        assert first <= start or first == keys[0]
        following = [k for k in keys if k >= end]
        cut = oracle.keys[keys.index(following[0])] if following else len(oracle.times)
        lost = cut - (frames[-1] + 1)  # may be 1 from Matroska (docs/models.md)
        assert lost == 0 or (lost == 1 and name.endswith(".mkv")), (name, start, end, frames)
        assert got.times == pytest.approx([oracle.times[i] - first for i in frames], abs=2e-3)


@on_stores("served")
def test_streams_durations_and_name(served, clips, tmp_path):
    system, records = served
    oracle = clips[1]["av.mp4"]
    av = token(records, "av.mp4")
    for mode in ("exact", "copy"):
        resp = clip(system, av, start="1.02", end="2.5", mode=mode)
        assert resp.status_code == 200, resp.text
        info = probe(resp, tmp_path)
        assert "mp4" in info["format"]["format_name"]
        kinds = sorted((s["codec_type"], s["codec_name"]) for s in info["streams"])
        assert kinds == [("audio", "aac"), ("video", "h264")]
        length = float(resp.headers["Clip-End"]) - float(resp.headers["Clip-Start"])
        for stream in info["streams"]:
            assert float(stream["duration"]) == pytest.approx(length, abs=0.05), (mode, stream)
        assert int(resp.headers["Content-Length"]) == len(resp.content)
        start = resp.headers["Clip-Start"]
        assert resp.headers["Content-Disposition"] == (
            f'attachment; filename="av_{float(start):.3f}-'
            f'{float(resp.headers["Clip-End"]):.3f}.mp4"')
    keyframe = max(oracle.times[k] for k in oracle.keys if oracle.times[k] <= 1.02)
    assert float(start) == pytest.approx(keyframe, abs=1e-6)  # copy: from the keyframe
    head = system.http.head(f"{system.base_url}/api/video/{av}/clip/",
                            params={"start": "1", "end": "2"}, timeout=60)
    assert head.status_code == 200 and head.headers["Clip-Frames"] == "25"


@on_stores("served")
def test_a_video_that_starts_after_its_audio(served, clips, tmp_path):
    """The timeline starts with the audio: the first frame is at 0.2 s. A clip from 0
    starts at that frame (Clip-Start), and in the clip both streams start at 0."""
    system, records = served
    for mode in ("exact", "copy"):
        resp = clip(system, token(records, "late.mp4"), start="0", end="1.5", mode=mode)
        assert resp.status_code == 200, resp.text
        assert float(resp.headers["Clip-Start"]) == pytest.approx(0.2, abs=1e-6)
        path = tmp_path / "late.mp4"
        path.write_bytes(resp.content)
        starts = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time",
             "-of", "json", str(path)], check=True, capture_output=True, timeout=60).stdout)
        for stream in starts["streams"]:
            assert float(stream["start_time"]) == pytest.approx(0, abs=0.03), (mode, stream)
        got = decoded(resp, tmp_path)
        assert named_frames(got, clips[1]["av.mp4"], worst=4.0)[0] == 0  # its first frame


def error_code(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) >= {"title", "description", "error_code"}, body
    return body["error_code"]


@on_stores("served")
def test_refusals_and_limits(served):
    system, records = served
    cfr = token(records, "cfr.mp4")
    for params in ({"start": "-1", "end": "2"}, {"start": "1", "end": "1e3"},
                   {"start": "nan", "end": "2"}, {"end": "2"}, {"start": "1"},
                   {"start": "2", "end": "1"}, {"start": "1", "end": "1"},
                   {"start": "1", "end": "2", "mode": "fast"},
                   {"start": "1", "end": "2", "t": "1"},
                   {"start": ["1", "0"], "end": "2"}, {"start": "1", "end": ["2", "3"]}):
        resp = clip(system, cfr, **params)
        assert resp.status_code == 400 and error_code(resp) == "bad_parameter", params
    long = clip(system, cfr, start="0", end="8.5")
    assert long.status_code == 400 and error_code(long) == "too_long"
    past = clip(system, cfr, start="3", end="4")  # the last frame ends at 3.0 s
    assert past.status_code == 416 and error_code(past) == "past_end"
    between = clip(system, cfr, start="1.001", end="1.002")  # frames at 1.00 and 1.04
    assert between.status_code == 416 and error_code(between) == "no_frames"
    large = clip(system, token(records, "noise.mp4"), start="0", end="3.5", mode="copy")
    assert large.status_code == 400 and error_code(large) == "too_large", large.text
    vp8 = clip(system, token(records, "vp8.webm"), start="0", end="1", mode="copy")
    assert vp8.status_code == 422 and error_code(vp8) == "not_copyable", vp8.text
    assert "exact" in vp8.json()["description"]
    assert clip(system, token(records, "vp8.webm"), start="0", end="1").status_code == 200
    broken = clip(system, token(records, "broken.mp4"), start="0", end="1")
    assert broken.status_code == 409 and error_code(broken) == "not_ready"
    unknown = clip(system, "A" * 43, start="0", end="1")
    record_404 = system.http.get(f"{system.base_url}/api/video/{'A' * 43}/", timeout=10)
    assert unknown.status_code == record_404.status_code == 404
    assert unknown.json() == record_404.json()


@on_stores("served")
def test_a_revoked_token_is_404(served):
    system, records = served
    record = records["rotated.mp4"]
    old = token(records, "rotated.mp4")
    assert clip(system, old, start="0", end="1").status_code == 200
    resp = system.http.post(f"{system.base_url}/api/videos/{record['id']}/token",
                            headers=system.admin, timeout=10)
    assert resp.status_code == 200, resp.text
    new = resp.json()["api_links"]["access_token"]
    assert clip(system, old, start="0", end="1").status_code == 404
    assert clip(system, new, start="0", end="1").status_code == 200


@on_stores("served", "file")  # the worker's cut slot, whatever the store
def test_a_worker_cuts_at_most_its_share_at_once(served):
    """VIDEODROP_CLIP_CONCURRENCY=1 (one API worker): while one clip is being cut (a slow
    re-encode, its client trying again while refused), another is refused at once with
    503 busy and Retry-After, and frames (a pool of their own) and lookups are answered."""
    system, records = served
    long = token(records, "slow.mp4")
    slow: list[requests.Response] = []

    def cut_slowly() -> None:
        slow.append(wait_for(lambda: [r for r in [clip(system, long, start="0", end="8",
                                                       mode="exact")]
                                      if r.status_code != 503],
                             timeout=60, interval=0.01, what="the slow clip's slot")[0])

    cutting = threading.Thread(target=cut_slowly)
    cutting.start()
    try:
        def refused() -> list[requests.Response] | None:
            resp = clip(system, token(records, "cfr.mp4"), start="0", end="1")
            if resp.status_code == 503:
                return [resp]
            assert not slow, ("the slow clip ended before another was refused",
                              [(r.status_code, r.text[:200]) for r in slow])
            return None
        [busy] = wait_for(refused, timeout=60, interval=0.02, what="a clip refused as busy")
        frame = system.http.get(f"{system.base_url}/api/video/{token(records, 'cfr.mp4')}"
                                "/frame/", params={"t": "1"}, timeout=60)
        lookup = system.http.get(f"{system.base_url}/api/video/{long}/", timeout=10)
    finally:
        cutting.join(timeout=120)
    assert error_code(busy) == "busy" and busy.headers["Retry-After"] == "1"
    assert frame.status_code == 200 and lookup.status_code == 200
    assert [r.status_code for r in slow] == [200]
    assert slow[0].headers["Clip-Frames"] == "200"


@on_stores("served", "file")  # the clips' bytes are the oracle's, on either store
def test_stitched_clips_play_and_seek_in_chromium(served, clips, tmp_path):
    """Stitched clips (the ends' parameter sets beside the copied middle's, ``avc3``)
    play from the start and from their middle in Debian's Chromium (the playback check
    of tests/e2e/test_playback_browser.py), served as files from a folder."""
    from tests.e2e.test_playback_browser import in_chromium

    system, records = served
    times = clips[1]["cfr.mp4"].times
    for name in ("cfr.mp4", "vfr.mkv", "closed.ts", "av.mp4"):
        resp = clip(system, token(records, name), start=round(times[10], 6),
                    end=round(times[-5], 6), mode="exact")
        assert resp.status_code == 200 and resp.headers["Clip-Method"] == "stitch", name
        (tmp_path / f"{name}.mp4").write_bytes(resp.content)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as files:
        serving = threading.Thread(target=files.serve_forever, daemon=True)
        serving.start()
        try:
            seen = in_chromium(system.base_url, {
                name: (f"http://127.0.0.1:{files.server_address[1]}/{name}.mp4", None)
                for name in ("cfr.mp4", "vfr.mkv", "closed.ts", "av.mp4")})
        finally:
            files.shutdown()
    for name, what in seen.items():
        assert what["plays"] and what["seeks"], (name, what)
