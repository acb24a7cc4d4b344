"""Ingest into an s3 store (issue 20): the whole way of a watch-folder file to ``ready``
against the chosen client's own upload, and throughput against the file store.

One throwaway SeaweedFS (``weed mini``, testbed/s3.py) on loopback. The roles run as
``videodrop run`` starts them (ingest, prober; derive off: ``VIDEODROP_DERIVE=``), on a
scratch database each, ``VIDEODROP_SETTLE_SECONDS=0.2`` (the writer here renames a
finished file into the inbox, so nothing is gained by waiting longer).

* **1 GiB file**: a real MP4 (an MPEG-4 part 2 noise clip stream-copied over and over up
  to 1 GiB) renamed into the inbox; the time until its row is ``ready`` (the claim into
  the spool, the probe and the put beside it, the commit) against boto3's own
  ``upload_file`` of the same file to the same server (s3transfer, the store's part size
  and parts in flight). Alternated, :data:`ROUNDS` each; medians. Target ≥ 0.8x.
* **100 clips**: the clips of bench/ingest.py renamed into the inbox at once, the time
  until all are ``ready``, on the s3 store against the same on a file store. Alternated;
  medians. Target ≥ 0.8x.

Run alone: ``.venv/bin/python bench/s3_ingest.py`` (about 3 min on 2 cores).
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg
from boto3.s3.transfer import TransferConfig

from bench import common
from bench.common import CACHE, Row, Scratch, row
from bench.ingest import drop, finished, stage
from testbed.s3 import S3Server, ThrowawayS3

BIG = 1 << 30
ROUNDS = 2
CLIPS = 100
TARGET = 0.8
PART = 16 << 20  # VIDEODROP_S3_PART_SIZE's default
IN_FLIGHT = 4  # S3Store's parts in flight
ENV = {"VIDEODROP_DERIVE": "", "VIDEODROP_SETTLE_SECONDS": "0.2"}


def big_video() -> Path:
    """A 1 GiB MP4 made once into var/bench/cache."""
    path = CACHE / "big-1gib.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    piece, tmp = CACHE / "big-piece.mp4", CACHE / "big.tmp.mp4"
    common.log("making a 1 GiB MP4 with ffmpeg (once)")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=25:duration=10,noise=alls=80:allf=t",
                    "-c:v", "mpeg4", "-q:v", "2", "-g", "50", str(piece)], check=True)
    loops = BIG // piece.stat().st_size + 1
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i",
                    str(piece), "-c", "copy", "-fs", str(BIG), str(tmp)], check=True)
    piece.unlink()
    tmp.rename(path)
    return path


def s3_env(server: S3Server, bucket: str) -> dict[str, str]:
    return {**server.env(), **ENV,
            "VIDEODROP_STORAGE_URL": f"s3://{bucket}/ingest-{secrets.token_hex(4)}/"}


def until_ready(database_url: str, count: int, timeout: float) -> float:
    """Seconds until ``count`` rows are ready (RuntimeError on a failed row or timeout)."""
    t0 = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            ready, failed = finished(conn)
            if failed:
                raise RuntimeError(f"{failed} rows failed")
            if ready >= count:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"only {ready} of {count} ready after {timeout} s")
            time.sleep(0.01)


def ingest(files: list[Path], env: dict[str, str], timeout: float) -> float:
    """Seconds from renaming ``files`` into a fresh system's inbox until all are ready."""
    with Scratch("s3-ingest", env=env) as scratch:
        system = scratch.system("prober", "ingest")
        staged = stage(files, scratch.root / "stage")
        t0 = time.perf_counter()
        drop(staged, system.inbox)
        until_ready(scratch.database_url, len(files), timeout)
        return time.perf_counter() - t0


def client_upload(server: S3Server, bucket: str, path: Path) -> float:
    client = server.client()
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                            max_concurrency=IN_FLIGHT)
    t0 = time.perf_counter()
    client.upload_file(str(path), bucket, f"reference/{secrets.token_hex(4)}.mp4",
                       Config=config)
    return time.perf_counter() - t0


def main() -> list[Row]:
    big = big_video()
    clips = common.clips(CLIPS)
    with Scratch("s3-weed") as holder, ThrowawayS3(holder.root / "weed") as weed:
        server = weed.server
        bucket = server.create_bucket("vdbench")
        ours: list[float] = []
        ref: list[float] = []
        for i in range(ROUNDS):
            with common.stage(f"1 GiB, round {i + 1}"):
                ref.append(client_upload(server, bucket, big))
                ours.append(ingest([big], s3_env(server, bucket), timeout=600))
            common.log(f"1 GiB: boto3 upload_file {ref[-1]:.1f} s, inbox to ready"
                       f" {ours[-1]:.1f} s")
        big_ours, big_ref = statistics.median(ours), statistics.median(ref)
        on_s3: list[float] = []
        on_file: list[float] = []
        for i in range(ROUNDS):
            with common.stage(f"{CLIPS} clips, round {i + 1}"):
                runs = [("file", ENV), ("s3", s3_env(server, bucket))]
                for name, env in (runs if i % 2 == 0 else runs[::-1]):
                    took = ingest(clips, env, timeout=300)
                    (on_s3 if name == "s3" else on_file).append(took)
                    common.log(f"{CLIPS} clips on {name}: {took:.2f} s")
        clips_s3, clips_file = statistics.median(on_s3), statistics.median(on_file)
    big_ratio, clip_ratio = big_ref / big_ours, clips_file / clips_s3
    return [
        row("s3 store: a 1 GiB MP4 from the inbox to ready (settle 0.2 s; claim, probe and"
            " put beside it, commit) vs boto3 upload_file of the same file",
            f"{big_ours:.1f} s ({BIG / big_ours / 2**20:.0f} MiB/s)",
            f"{big_ref:.1f} s ({BIG / big_ref / 2**20:.0f} MiB/s)", big_ratio,
            f">= {TARGET}x", big_ratio >= TARGET),
        row(f"s3 store: ingest throughput, {CLIPS} clips at once (settle 0.2 s) vs the same"
            " on the file store", f"{CLIPS / clips_s3:.1f} clips/s ({clips_s3:.2f} s)",
            f"{CLIPS / clips_file:.1f} clips/s ({clips_file:.2f} s)", clip_ratio,
            f">= {TARGET}x", clip_ratio >= TARGET),
    ]


if __name__ == "__main__":
    common.standalone(main, "ingest into an s3 store")
