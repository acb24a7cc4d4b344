"""The model endpoints as a new client uses them, against ffprobe/ffmpeg as the reference:

* a frame's own time fed back with the 6 decimals the API writes names that frame, on
  ``/frame/``, ``/frames/``, ``/clip/`` (exact and copy) and ``/range/``, in a 30 fps
  stream whose frames' times are thirds of a tick-free decimal (1/15360: 0.0333333… s);
* the sample aspect ratio and the rotation applied to the pixels (a file made here with
  both, and one with a SAR only), against ffmpeg's own decode with its autorotation and a
  scale to square pixels; ``raw=1``: as coded;
* the limits (VIDEODROP_FRAMES_MAX, VIDEODROP_FRAMES_MAX_BYTES, VIDEODROP_CLIP_MAX_SECONDS)
  as a 400 with an ``error_code`` and a sentence naming the setting;
* every one of the five routes: 409 ``not_ready`` with ``Retry-After`` while the video is
  processing (no prober yet), and the token's 404 once it is revoked.

One system: the API alone first (uploads stay ``processing``), then the prober and the
derive role (VIDEODROP_DERIVE=packets)."""

from __future__ import annotations

import io
import json
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
from tests.harness import System, own_system, wait_for
from tests.integration.test_api_uploads import upload_raw

