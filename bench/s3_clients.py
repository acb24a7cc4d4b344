"""Which S3 client the media store uses: boto3, obstore and minio against one throwaway
SeaweedFS server (``weed mini``, testbed/s3.py) in one run, plus videodrop's own
``S3Store.put_file`` (boto3 underneath, with its SHA-256 and Content-MD5 checks).

Each client runs in a child process of its own (its peak RSS is its alone): a 1 GiB
multipart upload from a file (16 MiB parts, 4 in flight where the client lets us say),
``GETS`` ranged GETs of 1 MiB from 32 threads, and ``PRESIGNS`` presigned GET URLs. Rows:
MB/s, GETs/s, presigns/s and peak RSS (MiB); the reference of each row is boto3's.

Run alone: ``.venv/bin/python bench/s3_clients.py [--size-mib 1024]`` (about 1-2 min on
2 cores). Not in bench/run.py's default list.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, log, row, standalone
from testbed.s3 import S3Server, ThrowawayS3
from videodrop.storage.s3store import S3Store

CLIENTS = ("boto3", "obstore", "minio", "videodrop", "videodrop-md5")
PART = 16 << 20
IN_FLIGHT = 4
THREADS = 32
GETS = 1024
PRESIGNS = 2000
MiB = 1 << 20


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _clients(name: str, server: S3Server, bucket: str) -> dict[str, Any]:
    """put(key, path), get(key, start, length) -> bytes, presign(key) -> str for ``name``."""
    host = server.endpoint.removeprefix("http://")
    if name in ("boto3", "videodrop", "videodrop-md5"):
        from boto3.s3.transfer import TransferConfig

        client = server.client(max_pool_connections=THREADS,
                               request_checksum_calculation="when_required",
                               response_checksum_validation="when_required")
        transfer = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                                  max_concurrency=IN_FLIGHT)
        store = S3Store(bucket, endpoint_url=server.endpoint, part_size=PART,
                        max_in_flight=IN_FLIGHT, client=client,
                        checksum="md5" if name.endswith("md5") else "crc32")

        def put(key: str, path: Path) -> Any:
            if name.startswith("videodrop"):
                return store.put_file(key, path)
            return client.upload_file(str(path), bucket, key, Config=transfer)

        return {
            "put": put,
            "get": lambda key, start, length: client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")["Body"].read(),
            "presign": lambda key: client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60),
        }
    if name == "obstore":
        import obstore
        from obstore.store import S3Store as ObS3Store

        ob = ObS3Store(bucket, endpoint=server.endpoint, access_key_id=server.access_key,
                       secret_access_key=server.secret_key, region=server.region,
                       virtual_hosted_style_request=False,
                       client_options={"allow_http": True, "pool_max_idle_per_host": str(THREADS)})
        return {
            "put": lambda key, path: obstore.put(ob, key, Path(path), chunk_size=PART,
                                                 max_concurrency=IN_FLIGHT),
            "get": lambda key, start, length: bytes(obstore.get_range(ob, key, start=start,
                                                                      length=length)),
            "presign": lambda key: obstore.sign(ob, "GET", key, timedelta(seconds=60)),
        }
    if name == "minio":
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(maxsize=THREADS)
        mc = Minio(host, access_key=server.access_key, secret_key=server.secret_key,
                   secure=False, region=server.region, http_client=http)

        def get(key: str, start: int, length: int) -> bytes:
            answer = mc.get_object(bucket, key, offset=start, length=length)
            try:
                return answer.read()
            finally:
                answer.close()
                answer.release_conn()

        return {
            "put": lambda key, path: mc.fput_object(bucket, key, str(path), part_size=PART,
                                                    num_parallel_uploads=IN_FLIGHT),
            "get": get,
            "presign": lambda key: mc.presigned_get_object(bucket, key,
                                                           expires=timedelta(seconds=60)),
        }
    raise ValueError(name)


def measure_one(name: str, server: S3Server, bucket: str, source: Path) -> dict[str, float]:
    """The three measures of one client, in this process."""
    ops = _clients(name, server, bucket)
    size = source.stat().st_size
    key = f"bench/{name}.bin"
    start = time.perf_counter()
    ops["put"](key, source)
    upload = time.perf_counter() - start
    rng = random.Random(7)
    offsets = [rng.randrange(0, size - MiB) for _ in range(GETS)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda o: ops["get"](key, o, MiB), offsets[:THREADS]))  # warm the pool
        start = time.perf_counter()
        got = sum(len(b) for b in pool.map(lambda o: ops["get"](key, o, MiB), offsets))
        gets = time.perf_counter() - start
    assert got == GETS * MiB, got
    start = time.perf_counter()
    for _ in range(PRESIGNS):
        ops["presign"](key)
    presign = time.perf_counter() - start
    return {"upload_mb_s": size / upload / 1e6, "gets_s": GETS / gets,
            "get_mb_s": got / gets / 1e6, "presigns_s": PRESIGNS / presign,
            "peak_rss_mib": _peak_rss_mib()}


def main(size_mib: int = 1024, rounds: int = 1) -> list[Row]:
    """``rounds`` runs of every client, the order rotated each round (the machine's load
    moves); each figure is the median of its rounds."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
    with tempfile.TemporaryDirectory(prefix="vds3bench-") as tmp, \
            ThrowawayS3(Path(tmp) / "weed") as weed:
        log(f"weed mini up in {weed.started_in:.2f} s, RSS {weed.rss_kib()} KiB")
        bucket = weed.server.create_bucket("vdbench")
        source = Path(tmp) / "source.bin"
        with open(source, "wb") as out:
            for _ in range(size_mib):
                out.write(os.urandom(MiB))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": weed.server.access_key,
               "AWS_SECRET_ACCESS_KEY": weed.server.secret_key}
        order = list(CLIENTS)
        for number in range(rounds):
            for name in order[number % len(order):] + order[:number % len(order)]:
                _run_one(name, weed, bucket, source, env=env, runs=runs)
        server_rows = [row("weed mini: start to first signed answer", f"{weed.started_in:.2f} s"),
                       row("weed mini: RSS after the run", f"{(weed.rss_kib() or 0) >> 10} MiB")]
        weed.server.remove_bucket(bucket)
    results = {name: {m: statistics.median(r[m] for r in got) for m in got[0]}
               for name, got in runs.items() if got}
    return _rows(results, size_mib) + server_rows


