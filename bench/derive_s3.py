"""The derive role's kinds read from an S3 store (a presigned URL of a throwaway SeaweedFS,
``weed mini``, on loopback: derive/source.py) against the same kinds read from the file
store, in one run: a 60 s 720p H.264 clip (GOP 2 s, testsrc2, made once into
var/bench/cache), ``ROUNDS`` rounds alternating, medians. Per kind: the packet index
(ffprobe), the storyboard and poster (keyframe passes), the scenes (every frame decoded),
each with its outputs put into the store as the worker publishes them
(derive/output.py). The ratio is the file store's time over the S3 store's (1.0: no cost).

Run alone: ``.venv/bin/python bench/derive_s3.py [--rounds 3]``. Not in bench/run.py's
default list.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Row, log, ms, row, standalone
from derive import output, packets, poster, scenes, storyboard
from derive.ffmpeg import FFmpeg
from derive.posters import Posters
from derive.scratch import ScratchRoot
from derive.source import StoredObject
from testbed.s3 import ThrowawayS3
from videodrop.children import ChildRunner
from videodrop.storage import FileStore, MediaStore
from videodrop.storage.s3store import S3Store

SECONDS = 60
KEY = "videos/bench/clip.mp4"


def clip() -> Path:
    path = common.CACHE / f"derive-s3-{SECONDS}s-720p-gop2.mp4"
    if not path.exists():
        common.CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=1280x720:rate=25:duration={SECONDS}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def kinds(tool: FFmpeg, store: MediaStore, out: output.Output) -> dict[str, Callable[[], None]]:
    """Each kind as the worker makes and publishes it, reading ``KEY`` of ``store``."""
    size = store.stat(KEY).size
    source = StoredObject(store, KEY, size, 2 * tool.deadline.longest(size) + 60)
    posters = Posters.like(tool)

    def packet_index() -> None:
        with out.scratch("bench", "packets") as temp:
            packets.make("ffprobe", tool.runner, 120, source, temp / "packets.npy")
            out.publish("bench", {temp / "packets.npy": "packets.npy"}, "packets.npy")

    def board_and_poster() -> None:
        seen: list[poster.Candidate] = []
        with out.scratch("bench", "storyboard") as temp:
            _, sheets = storyboard.make(tool, source, SECONDS, True, temp, seen=seen)
            out.publish("bench", {s: storyboard.SHEET.format(i) for i, s in enumerate(sheets)},
                        "storyboard-")
        with out.scratch("bench", "poster") as temp:
            poster.make(posters, source, SECONDS, temp / "poster.jpg", seen=seen)
            out.publish("bench", {temp / "poster.jpg": "poster.jpg"}, "poster")

    def scene_list() -> None:
        with out.scratch("bench", "scenes") as temp:
            _, sheets = scenes.make(tool, source, 25.0, SECONDS, temp)
            out.publish("bench", {s: scenes.SHEET.format(i) for i, s in enumerate(sheets)},
                        "scenes-")

    return {"packets": packet_index, "storyboard + poster": board_and_poster,
            "scenes": scene_list}


@contextlib.contextmanager
def two_stores(prefix: str) -> Iterator[tuple[Path, FileStore, S3Store]]:
    """(a scratch folder, a file store in it, an S3 store under ``prefix`` of a bucket of
    a throwaway ``weed mini``), the clip at ``KEY`` in both; all removed afterwards."""
    path = clip()
    with tempfile.TemporaryDirectory(dir=common.BENCH_VAR) as tmp, \
            ThrowawayS3(Path(tmp) / "weed") as weed:
        server = weed.server
        bucket = server.create_bucket("vdbench")
        for name, value in server.env().items():
            os.environ.setdefault(name, value)
        files = FileStore(Path(tmp) / "media")
        s3 = S3Store(bucket, prefix, endpoint_url=server.endpoint, region=server.region)
        for store in (files, s3):
            store.put_file(KEY, path)
        yield Path(tmp), files, s3


def ratio_rows(times: dict[tuple[str, str], list[float]]) -> list[Row]:
    """A row per job of ``times`` ((job, store) → seconds of each round): the s3 store's
    median against the file store's."""
    rows = []
    for job in dict.fromkeys(job for job, _ in times):
        ours, ref = (statistics.median(times[job, n]) for n in ("s3", "file"))
        log(f"{job}: s3 {[round(t, 3) for t in times[job, 's3']]} s,"
            f" file {[round(t, 3) for t in times[job, 'file']]} s")
        rows.append(row(f"{job} of a {SECONDS} s 720p clip, read from s3 (presigned URL)",
                        ms(ours), f"file store {ms(ref)}", ref / ours))
    return rows


def main(rounds: int) -> list[Row]:
    tool = FFmpeg("ffmpeg", ChildRunner(1 << 30, file_size=None, cpus=2), 600)
    with two_stores("derive/") as (tmp, files, s3):
        stores: dict[str, tuple[MediaStore, output.Output]] = {
            "file": (files, output.for_store(files)),
            "s3": (s3, output.for_store(s3, ScratchRoot(tmp / "scratch")))}
        jobs = {name: kinds(tool, store, out) for name, (store, out) in stores.items()}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for kind in jobs["file"]:
                for name in stores:
                    t0 = time.perf_counter()
                    jobs[name][kind]()
                    times.setdefault((kind, name), []).append(time.perf_counter() - t0)
    return ratio_rows(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    standalone(lambda: main(args.rounds), "derive on s3 against the file store")
