"""``/stream/`` on an s3 media store (issue 20): the API's 307 to a presigned URL
(``VIDEODROP_S3_SERVE=redirect``) and the bytes through the API (``proxy``), each against
ranged GETs straight to the store with a presigned URL, the client the same for all three.

One throwaway SeaweedFS (``weed mini``, testbed/s3.py) holds a 256 MiB object of random
bytes; the catalog has one ready video on it; two APIs run as ``videodrop api`` starts
them (gunicorn, the default workers and threads), one per serving mode. The client is
:data:`PROCESSES` processes of :data:`THREADS` threads (32 connections in all), each a
loop of ``Range: bytes=a-b`` requests for a random 1 MiB-aligned MiB with keep-alive
connections of its own:

* **direct** (the reference): GET the presigned URL (made once per round; it lives 60 s).
* **redirect**: GET ``/stream/{token}/`` → 307 → GET the ``Location`` with the same Range:
  every range costs a token check and a presign, as a client that follows redirects does.
* **proxy**: GET ``/stream/{token}/`` → 206 with the bytes.

The three alternate in short rounds, the order reversed every other round, so a busy
moment of the shared machine hits all alike. Figures are bytes per second of 206 bodies;
targets: redirect ≥ 0.9x direct, proxy ≥ 0.5x direct.

Run alone: ``.venv/bin/python bench/s3_stream.py`` (about 1 min on 2 cores).
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg

from bench import common
from bench.common import Row, Scratch, row
from testbed.s3 import ThrowawayS3
from videodrop.storage.s3store import S3Store

SIZE = 256 * 1024 * 1024
CHUNK = 1024 * 1024
PROCESSES, THREADS = 4, 8  # 32 connections
WARMUP, ROUND, ROUNDS = 2.0, 6.0, 3
TARGETS = {"redirect": 0.9, "proxy": 0.5}
KEY = "videos/bench_s3/big.mp4"


class _Client:
    """One thread's keep-alive connections, one per host:port."""

    def __init__(self) -> None:
        self.conns: dict[str, http.client.HTTPConnection] = {}

    def get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
        """GET ``url``: status, headers (lower-case names), body length. One retry on a
        connection the server closed."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):
            conn = self.conns.get(parts.netloc)
            if conn is None:
                conn = self.conns[parts.netloc] = http.client.HTTPConnection(
                    parts.netloc, timeout=30)
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                got = {k.lower(): v for k, v in resp.getheaders()}
                if got.get("connection", "").lower() == "close":
                    conn.close()
                    del self.conns[parts.netloc]
                return resp.status, got, len(body)
            except (http.client.HTTPException, OSError):
                conn.close()
                del self.conns[parts.netloc]
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _thread(mode: str, url: str, until: float, out: list[int]) -> None:
    client, rng = _Client(), random.Random(os.getpid() * 7919 + threading.get_ident())
    got = errors = requests = 0
    while time.monotonic() < until:
        first = rng.randrange(SIZE // CHUNK) * CHUNK
        headers = {"Range": f"bytes={first}-{first + CHUNK - 1}",
                   "X-Forwarded-For": f"198.51.100.{rng.randint(1, 64)}"}
        try:
            status, head, length = client.get(url, headers)
            if mode == "redirect" and status == 307:
                status, head, length = client.get(head["location"], {"Range": headers["Range"]})
        except (http.client.HTTPException, OSError, KeyError):
            errors += 1
            continue
        requests += 1
        if status == 206 and length == CHUNK:
            got += length
        else:
            errors += 1
    out.extend((got, requests, errors))


def _process(mode: str, url: str, until: float, queue: multiprocessing.Queue) -> None:
    results: list[list[int]] = [[] for _ in range(THREADS)]
    threads = [threading.Thread(target=_thread, args=(mode, url, until, results[i]))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put([sum(r[i] for r in results) for i in range(3)])


def load(mode: str, url: str, seconds: float) -> tuple[float, int, int]:
    """:data:`PROCESSES` x :data:`THREADS` clients for ``seconds``: bytes/s of whole 206
    answers, requests, failures (anything but a 206 of 1 MiB)."""
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = ctx.Queue()
    start = time.monotonic()
    until = start + seconds
    procs = [ctx.Process(target=_process, args=(mode, url, until, queue))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    totals = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    got, requests, errors = (sum(t[i] for t in totals) for i in range(3))
    return got / elapsed, requests, errors


def add_video(database_url: str) -> str:
    token = "bench-s3-" + secrets.token_hex(16)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO videos (source_id, name, status, access_token, original_filename,"
            " origin, stored_path, size, format) VALUES ('bench_s3', 'bench', 'ready',"
            " %s, 'big.mp4', 'upload', %s, %s, 'mp4')", (token, KEY, SIZE))
    return token


def main() -> list[Row]:
    with Scratch("s3-stream") as scratch, ThrowawayS3(scratch.root / "weed") as s3:
        server = s3.server
        bucket = server.create_bucket("vdbench")
        prefix = f"stream-{secrets.token_hex(4)}/"
        for name, value in server.env().items():
            if name.startswith("AWS_"):
                os.environ[name] = value
        store = S3Store(bucket, prefix, endpoint_url=server.endpoint, region=server.region)
        with common.stage("a 256 MiB object of random bytes"):
            source = scratch.root / "big.mp4"
            with source.open("wb") as fh:
                for _ in range(SIZE // CHUNK):
                    fh.write(os.urandom(CHUNK))
            store.put_file(KEY, source)
            source.unlink()
        token = add_video(scratch.database_url)
        env = {**server.env(), "VIDEODROP_STORAGE_URL": f"s3://{bucket}/{prefix}"}
        apis = {mode: scratch.system("api", **env, VIDEODROP_S3_SERVE=mode)
                for mode in ("redirect", "proxy")}
        stream = {mode: f"{api.base_url}/stream/{token}/" for mode, api in apis.items()}
        totals: dict[str, list[float]] = {"direct": [], "redirect": [], "proxy": []}
        failures = dict.fromkeys(totals, 0)
        order = tuple(totals)
        for i in range(ROUNDS + 1):  # round 0 is the warm-up, not counted
            for mode in (order if i % 2 == 0 else order[::-1]):
                url = store.presign(KEY) if mode == "direct" else stream[mode]
                assert url is not None
                rate, requests, errors = load(mode, url, WARMUP if i == 0 else ROUND)
                common.log(f"round {i} {mode}: {rate / 2**20:.0f} MiB/s, {requests} requests,"
                           f" {errors} failed")
                if i:
                    totals[mode].append(rate)
                    failures[mode] += errors
        for api in apis.values():
            api.stop()
    for mode, count in failures.items():
        if count:
            raise RuntimeError(f"{mode}: {count} requests did not get a 206 of 1 MiB")
    mean = {mode: sum(v) / len(v) for mode, v in totals.items()}
    ref = mean["direct"]
    rows = []
    for mode, what in (("redirect", "307 to a presigned URL, then the ranged GET"),
                       ("proxy", "the bytes through the API")):
        ratio = mean[mode] / ref
        rows.append(row(f"s3 store: /stream/ 1 MiB ranges, {PROCESSES * THREADS} conns,"
                        f" VIDEODROP_S3_SERVE={mode} ({what}): bytes/s vs ranged GETs"
                        f" straight to the store (presigned)",
                        f"{mean[mode] / 2**20:.0f} MiB/s", f"{ref / 2**20:.0f} MiB/s", ratio,
                        f">= {TARGETS[mode]}x", ratio >= TARGETS[mode]))
    return rows


if __name__ == "__main__":
    common.standalone(main, "/stream/ on an s3 store")
