"""What an s3 store adds to a watch-folder file's way to ``ready`` (prober/spool.py): the
``put_file`` of the spooled file (SHA-256 and size checked, 16 MiB parts), against the
reference of the same run, the prober's own SHA-256 of the file (which the file store
needs too), and a local copy with ``sync`` (what a copy into a file store on another file
system costs). One throwaway ``weed mini`` (testbed/s3.py) on loopback.

Run alone: ``.venv/bin/python bench/s3_ingest.py [--size-mib 128] [--runs 3]`` (about
half a minute). Not in bench/run.py's default list.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prober.store import sha256_of
from testbed.s3 import ThrowawayS3
from videodrop.storage.s3store import S3Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-s3-ingest-"))
    try:
        spooled = work / "big.bin"
        with spooled.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        size = spooled.stat().st_size
        with ThrowawayS3(work / "weed") as weed:
            bucket = weed.server.create_bucket()
            media = S3Store(bucket, "bench/", client=weed.server.client())
            for run in range(args.runs):
                t0 = time.perf_counter()
                digest = sha256_of(spooled)
                t1 = time.perf_counter()
                media.put_file(f"videos/x/big{run}.bin", spooled, size=size, sha256=digest)
                t2 = time.perf_counter()
                shutil.copyfile(spooled, work / "copy.bin")
                os.sync()
                t3 = time.perf_counter()
                print(f"run {run}: {args.size_mib} MiB  sha256 {t1 - t0:.2f} s (reference)"
                      f"  put_file {t2 - t1:.2f} s ({(t2 - t1) / (t1 - t0):.1f}x)"
                      f"  local copy + sync {t3 - t2:.2f} s ({(t3 - t2) / (t1 - t0):.1f}x)")
            weed.server.remove_bucket(bucket)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
