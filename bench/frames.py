"""The frame endpoint's latency and the packet index (issue 22).

* ``GET /api/video/{token}/frame/?t=…`` at seeded random times of a generated 1080p30
  H.264 clip with a keyframe every 2 s (B-frames, x264's defaults), JPEG at the default
  width, one request at a time, p50 and p95: first while the video's packet index is
  pending (each request lists the packets with ffprobe), then once the derive role made it
  (the stored index). Beside them, the same frames from torchcodec 0.13 (exact seek mode,
  one ``VideoDecoder`` in one process, ``get_frame_played_at``): its timings and whether
  it names the same frames (their pts). torchcodec is not a dependency of videodrop: it
  runs from ``var/bench-torch`` (``make bench-torch`` makes it: CPU torch 2.13 and
  torchcodec 0.13); without it the rows say so, and one bare ffmpeg per time with
  accurate seeking stands in (what a client decoding the file itself pays per frame).
* ``GET /api/video/{token}/packets/`` of a 9,000-packet video (300 s at 30 fps), cached
  (the API worker read it once), p50 and p99 of 200 requests.

``python bench/frames.py`` (or ``make bench`` with ``--only frames``).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import CACHE, Row, Scratch, ms, percentile, row
from testbed.system import System
from testbed.waits import wait_for

SECONDS = 30
REQUESTS = 40
SEED = 22
PACKETS = 9000  # packets of the index row's video (300 s at 30 fps)
PACKET_REQUESTS = 200
TORCH = Path(__file__).resolve().parents[1] / "var" / "bench-torch" / "bin" / "python"
#: What runs in var/bench-torch: one decoder, each time in turn; JSON on stdout.
TORCHCODEC = """
import json, sys, time
from torchcodec.decoders import VideoDecoder
path, times = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
decoder = VideoDecoder(path, seek_mode="exact", device="cpu")
opened = time.perf_counter() - t0
out = []
for t in times:
    t0 = time.perf_counter()
    frame = decoder.get_frame_played_at(t)
    out.append([time.perf_counter() - t0, float(frame.pts_seconds)])
import torchcodec
print(json.dumps({"version": torchcodec.__version__, "open": opened, "frames": out}))
"""


def clip() -> Path:
    """The 1080p GOP-2s clip, made once into var/bench/cache."""
    path = CACHE / f"frames_1080p_gop2s_{SECONDS}s.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=1920x1080:rate=30:duration={SECONDS}",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
                        "-pix_fmt", "yuv420p", str(path) + ".part.mp4"], check=True,
                       timeout=900)
        Path(str(path) + ".part.mp4").rename(path)
    return path


def long_clip() -> Path:
    """A small-picture clip of :data:`PACKETS` frames (the index's size is the count)."""
    path = CACHE / f"packets_{PACKETS}.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=160x90:rate=30:duration={PACKETS / 30}",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
                        "-pix_fmt", "yuv420p", str(path) + ".part.mp4"], check=True,
                       timeout=900)
        Path(str(path) + ".part.mp4").rename(path)
    return path


def bare_ffmpeg(path: Path, t: float) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{t:.6f}", "-i", str(path),
                    "-frames:v", "1", "-q:v", "2", "-f", "image2pipe", "-c:v", "mjpeg",
                    "pipe:1"], check=True, capture_output=True, timeout=60)


def torchcodec(path: Path, times: list[float]) -> dict[str, Any] | str:
    """torchcodec's timings and pts of ``times``, or why it did not run."""
    if not TORCH.exists():
        return "not installed (make bench-torch)"
    done = subprocess.run([str(TORCH), "-c", TORCHCODEC, str(path), json.dumps(times)],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"did not run: {lines[-1][:100] if lines else done.returncode}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def served_frames(system: System, token: str, times: list[float]
                  ) -> tuple[list[float], list[float]]:
    """(seconds each request took, the time of the frame each served)."""
    url = f"{system.base_url}/api/video/{token}/frame/"
    system.http.get(url, params={"t": "1"}, timeout=60).raise_for_status()  # warm
    took, shown = [], []
    for t in times:
        t0 = time.perf_counter()
        resp = system.http.get(url, params={"t": f"{t}"}, timeout=60)
        took.append(time.perf_counter() - t0)
        resp.raise_for_status()
        shown.append(float(resp.headers["Video-Frame-Time"]))
    return took, shown


