"""The clip endpoint's time to last byte (issue 22): ``GET /api/video/{token}/clip/?start=
…&end=…&mode=copy``, 10 s from a 1 h H.264 file (320x180, and the 1080p hour of the exact
rows; 25 fps, a keyframe every 2 s), one request at a time over the socket, the body read to
its last byte; beside it, in the same run and on the same spans, one bare ``ffmpeg -ss start
-i file -t 10 -c copy`` to an MP4 file (what a client with the file at hand would run). Two
sets of spans: near the start (10 to 70 s), and seeded random over the hour. The video's
packet index (the ``packets`` derivative) is made first, as a running system has it: the
clip reads it rather than list the packets from the start of the file.

The ``exact`` rows: 10 s from a 1 h 1080p H.264 file (25 fps, a closed GOP every 2 s,
B-frames, no audio), one request at a time, to the last byte: the stitched clip (the
partial GOPs at each end re-encoded, the middle copied: api/frames/stitch.py) against a
whole-span re-encode of the same frames in the same run (``Cutter.exact``, the server's
path before the stitch and its fallback now, called in-process on the same timeline: the
time of its ffmpeg, no HTTP).

``python bench/clips.py`` (or ``make bench`` with ``--only clips``).
"""

from __future__ import annotations

import contextlib
import functools
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from api.frames.cut import Cutter, exact_span
from bench import common
from bench.common import CACHE, Row, Scratch, ms, percentile, row
from bench.frames import index_ready
from testbed.waits import wait_for
from videodrop.children import ChildRunner

HOUR = 3600
SPAN = 10.0
REQUESTS = 12  # per set of spans
EXACT_REQUESTS = 4  # exact clips of the 1080p hour (seconds each)
SEED = 22


@contextlib.contextmanager
def ready_system(path: Path, name: str, **env: str) -> Iterator[tuple[common.System, str]]:
    """A system (``env`` added) with the video at ``path`` ready and its packet index made,
    as a running system has it (the clip reads it, not a listing): (it, the clip URL)."""
    with Scratch(name) as scratch:
        system = scratch.system("api", "prober", "ingest", VIDEODROP_DERIVE="packets",
                                VIDEODROP_MAX_FILE_SIZE="4GiB", **env)
        shutil.copy(path, system.inbox / path.name)
        [item] = system.wait_done(1, timeout=900)
        token = item["api_links"]["access_token"]
        system.start_role("derive")
        wait_for(functools.partial(index_ready, system, token), timeout=900, interval=0.5,
                 what="the packet index")
        yield system, f"{system.base_url}/api/video/{token}/clip/"


def hour_file(size: str = "320x180", *options: str) -> Path:
    """A 10 s ``testsrc2`` of ``size`` (H.264, a keyframe every 2 s, more x264
    ``options``) looped 360 times by stream copy (timestamps continue): 1 h, made once
    into var/bench/cache."""
    path = CACHE / f"clips_{size}_gop2s_1h.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    piece = CACHE / f"clips_{size}_gop2s_10s.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=25:duration=10", "-c:v", "libx264",
                    "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold",
                    "0", *options, "-pix_fmt", "yuv420p", str(piece)], check=True, timeout=900)
    part = Path(str(path) + ".part.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(HOUR // 10 - 1),
                    "-i", str(piece), "-c", "copy", str(part)], check=True, timeout=900)
    part.rename(path)
    return path


def whole_encode(path: Path, start: float, out: Path) -> float:
    """Seconds of the whole-span re-encode of ``[start, start + SPAN)`` (the timeline
    read first, not counted)."""
    cutter = Cutter(path, ffmpeg="ffmpeg", ffprobe="ffprobe",
                    runner=ChildRunner(file_size=None, cpus=2),
                    deadline=time.monotonic() + 600)
    line = cutter.timeline(start + SPAN)
    span = exact_span(line, start, start + SPAN)
    t0 = time.perf_counter()
    cutter.exact(span, line.at(span.start), out, None)
    return time.perf_counter() - t0


def copy_row(what: str, served: list[float], bare: list[float]) -> Row:
    p50, ref = percentile(served, 50), percentile(bare, 50)
    return row(f"/clip/?mode=copy 10 s of 1 h ({what}, GOP 2 s),"
               f" p50 to last byte (p95 {ms(percentile(served, 95))})",
               ms(p50), ms(ref), p50 / ref, "≤ 1.2x and ≤ 100 ms",
               p50 / ref <= 1.2 and p50 <= 0.1)


