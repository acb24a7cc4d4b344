"""The frame endpoint's latency and the packet index (issue 22).

* ``GET /api/video/{token}/frame/?t=…`` at seeded random times of a generated 1080p30
  H.264 clip with a keyframe every 2 s (B-frames, x264's defaults), JPEG at the default
  width, one request at a time, p50 and p95: first while the video's packet index is
  pending (each request lists the packets with ffprobe), then once the derive role made it
  (the stored index). Beside them, the same frames from torchcodec 0.13 (exact seek mode,
  one ``VideoDecoder`` in one process, ``get_frame_played_at``), each asked right after
  ours (the same load for both): its timings and whether it names the same frames.
  torchcodec is not a dependency of videodrop: it runs from ``var/bench-torch`` (``make
  bench-torch`` makes it: CPU torch 2.13 and torchcodec 0.13); without it the rows say
  so, and one bare ffmpeg per time with accurate seeking stands in (what a client
  decoding the file itself pays per frame).
* ``/frame/`` at 20 times in the last 10 s of a 9,000-packet video (300 s at 30 fps,
  160x90: the listing, which reads every packet before ``t``, is most of the work), with
  the listing and with the index.
* ``GET /api/video/{token}/packets/`` of that video, cached
  (the API worker read it once), p50 and p99 of 200 requests.
* Token lookups (``GET /api/video/{token}/``, wrk, :data:`LOOKUP_CONNECTIONS`
  connections) while :data:`PULLERS` clients pull ``/frame/`` at random times of the
  1080p clip without pause (waiting out ``Retry-After`` when refused with 503 ``busy``),
  against lookups alone, in alternating rounds: requests/s and p99, the ratio.

``python bench/frames.py`` (or ``make bench`` with ``--only frames``).
"""

from __future__ import annotations

import functools
import json
import math
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common, wrk
from bench.common import CACHE, Row, Scratch, ms, percentile, row
from testbed.system import System
from testbed.waits import wait_for

SECONDS = 30
REQUESTS = 40
SEED = 22
PACKETS = 9000  # packets of the index row's video (300 s at 30 fps)
PACKET_REQUESTS = 200
PULLERS = 4  # clients pulling frames during the lookup rounds
LOOKUP_CONNECTIONS = 8
LOOKUP_SECONDS = 8.0
LOOKUP_ROUNDS = 2  # each: alone, with the pullers (the order reversed every other round)
TORCH = Path(__file__).resolve().parents[1] / "var" / "bench-torch" / "bin" / "python"
#: What runs in var/bench-torch: one decoder; for each time read from stdin, a JSON line
#: of the seconds get_frame_played_at took and the frame's pts.
TORCHCODEC = """
import json, sys, time
import torchcodec
from torchcodec.decoders import VideoDecoder
t0 = time.perf_counter()
decoder = VideoDecoder(sys.argv[1], seek_mode="exact", device="cpu")
print(json.dumps({"version": torchcodec.__version__, "open": time.perf_counter() - t0}),
      flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    frame = decoder.get_frame_played_at(float(line))
    print(json.dumps([time.perf_counter() - t0, float(frame.pts_seconds)]), flush=True)
"""


class Torchcodec:
    """torchcodec in var/bench-torch, one decoder of ``path`` in one process, asked one
    time at a time (so that its requests and ours alternate under the same load)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([str(TORCH), "-c", TORCHCODEC, str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        first = self.stdout.readline()
        if not first:
            self.proc.wait(timeout=60)
            raise RuntimeError((self.proc.stderr.read() if self.proc.stderr else "")[-200:])
        opened = json.loads(first)
        self.version, self.open = str(opened["version"]), float(opened["open"])

    def frame(self, t: float) -> tuple[float, float]:
        """(seconds it took, the pts of the frame played at ``t``)."""
        self.stdin.write(f"{t}\n")
        self.stdin.flush()
        took, pts = json.loads(self.stdout.readline())
        return float(took), float(pts)

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=30)


def reference(path: Path) -> Torchcodec | str:
    """torchcodec, or why it does not run."""
    if not TORCH.exists():
        return "not installed (make bench-torch)"
    try:
        return Torchcodec(path)
    except (RuntimeError, OSError, ValueError) as exc:
        return f"did not run: {str(exc).strip().splitlines()[-1:]}"


def made(name: str, source: str) -> Path:
    """An H.264 clip (GOP 2 s) of the lavfi ``source``, made once into var/bench/cache."""
    path = CACHE / name
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source,
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
                        "-pix_fmt", "yuv420p", str(path) + ".part.mp4"], check=True,
                       timeout=900)
        Path(str(path) + ".part.mp4").rename(path)
    return path


def clip() -> Path:
    """The 1080p30 GOP-2s clip of the frame rows."""
    return made(f"frames_1080p_gop2s_{SECONDS}s.mp4",
                f"testsrc2=size=1920x1080:rate=30:duration={SECONDS}")


def long_clip() -> Path:
    """A small-picture clip of :data:`PACKETS` frames (the index's size is the count)."""
    return made(f"packets_{PACKETS}.mp4", f"testsrc2=size=160x90:rate=30:duration={PACKETS / 30}")


def bare_ffmpeg(path: Path, t: float) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{t:.6f}", "-i", str(path),
                    "-frames:v", "1", "-q:v", "2", "-f", "image2pipe", "-c:v", "mjpeg",
                    "pipe:1"], check=True, capture_output=True, timeout=60)