def index_ready(system: System, token: str) -> bool:
    record = system.http.get(f"{system.base_url}/api/video/{token}/", timeout=10).json()
    return record["derivatives"].get("packets", {}).get("status") == "ready"


def packets_timings(system: System, token: str) -> tuple[list[float], int]:
    """(seconds of each cached ``/packets/``, the packets it listed)."""
    url = f"{system.base_url}/api/video/{token}/packets/"
    first = system.http.get(url, timeout=60)
    first.raise_for_status()
    count = int(first.json()["count"])
    took = []
    for _ in range(PACKET_REQUESTS):
        t0 = time.perf_counter()
        resp = system.http.get(url, timeout=60)
        resp.content  # noqa: B018 - read to the last byte
        took.append(time.perf_counter() - t0)
        resp.raise_for_status()
    return took, count


def main() -> list[Row]:
    path, long = clip(), long_clip()
    rng = random.Random(SEED)
    times = [round(rng.uniform(0, SECONDS - 0.1), 3) for _ in range(REQUESTS)]
    with Scratch("frames") as scratch:
        # the index stays pending until the derive role starts
        system = scratch.system("api", "prober", "ingest", VIDEODROP_DERIVE="packets")
        shutil.copy(path, system.inbox / path.name)
        shutil.copy(long, system.inbox / long.name)
        items = system.wait_done(2, timeout=300)
        tokens = {v["original_filename"]: v["api_links"]["access_token"] for v in items}
        token = tokens[path.name]
        listing, listed_shown = served_frames(system, token, times)
        system.start_role("derive")
        for name in tokens.values():
            wait_for(lambda name=name: index_ready(system, name), timeout=300,
                     interval=0.5, what="the packet index")
        indexed, indexed_shown = served_frames(system, token, times)
        packets, count = packets_timings(system, tokens[long.name])
    theirs = torchcodec(path, times)
    what = f"/frame/ at {REQUESTS} random t, 1080p30 GOP 2 s, JPEG"
    same = sum(abs(a - b) < 1e-6 for a, b in zip(listed_shown, indexed_shown, strict=True))
    rows = []
    if isinstance(theirs, dict):
        ref = [f for f, _ in theirs["frames"]]
        agree = sum(abs(pts - ours) < 1e-3 for (_, pts), ours
                    in zip(theirs["frames"], indexed_shown, strict=True))
        name = f"torchcodec {theirs['version']} exact, one process"
    else:
        ref = []
        for t in times:
            t0 = time.perf_counter()
            bare_ffmpeg(path, t)
            ref.append(time.perf_counter() - t0)
        name = f"bare ffmpeg -ss (torchcodec {theirs})"
    for label, took, target in (("listing per request", listing, None),
                                ("stored index", indexed, (100, 200))):
        for p in (50, 95):
            goal = f"≤ {target[p // 50 - 1]} ms" if target else "—"
            rows.append(row(f"{what}, {label}: p{p}", ms(percentile(took, p)),
                            f"{ms(percentile(ref, p))} ({name})",
                            percentile(took, p) / percentile(ref, p), goal,
                            percentile(took, p) * 1000 <= target[p // 50 - 1]
                            if target else None))
    rows.append(row("/frame/ the same frame with and without the index", f"{same} of {len(times)}",
                    target=f"{len(times)} of {len(times)}", met=same == len(times)))
    if isinstance(theirs, dict):
        rows.append(row("/frame/ the frame torchcodec plays at t (same pts)",
                        f"{agree} of {len(times)}", f"its decoder opened in"
                        f" {ms(theirs['open'])}", target=f"{len(times)} of {len(times)}",
                        met=agree == len(times)))
    p99 = percentile(packets, 99)
    rows.append(row(f"/packets/ JSON, {count} packets, cached: p50 / p99",
                    f"{ms(percentile(packets, 50))} / {ms(p99)}", target="p99 ≤ 20 ms",
                    met=p99 <= 0.020))
    return rows


if __name__ == "__main__":
    common.log(f"machine: {common.machine()}")
    common.print_table(main(), "frames")
