"""A 1 GiB upload through ``POST /api/videos`` (raw body, ``Content-Type: video/mp4``,
``?filename=``; VIDEODROP_MAX_FILE_SIZE raised to 2GiB) against ``cp`` of the same file
on the same disk, and the API worker's memory growth.

The file is 1 GiB of random bytes (not a video: only the upload is measured, so no prober
runs), written once per run into the scratch folder, beside MEDIA_ROOT; everything is
flushed (``sync``) before each timed step so neither inherits the other's dirty pages.
Three rounds, alternating cp, cp + sync and the upload; the figures are the medians.
The client sends the headers and then the file with ``socket.sendfile`` (no copy through
Python), so the client costs next to nothing; the clock stops at the API's 202 answer,
which comes after the API has written, fsynced and renamed the file and committed the row.
``cp`` does not fsync: the second reference row, ``cp`` then ``sync FILE``, is the same
durability as the upload (informative).

Memory: gunicorn runs 1 worker (as the tests' harness does); its ``VmRSS`` is read from
/proc after a 1 MiB warm-up upload, and its ``VmHWM`` (peak RSS) after the big one:
growth = peak after - RSS before.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import common
from bench.common import Row, Scratch, row

SIZE = 1 << 30
ROUNDS = 3
TARGET = 0.5
MEMORY_TARGET_MIB = 32


def make_file(path: Path, size: int) -> None:
    chunk = 16 << 20
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(os.urandom(min(chunk, left)))
            left -= chunk


def upload(host: str, port: int, token: str, path: Path, name: str) -> tuple[float, int, Any]:
    """POST the file as a raw body; (seconds, status, parsed answer)."""
    size = path.stat().st_size
    head = (f"POST /api/videos?filename={name} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: video/mp4\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode()
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=120) as sock, open(path, "rb") as fh:
        sock.sendall(head)
        sock.sendfile(fh)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    seconds = time.perf_counter() - t0
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split()[1]) if status_line else 0
    body = rest.partition(b"\r\n\r\n")[2]
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body[:300]
    return seconds, status, parsed


def worker_pid(master: int) -> int:
    kids = common.children(master)
    if len(kids) != 1:
        raise RuntimeError(f"expected one gunicorn worker under {master}, found {kids}")
    return kids[0]


def cp(src: Path, dst: Path, *, durable: bool) -> float:
    os.sync()
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    if durable:
        subprocess.run(["sync", str(dst)], check=True)
    seconds = time.perf_counter() - t0
    dst.unlink()
    return seconds


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(rounds: int = ROUNDS) -> dict[str, Any]:
    """``rounds`` times, alternating: cp, cp + sync, upload (each after a ``sync``);
    the medians, the worker's memory and its CPU time per upload."""
    with Scratch("upload", env={"VIDEODROP_MAX_FILE_SIZE": "2GiB",
                                "VIDEODROP_API_WORKERS": "1"}) as scratch:
        src = scratch.root / "big.bin"
        with common.stage("upload: writing 1 GiB of random bytes"):
            make_file(src, SIZE)
        small = scratch.root / "small.bin"
        make_file(small, 1 << 20)
        system = scratch.system("api")
        master = system.procs["api"].pid
        host, port = "127.0.0.1", system.port
        seconds, status, _ = upload(host, port, system.admin_token, small, "warmup.mp4")
        if status != 202:
            raise RuntimeError(f"warm-up upload answered {status}")
        pid = worker_pid(master)
        rss_before = common.rss_kib(pid)
        times: dict[str, list[float]] = {"cp": [], "cp_sync": [], "upload": [], "cpu": []}
        for i in range(rounds):
            times["cp"].append(cp(src, scratch.root / "copy.bin", durable=False))
            times["cp_sync"].append(cp(src, scratch.root / "copy.bin", durable=True))
            os.sync()
            cpu0 = cpu_seconds(pid)
            seconds, status, answer = upload(host, port, system.admin_token, src, f"big{i}.mp4")
            times["cpu"].append(cpu_seconds(pid) - cpu0)
            if status != 202:
                raise RuntimeError(f"upload answered {status}: {answer!r}")
            times["upload"].append(seconds)
            stored = system.media_root / answer["file_info"]["filename"]
            if stored.stat().st_size != SIZE:
                raise RuntimeError(f"stored {stored.stat().st_size} bytes, sent {SIZE}")
            stored.unlink()  # (the row stays; nothing probes it)
        rss_after, peak = common.rss_kib(pid), common.rss_kib(pid, "VmHWM")
        got: dict[str, Any] = {k: common.percentile(v, 50) for k, v in times.items()}
        got["all"] = times
        return {**got, "rss_before": rss_before, "rss_after": rss_after, "peak": peak}


def main() -> list[Row]:
    with common.stage("1 GiB upload"):
        got = run_once()
    gib = SIZE / 2**30
    rate, cp_rate, sync_rate = (SIZE / 2**20 / got[k] for k in ("upload", "cp", "cp_sync"))
    growth = (got["peak"] - got["rss_before"]) / 1024
    every = {k: " ".join(f"{x:.2f}" for x in v) for k, v in got["all"].items()}
    common.log(f"seconds per round: upload {every['upload']}; cp {every['cp']};"
               f" cp+sync {every['cp_sync']}; worker CPU per upload {every['cpu']};"
               f" worker RSS {got['rss_before'] / 1024:.1f} → {got['rss_after'] / 1024:.1f} MiB,"
               f" peak {got['peak'] / 1024:.1f} MiB")
    ratio = got["cp"] / got["upload"]
    return [
        row(f"{gib:g} GiB upload, POST /api/videos raw body (median of {ROUNDS})",
            f"{rate:.0f} MiB/s ({got['upload']:.2f} s)",
            f"cp {cp_rate:.0f} MiB/s ({got['cp']:.2f} s)", ratio, f">= {TARGET}x",
            ratio >= TARGET),
        row(f"{gib:g} GiB upload vs cp + sync FILE (same durability)", f"{rate:.0f} MiB/s",
            f"{sync_rate:.0f} MiB/s ({got['cp_sync']:.2f} s)", got["cp_sync"] / got["upload"],
            "(informative)", None),
        row(f"{gib:g} GiB upload: API worker CPU", f"{got['cpu']:.2f} s",
            f"{got['cpu'] / got['upload']:.0%} of the upload's time", None, "(informative)",
            None),
        row("1 GiB upload: API worker memory growth (peak RSS - RSS before)",
            f"{growth:.1f} MiB", f"RSS before {got['rss_before'] / 1024:.0f} MiB", None,
            f"<= {MEMORY_TARGET_MIB} MiB", growth <= MEMORY_TARGET_MIB),
    ]


if __name__ == "__main__":
    common.standalone(main, "1 GiB upload")