def served_frames(system: System, token: str, times: list[float], path: Path,
                  theirs: Torchcodec | str) -> list[tuple[float, float, float, float]]:
    """For each time: (seconds our request took, the time of the frame it served, the
    reference's seconds and pts), the reference asked right after ours: torchcodec, or
    one bare ffmpeg with accurate seeking (pts NaN)."""
    url = f"{system.base_url}/api/video/{token}/frame/"
    system.http.get(url, params={"t": "1"}, timeout=60).raise_for_status()  # warm
    out = []
    for t in times:
        t0 = time.perf_counter()
        resp = system.http.get(url, params={"t": f"{t}"}, timeout=60)
        took = time.perf_counter() - t0
        resp.raise_for_status()
        if isinstance(theirs, Torchcodec):
            ref, pts = theirs.frame(t)
        else:
            t0 = time.perf_counter()
            bare_ffmpeg(path, t)
            ref, pts = time.perf_counter() - t0, math.nan
        out.append((took, float(resp.headers["Video-Frame-Time"]), ref, pts))
    return out


def late_frames(system: System, token: str, times: list[float]) -> list[float]:
    """Seconds each ``/frame/`` at ``times`` took (one at a time)."""
    url = f"{system.base_url}/api/video/{token}/frame/"
    took = []
    for t in times:
        t0 = time.perf_counter()
        system.http.get(url, params={"t": f"{t}"}, timeout=60).raise_for_status()
        took.append(time.perf_counter() - t0)
    return took


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


class Pullers:
    """:data:`PULLERS` threads asking ``/frame/`` at random times until stopped; they
    count frames served and 503 refusals (each followed by its Retry-After)."""

    def __init__(self, system: System, token: str) -> None:
        self.url = f"{system.base_url}/api/video/{token}/frame/"
        self.stop = threading.Event()
        self.served = self.refused = 0
        self.threads = [threading.Thread(target=self.pull, args=(n,)) for n in range(PULLERS)]

    def pull(self, n: int) -> None:
        rng, http = random.Random(SEED + n), requests.Session()  # a session per thread
        while not self.stop.is_set():
            resp = http.get(self.url, params={"t": f"{rng.uniform(0, SECONDS - 0.1):.3f}"},
                            timeout=60)
            if resp.status_code == 503:
                self.refused += 1
                self.stop.wait(float(resp.headers.get("Retry-After", "1")))
                continue
            resp.raise_for_status()
            self.served += 1

    def __enter__(self) -> Pullers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def lookups_under_frames(system: System, tokens: list[str], frame_token: str,
                         folder: Path) -> tuple[wrk.Load, wrk.Load, Pullers]:
    """(lookups alone, lookups while the pullers run, the pullers' counts)."""
    table = ",".join(f'"{t}"' for t in tokens)
    script = f"""
local tokens = {{{table}}}
request = function()
  return wrk.format("GET", "/api/video/" .. tokens[math.random(1, #tokens)] .. "/", client())
end
"""
    url = system.base_url
    wrk.run(url, script, folder, connections=LOOKUP_CONNECTIONS, threads=1, seconds=2)  # warm
    alone: wrk.Load | None = None
    loaded: wrk.Load | None = None
    pullers = Pullers(system, frame_token)
    served = refused = 0
    for i in range(LOOKUP_ROUNDS):
        for kind in (("alone", "loaded") if i % 2 == 0 else ("loaded", "alone")):
            if kind == "alone":
                got = wrk.run(url, script, folder, connections=LOOKUP_CONNECTIONS, threads=1,
                              seconds=LOOKUP_SECONDS)
                alone = got if alone is None else alone.merged(got)
            else:
                pullers = Pullers(system, frame_token)
                with pullers:
                    got = wrk.run(url, script, folder, connections=LOOKUP_CONNECTIONS,
                                  threads=1, seconds=LOOKUP_SECONDS)
                served, refused = served + pullers.served, refused + pullers.refused
                loaded = got if loaded is None else loaded.merged(got)
            common.log(f"lookups round {i + 1} {kind}: {got.rps:.0f}/s p99 {got.p99_ms:.1f} ms")
    assert alone is not None and loaded is not None
    pullers.served, pullers.refused = served, refused
    return alone, loaded, pullers