def _run_one(name: str, weed: ThrowawayS3, bucket: str, source: Path, *, env: dict[str, str],
             runs: dict[str, list[dict[str, float]]]) -> None:
    log(f"{name}: {source.stat().st_size >> 20} MiB upload, {GETS} ranged GETs,"
        f" {PRESIGNS} presigns")
    out = subprocess.run(
        [sys.executable, __file__, "--one", name, "--endpoint", weed.server.endpoint,
         "--bucket", bucket, "--source", str(source)],
        env=env, capture_output=True, text=True, check=False, timeout=600)
    if out.returncode:
        log(f"{name} failed: {out.stderr.strip()[-800:]}")
    else:
        runs[name].append(json.loads(out.stdout))
    weed.server.client().delete_object(Bucket=bucket, Key=f"bench/{name}.bin")


def _rows(results: dict[str, dict[str, float]], size_mib: int) -> list[Row]:
    ref = results["boto3"]
    rows: list[Row] = []
    for measure, unit, label in [("upload_mb_s", "MB/s", f"{size_mib} MiB multipart upload"),
                                 ("gets_s", "GETs/s", f"1 MiB ranged GETs, {THREADS} threads"),
                                 ("presigns_s", "/s", "presigned GET URLs"),
                                 ("peak_rss_mib", "MiB", "peak RSS of the client process")]:
        for name, got in results.items():
            rows.append(row(f"s3 {name}: {label}", f"{got[measure]:.0f} {unit}",
                            f"boto3 {ref[measure]:.0f} {unit}",
                            round(got[measure] / ref[measure], 2)))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--one", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        server = S3Server(args.endpoint, os.environ["AWS_ACCESS_KEY_ID"],
                          os.environ["AWS_SECRET_ACCESS_KEY"])
        print(json.dumps(measure_one(args.one, server, args.bucket, args.source)))
    else:
        standalone(lambda: main(args.size_mib, args.rounds), "S3 clients against weed mini")
