"""The frame endpoint's latency (issue 22): ``GET /api/video/{token}/frame/?t=…`` at
seeded random times of a generated 1080p30 H.264 clip with a keyframe every 2 s (B-frames,
x264's defaults), JPEG at the default width, one request at a time, p50 and p95; beside
it, the same frame from one bare ffmpeg with accurate seeking (what a client decoding
the file itself pays, without the listing and the check).

``python bench/frames.py`` (or ``make bench`` with ``--only frames``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import CACHE, Row, Scratch, ms, percentile, row

SECONDS = 30
REQUESTS = 40
SEED = 22


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


def bare_ffmpeg(path: Path, t: float) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{t:.6f}", "-i", str(path),
                    "-frames:v", "1", "-q:v", "2", "-f", "image2pipe", "-c:v", "mjpeg",
                    "pipe:1"], check=True, capture_output=True, timeout=60)


def main() -> list[Row]:
    path = clip()
    rng = random.Random(SEED)
    times = [round(rng.uniform(0, SECONDS - 0.1), 3) for _ in range(REQUESTS)]
    with Scratch("frames") as scratch:
        system = scratch.system("api", "prober", "ingest", VIDEODROP_DERIVE="")
        shutil.copy(path, system.inbox / path.name)
        [item] = system.wait_done(1, timeout=300)
        token = item["api_links"]["access_token"]
        url = f"{system.base_url}/api/video/{token}/frame/"
        system.http.get(url, params={"t": "1"}, timeout=60).raise_for_status()  # warm
        served: list[float] = []
        for t in times:
            t0 = time.perf_counter()
            resp = system.http.get(url, params={"t": f"{t}"}, timeout=60)
            served.append(time.perf_counter() - t0)
            resp.raise_for_status()
    bare: list[float] = []
    for t in times:
        t0 = time.perf_counter()
        bare_ffmpeg(path, t)
        bare.append(time.perf_counter() - t0)
    what = f"/frame/ at {REQUESTS} random t, 1080p30 GOP 2 s, JPEG"
    return [
        row(f"{what}: p50", ms(percentile(served, 50)), ms(percentile(bare, 50)),
            percentile(served, 50) / percentile(bare, 50)),
        row(f"{what}: p95", ms(percentile(served, 95)), ms(percentile(bare, 95)),
            percentile(served, 95) / percentile(bare, 95)),
    ]


if __name__ == "__main__":
    common.log(f"machine: {common.machine()}")
    common.print_table(main(), "frames")