def exact_rows() -> list[Row]:
    """The stitched ``exact`` clip against the whole-span re-encode (module docstring),
    and before it ``copy`` clips of the same 1080p hour (the issue's size) against bare
    ffmpeg, starts anywhere in the hour."""
    path = hour_file("1920x1080", "-maxrate", "2M", "-bufsize", "4M")  # ~2 Mbit/s
    rng = random.Random(SEED + 1)
    starts = [round(rng.uniform(0, HOUR - SPAN - 1), 3) for _ in range(EXACT_REQUESTS)]
    anywhere = [round(rng.uniform(0, HOUR - SPAN - 1), 3) for _ in range(REQUESTS)]
    with ready_system(path, "clips-exact", VIDEODROP_CLIP_TIMEOUT="600") as (system, url), \
            tempfile.TemporaryDirectory(prefix="bench-clips-") as folder:
        system.http.get(url, params={"start": "1", "end": "2", "mode": "copy"},
                        timeout=60).raise_for_status()  # warm
        copied = copy_row("1080p ~2 Mbit/s, start anywhere", *measure(system, url, path,
                                                                      anywhere))
        stitched: list[float] = []
        whole: list[float] = []
        for start in starts:
            took, resp = timed_clip(system, url, start, "exact")
            stitched.append(took)
            if resp.headers.get("Clip-Method") != "stitch":
                raise RuntimeError(f"not stitched: {resp.headers.get('Clip-Method-Reason')}")
            whole.append(whole_encode(path, start, Path(folder) / "whole.mp4"))
    p50, ref = percentile(stitched, 50), percentile(whole, 50)
    return [copied, row("/clip/?mode=exact 10 s of 1 h 1080p (GOP 2 s, B-frames), stitched vs the"
                f" whole span re-encoded: p50 to last byte (max {ms(max(stitched))})",
                ms(p50), ms(ref), p50 / ref, "≤ 0.6x", p50 / ref <= 0.6)]


def timed_clip(system: common.System, url: str, start: float, mode: str
               ) -> tuple[float, requests.Response]:
    """(seconds to the last byte, the answer) of the clip ``[start, start + SPAN)``."""
    t0 = time.perf_counter()
    resp = system.http.get(url, params={"start": f"{start:.3f}", "end": f"{start + SPAN:.3f}",
                                        "mode": mode}, timeout=600)
    resp.raise_for_status()
    return time.perf_counter() - t0, resp


def bare_ffmpeg(path: Path, start: float, out: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", str(path),
                    "-t", f"{SPAN:g}", "-c", "copy", "-f", "mp4", str(out)], check=True,
                   timeout=60)


def measure(system: common.System, url: str, path: Path, starts: list[float]
            ) -> tuple[list[float], list[float]]:
    """(served seconds, bare seconds) per start, alternating the two."""
    served: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as folder:
        out = Path(folder) / "bare.mp4"
        for start in starts:
            served.append(timed_clip(system, url, start, "copy")[0])
            t0 = time.perf_counter()
            bare_ffmpeg(path, start, out)
            bare.append(time.perf_counter() - t0)
    return served, bare


def main() -> list[Row]:
    path = hour_file()
    rng = random.Random(SEED)
    near = [round(rng.uniform(10, 70), 3) for _ in range(REQUESTS)]
    anywhere = [round(rng.uniform(0, HOUR - SPAN - 1), 3) for _ in range(REQUESTS)]
    with ready_system(path, "clips") as (system, url):
        system.http.get(url, params={"start": "1", "end": "2", "mode": "copy"},
                        timeout=60).raise_for_status()  # warm
        rows = []
        for what, starts in (("start in 10-70 s", near), ("start anywhere in 1 h", anywhere)):
            rows.append(copy_row(f"320x180, {what}", *measure(system, url, path, starts)))
    return [*rows, *exact_rows()]


if __name__ == "__main__":
    common.log(f"machine: {common.machine()}")
    rows = main()
    common.print_table(rows, "clips")
    for one in rows:
        print(f"ratio {one['ratio']:.2f}x: {one['measure']}")