ROUTES = {"frame/": {"t": "0.5"}, "frames/": {"t": "0.5,1"},
          "clip/": {"start": "0.5", "end": "1"}, "packets/": {},
          "range/": {"start": "0.5", "end": "1"}}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``thirty.mp4`` (the corpus's pattern at 30 fps, 2 s, GOPs of 15, B-frames),
    ``wide.mp4`` (320x240 coded, SAR 4:3), ``turned.mp4`` (320x240, SAR 2:1, a display
    matrix turning it a quarter)."""
    folder = tmp_path_factory.mktemp("frame-edges")
    ffmpeg("-f", "lavfi", "-i", frame_corpus.index_pattern(rate=30, seconds=2), "-c:v",
           "libx264", "-preset", "veryfast", "-crf", "8", "-bf", "2", "-g", "15",
           str(folder / "thirty.mp4"))
    for name, sar in (("wide.mp4", "4/3"), ("flat.mp4", "2/1")):
        ffmpeg("-f", "lavfi", "-i", frame_corpus.index_pattern(seconds=1) + f",setsar={sar}",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "8", "-g", "25",
               str(folder / name))
    ffmpeg("-i", str(folder / "flat.mp4"), "-c", "copy", "-metadata:s:v", "rotate=90",
           str(folder / "turned.mp4"))
    return {name: folder / name for name in ("thirty.mp4", "wide.mp4", "turned.mp4")}


@pytest.fixture(scope="module")
def served(tmp_path_factory, database_url, amqp_url, amqp_prefix, files
           ) -> Iterator[dict[str, Any]]:
    """``system``; ``tokens`` (name → token, every file ready with its packet index);
    ``processing``: the answers of the five routes for thirty.mp4 while it was still
    processing (uploaded with no prober running)."""
    with own_system(tmp_path_factory.mktemp("frame-edges"), database_url, amqp_url,
                    f"{amqp_prefix}_frame_edges", "api",
                    VIDEODROP_DERIVE="packets", VIDEODROP_FRAMES_MAX="6",
                    VIDEODROP_FRAMES_MAX_BYTES="1MiB", VIDEODROP_CLIP_MAX_SECONDS="1.5"
                    ) as system:
        records = {}
        for name, path in files.items():
            resp = upload_raw(system, path)
            assert resp.status_code == 202, resp.text
            records[name] = resp.json()
        tokens = {name: r["api_links"]["access_token"] for name, r in records.items()}
        assert records["thirty.mp4"]["status"] == "processing"
        processing = {route: get(system, tokens["thirty.mp4"], route, **params)
                      for route, params in ROUTES.items()}
        system.start_role("prober")
        system.start_role("derive")

        def made() -> bool:
            found = [system.http.get(f"{system.base_url}/api/video/{t}/", timeout=10).json()
                     for t in tokens.values()]
            return all(v["status"] == "ready"
                       and v["derivatives"].get("packets", {}).get("status") == "ready"
                       for v in found)

        wait_for(made, timeout=120, interval=0.3, what="every video ready, with its index")
        yield {"system": system, "tokens": tokens, "processing": processing}


def get(system: System, token: str, route: str, **params: object) -> requests.Response:
    return system.http.get(f"{system.base_url}/api/video/{token}/{route}", params=params,
                           timeout=60)


def error_code(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) >= {"title", "description", "error_code"}, body
    assert body["description"], body
    return body["error_code"]


def picture(resp: requests.Response) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, resp.headers
    return bgr[:, :, ::-1]


def written(seconds: float) -> str:
    """A time as the API writes it (Video-Frame-Time, Clip-Start): 6 decimals."""
    return f"{seconds:.6f}"


def test_a_frames_own_time_names_that_frame(served, files):
    """Times from ffprobe's frames (the oracle), written with 6 decimals: half of them
    rounded down below the frame's time (0.033333 for 0.0333333…)."""
    system, token = served["system"], served["tokens"]["thirty.mp4"]
    oracle = frame_corpus.oracle(files["thirty.mp4"])
    assert len(oracle.times) == 60 and written(oracle.times[1]) == "0.033333"
    below = [k for k, t in enumerate(oracle.times) if float(written(t)) < t]
    assert len(below) >= 10
    for k in [*below[:6], 2, 30, 59]:
        resp = get(system, token, "frame/", t=written(oracle.times[k]), format="png")
        assert resp.status_code == 200, resp.text
        assert int(resp.headers["Video-Frame-Index"]) == k, (k, oracle.times[k])
        assert oracle.nearest(picture(resp)) == (k, pytest.approx(0, abs=1.0))
        # the header's own value, fed back as it is
        again = get(system, token, "frame/", t=resp.headers["Video-Frame-Time"])
        assert int(again.headers["Video-Frame-Index"]) == k
    some = below[:4]
    many = get(system, token, "frames/", t=",".join(written(oracle.times[k]) for k in some))
    assert many.status_code == 200, many.text
    assert json.loads(many.headers["Video-Frame-Indices"]) == some
    for got, k in zip(np.load(io.BytesIO(many.content)), some, strict=True):
        assert oracle.nearest(got)[0] == k


def test_clip_and_range_bounds_at_a_frames_own_time(served, files, tmp_path):
    """``exact`` from frame k's written time to frame j's holds frames k..j-1 (decoded
    and named by their pixels); ``copy`` from a keyframe's written time starts at it;
    ``/range/`` from frame k's written time names frame k."""
    system, token = served["system"], served["tokens"]["thirty.mp4"]
    oracle = frame_corpus.oracle(files["thirty.mp4"])
    below = [k for k, t in enumerate(oracle.times) if float(written(t)) < t]
    above = [k for k, t in enumerate(oracle.times) if float(written(t)) > t]
    k, j = below[3], above[-3]  # the start rounded down, the end rounded up
    if j - k > 40:
        j = next(n for n in above if n > k + 5)
    resp = get(system, token, "clip/", start=written(oracle.times[k]),
               end=written(oracle.times[j]), mode="exact")
    assert resp.status_code == 200, resp.text
    assert (int(resp.headers["Clip-First-Index"]), int(resp.headers["Clip-Frames"])) == (
        k, j - k)
    out = tmp_path / "exact.mp4"
    out.write_bytes(resp.content)
    got = frame_corpus.oracle(out)
    assert [oracle.nearest(p)[0] for p in got.pixels] == list(range(k, j))
    # copy from a keyframe whose written time is below it: the clip starts there
    key = next(n for n in oracle.keys if n in below or n in above)
    copy = get(system, token, "clip/", start=written(oracle.times[key]),
               end=written(oracle.times[key] + 0.3), mode="copy")
    assert copy.status_code == 200, copy.text
    assert int(copy.headers["Clip-First-Index"]) == key, (key, oracle.keys)
    for n in (below[2], above[2], key):
        span = get(system, token, "range/", start=written(oracle.times[n]),
                   end=written(oracle.times[n] + 0.2)).json()
        assert span["frame"]["index"] == n, (n, span)


def reference(path: Path, raw: bool = False) -> np.ndarray:
    """ffmpeg's own first frame of ``path``: autorotated and scaled to square pixels (its
    width, rounded down to even), or as coded (``raw``)."""
    shape = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,sample_aspect_ratio:stream_side_data=rotation", "-of", "json",
         str(path)], check=True, capture_output=True, timeout=30).stdout)["streams"][0]
    w, h = shape["width"], shape["height"]
    sar = Fraction(shape.get("sample_aspect_ratio", "1:1").replace(":", "/"))
    turned = any(abs(int(d.get("rotation", 0))) in (90, 270)
                 for d in shape.get("side_data_list", []))
    if raw:
        before, filters, out = ["-noautorotate"], ["-vf", "setsar=1"], (h, w)
    else:  # a quarter turn makes the pixels' aspect its inverse
        shown = (h, w) if turned else (w, h)
        square = shown[0] * (1 / sar if turned else sar)
        width = int(square) // 2 * 2
        before, filters = [], ["-vf", f"scale={width}:{shown[1]},setsar=1"]
        out = (shown[1], width)
    data = subprocess.run(["ffmpeg", "-v", "error", *before, "-i", str(path), *filters, "-frames:v",
                           "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                          check=True, capture_output=True, timeout=30).stdout
    return np.frombuffer(data, np.uint8).reshape(*out, 3)


@pytest.mark.parametrize("name", ["wide.mp4", "turned.mp4"])
def test_rotation_and_sample_aspect_ratio_on_the_pixels(served, files, name):
    system, token = served["system"], served["tokens"][name]
    for raw in (False, True):
        want = reference(files[name], raw=raw)
        resp = get(system, token, "frame/", t="0", format="png", **({"raw": "1"} if raw else {}))
        assert resp.status_code == 200, resp.text
        got = picture(resp)
        assert got.shape == want.shape, (name, raw)
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 2.0, (name, raw)
        array = np.load(io.BytesIO(get(system, token, "frames/", t="0,0.5",
                                       **({"raw": "1"} if raw else {})).content))
        assert array.shape == (2, *want.shape)


def test_the_limits_say_which_setting(served):
    system, token = served["system"], served["tokens"]["thirty.mp4"]
    many = get(system, token, "frames/", t=",".join(["0.1"] * 7))  # VIDEODROP_FRAMES_MAX=6
    assert many.status_code == 400 and error_code(many) == "bad_parameter"
    assert "6" in many.json()["description"]
    # 5 frames of 320x240 RGB: 1,152,000 bytes, over VIDEODROP_FRAMES_MAX_BYTES=1MiB
    large = get(system, token, "frames/", t="0,0.1,0.2,0.3,0.4")
    assert large.status_code == 400 and error_code(large) == "too_large"
    assert "VIDEODROP_FRAMES_MAX_BYTES" in large.json()["description"]
    assert get(system, token, "frames/", t="0,0.1,0.2,0.3", format="tar").status_code == 200
    long = get(system, token, "clip/", start="0", end="1.6")  # VIDEODROP_CLIP_MAX_SECONDS
    assert long.status_code == 400 and error_code(long) == "too_long"
    assert "VIDEODROP_CLIP_MAX_SECONDS" in long.json()["description"]
    assert get(system, token, "clip/", start="0", end="1.5", mode="copy").status_code == 200


def test_processing_is_409_and_revoked_is_404_on_every_route(served):
    """Last: it revokes thirty.mp4's token."""
    system, token = served["system"], served["tokens"]["thirty.mp4"]
    for route, resp in served["processing"].items():
        assert resp.status_code == 409 and error_code(resp) == "not_ready", route
        assert resp.headers["Retry-After"] == "10", route
    for route, params in ROUTES.items():
        assert get(system, token, route, **params).status_code == 200, route
    record = system.http.get(f"{system.base_url}/api/video/{token}/", timeout=10).json()
    revoked = requests.delete(f"{system.base_url}/api/videos/{record['id']}/token",
                              headers=system.admin, timeout=10)
    assert revoked.status_code == 200
    unknown = system.http.get(f"{system.base_url}/api/video/{'A' * 43}/", timeout=10)
    for route, params in ROUTES.items():
        resp = get(system, token, route, **params)
        assert resp.status_code == 404 and resp.json() == unknown.json(), route
