"""An upload through ``POST /api/videos`` (raw body) to an API on an s3:// store (a
throwaway SeaweedFS, ``weed mini``, testbed/s3.py), against ``S3Store.put_file`` of the
same file from this process to the same server: what receiving over HTTP costs on top of
the store's own multipart put (api/uploads/to_object.py). Plus the API worker's memory
growth (peak RSS - RSS after a warm-up): a put holds ``(4 + 1) x`` the part size.

The file is random bytes (not a video: no prober runs). ``ROUNDS`` rounds, alternating
the reference put and the upload; the figures are the medians. The clock of the upload
stops at the API's 202, after the object is complete and verified and the row committed.

Run alone: ``.venv/bin/python bench/s3_upload.py [--size-mib 256]``. Not in bench/run.py's
default list (it needs the weed binary of the dev extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, Scratch, row
from bench.upload import make_file, upload, worker_pid
from testbed.s3 import ThrowawayS3
from videodrop.storage.s3store import S3Store

ROUNDS = 3
PART = 16 << 20  # VIDEODROP_S3_PART_SIZE's default
TARGET = 0.5  # the upload at least half the put's speed


def run_once(size: int, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vd-s3upload-") as tmp, \
            ThrowawayS3(Path(tmp) / "weed") as weed:
        server = weed.server
        bucket = server.create_bucket("vdbench")
        for name, value in server.env().items():
            if name.startswith("AWS_"):
                os.environ[name] = value  # the reference put's credentials (boto3's chain)
        store = S3Store(bucket, "ref/", endpoint_url=server.endpoint, part_size=PART)
        env = {"VIDEODROP_MAX_FILE_SIZE": "4GiB", "VIDEODROP_API_WORKERS": "1",
               "VIDEODROP_STORAGE_URL": f"s3://{bucket}/api", **server.env()}
        with Scratch("s3upload", env=env) as scratch:
            src = scratch.root / "big.bin"
            make_file(src, size)
            small = scratch.root / "small.bin"
            make_file(small, 1 << 20)
            system = scratch.system("api")
            host, port = "127.0.0.1", system.port
            _, status, answer = upload(host, port, system.admin_token, small, "warmup.mp4")
            if status != 202:
                raise RuntimeError(f"warm-up upload answered {status}: {answer!r}")
            pid = worker_pid(system.procs["api"].pid)
            rss_before = common.rss_kib(pid)
            times: dict[str, list[float]] = {"put": [], "upload": []}
            for i in range(rounds):
                t0 = time.perf_counter()
                store.put_file(f"ref{i}.bin", src)
                times["put"].append(time.perf_counter() - t0)
                seconds, status, answer = upload(host, port, system.admin_token, src,
                                                 f"big{i}.mp4")
                if status != 202 or answer.get("file_info", {}).get("size") not in (size, None):
                    raise RuntimeError(f"upload answered {status}: {answer!r}")
                times["upload"].append(seconds)
            peak = common.rss_kib(pid, "VmHWM")
            server.remove_bucket(bucket)
        got: dict[str, Any] = {k: common.percentile(v, 50) for k, v in times.items()}
        return {**got, "all": times, "rss_before": rss_before, "peak": peak}


def main(size_mib: int = 256) -> list[Row]:
    size = size_mib << 20
    with common.stage(f"{size_mib} MiB upload to s3"):
        got = run_once(size)
    every = {k: " ".join(f"{x:.2f}" for x in v) for k, v in got["all"].items()}
    common.log(f"seconds per round: upload {every['upload']}; put_file {every['put']}")
    rate, put_rate = (size / 2**20 / got[k] for k in ("upload", "put"))
    ratio = got["put"] / got["upload"]
    growth = (got["peak"] - got["rss_before"]) / 1024
    return [
        row(f"{size_mib} MiB upload, POST /api/videos on s3 (median of {ROUNDS})",
            f"{rate:.0f} MiB/s ({got['upload']:.2f} s)",
            f"S3Store.put_file {put_rate:.0f} MiB/s ({got['put']:.2f} s)", ratio,
            f">= {TARGET}x", ratio >= TARGET),
        row(f"{size_mib} MiB upload on s3: API worker memory growth (peak - before)",
            f"{growth:.1f} MiB", f"5 parts of {PART >> 20} MiB: {5 * PART >> 20} MiB", None,
            "(informative)", None),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    size_arg = parser.parse_args().size_mib
    common.standalone(lambda: main(size_arg), "upload to s3")
