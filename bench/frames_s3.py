"""Frames and clips read from an S3 store (a presigned URL of a throwaway SeaweedFS, ``weed
mini``, on loopback: api/frames/source.py) against the same read from the file store, in
one run: the 60 s 720p H.264 clip of bench/derive_s3.py (GOP 2 s), ``ROUNDS`` rounds
alternating the stores, medians. Per store, as the API worker does it (one
:class:`~api.frames.decoders.Decoders` pool, its child keeping the input open): a frame
at each of ``FRAMES`` seeded random times (the timeline from one ffprobe listing, as
without a packet index), JPEG; an exact clip (stitched) and a copy clip of 4 s. The
ratio is the file store's time over the S3 store's (1.0: no cost).

Run alone: ``.venv/bin/python bench/frames_s3.py [--rounds 3]``. Not in bench/run.py's
default list.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.frames.cut import copy_span, exact_span
from api.frames.decoders import Decoders
from api.frames.extract import Shape
from api.frames.source import Original
from api.frames.stitch import Stitcher
from bench.common import Row, standalone
from bench.derive_s3 import KEY, SECONDS, ratio_rows, two_stores
from videodrop.children import ChildRunner
from videodrop.storage import MediaStore

FRAMES = 20
SEED = 7


def original(store: MediaStore) -> Original:
    path = store.local_path(KEY)
    if path is not None:
        return Original(str(path), path)
    info = store.stat(KEY)
    return Original(KEY, None, store, (info.size, info.etag))


def jobs(store: MediaStore, decoders: Decoders, scratch: Path) -> dict[str, float]:
    """Seconds per job on ``store``."""
    runner = ChildRunner(1 << 30, file_size=None, cpus=2)

    def cutter() -> Stitcher:
        return Stitcher(original(store), ffmpeg="ffmpeg", ffprobe="ffprobe", runner=runner,
                        decoders=decoders, deadline=time.monotonic() + 300)

    took: dict[str, float] = {}
    t0 = time.perf_counter()
    frames = cutter()
    line = frames.timeline(SECONDS)
    rng = random.Random(SEED)
    for t in (rng.uniform(0, SECONDS - 1) for _ in range(FRAMES)):
        frames.picture(line.at(t), Shape(1280), "jpeg")
    took[f"{FRAMES} frames (listing included)"] = time.perf_counter() - t0
    for mode in ("exact", "copy"):
        t0 = time.perf_counter()
        one = cutter()
        line = one.timeline(34.0)
        out = scratch / f"{mode}.mp4"
        if mode == "exact":
            one.exact_clip(line, exact_span(line, 30.3, 34.3), out, None)
        else:
            one.copy(line, copy_span(line, 30.3, 34.3), out, None, container="mov,mp4")
        took[f"clip {mode} 4 s"] = time.perf_counter() - t0
    return took


def main(rounds: int) -> list[Row]:
    with two_stores("frames/") as (tmp, files, s3):
        stores: dict[str, MediaStore] = {"file": files, "s3": s3}
        decoders = {name: Decoders(1 << 30) for name in stores}
        times: dict[tuple[str, str], list[float]] = {}
        try:
            for _ in range(rounds):
                for name, store in stores.items():
                    for job, seconds in jobs(store, decoders[name], tmp).items():
                        times.setdefault((job, name), []).append(seconds)
        finally:
            for pool in decoders.values():
                pool.close()
    return ratio_rows(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    standalone(lambda: main(args.rounds), "frames and clips on s3 against the file store")