def main() -> list[Row]:
    path, long = clip(), long_clip()
    rng = random.Random(SEED)
    times = [round(rng.uniform(0, SECONDS - 0.1), 3) for _ in range(REQUESTS)]
    late = [round(rng.uniform(PACKETS / 30 - 10, PACKETS / 30 - 0.1), 3) for _ in range(20)]
    theirs = reference(path)
    try:
        with Scratch("frames") as scratch:
            # the index stays pending until the derive role starts
            system = scratch.system("api", "prober", "ingest", VIDEODROP_DERIVE="packets")
            shutil.copy(path, system.inbox / path.name)
            shutil.copy(long, system.inbox / long.name)
            items = system.wait_done(2, timeout=300)
            tokens = {v["original_filename"]: v["api_links"]["access_token"] for v in items}
            token = tokens[path.name]
            listing = served_frames(system, token, times, path, theirs)
            late_listing = late_frames(system, tokens[long.name], late)
            system.start_role("derive")
            for each in tokens.values():
                wait_for(functools.partial(index_ready, system, each), timeout=300,
                         interval=0.5, what="the packet index")
            indexed = served_frames(system, token, times, path, theirs)
            late_indexed = late_frames(system, tokens[long.name], late)
            packets, count = packets_timings(system, tokens[long.name])
            alone, loaded, pullers = lookups_under_frames(
                system, list(tokens.values()), token, scratch.root)
    finally:
        if isinstance(theirs, Torchcodec):
            theirs.close()
    what = f"/frame/ at {REQUESTS} random t, 1080p30 GOP 2 s, JPEG"
    name = (f"torchcodec {theirs.version} exact, one process" if isinstance(theirs, Torchcodec)
            else f"bare ffmpeg -ss; torchcodec {theirs}")
    rows = []
    for label, served, target in (("listing per request", listing, {}),
                                  ("stored index", indexed, {50: 100, 95: 200})):
        ours, ref = [s[0] for s in served], [s[2] for s in served]
        for p in (50, 95):
            value = percentile(ours, p)
            rows.append(row(f"{what}, {label}: p{p}", ms(value),
                            f"{ms(percentile(ref, p))} ({name})", value / percentile(ref, p),
                            f"≤ {target[p]} ms" if target else "—",
                            value * 1000 <= target[p] if target else None))
    same = sum(abs(a[1] - b[1]) < 1e-6 for a, b in zip(listing, indexed, strict=True))
    rows.append(row("/frame/ the same frame with and without the index",
                    f"{same} of {len(times)}", target=f"{len(times)} of {len(times)}",
                    met=same == len(times)))
    if isinstance(theirs, Torchcodec):
        agree = sum(abs(s[1] - s[3]) < 1e-3 for s in indexed)
        rows.append(row("/frame/ the frame torchcodec plays at t (same pts)",
                        f"{agree} of {len(times)}",
                        f"its decoder opened in {ms(theirs.open)}",
                        target=f"{len(times)} of {len(times)}", met=agree == len(times)))
    rows.append(row(f"/frame/ at 20 t in the last 10 s of the {count}-packet video (160x90),"
                    " stored index: p50", ms(percentile(late_indexed, 50)),
                    f"{ms(percentile(late_listing, 50))} (listing per request)",
                    percentile(late_indexed, 50) / percentile(late_listing, 50)))
    rows.append(row(f"token lookups while {PULLERS} clients pull /frame/ (1080p): requests/s,"
                    f" p99 ({pullers.served} frames served, {pullers.refused} refused busy)",
                    f"{loaded.rps:.0f}/s, {loaded.p99_ms:.1f} ms",
                    f"{alone.rps:.0f}/s, {alone.p99_ms:.1f} ms (lookups alone)",
                    loaded.rps / alone.rps, "≥ 0.8x", loaded.rps / alone.rps >= 0.8))
    p99 = percentile(packets, 99)
    rows.append(row(f"/packets/ JSON, {count} packets, cached: p50 / p99",
                    f"{ms(percentile(packets, 50))} / {ms(p99)}", target="p99 ≤ 20 ms",
                    met=p99 <= 0.020))
    return rows


if __name__ == "__main__":
    common.log(f"machine: {common.machine()}")
    common.print_table(main(), "frames")
