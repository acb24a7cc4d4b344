"""Range streaming: the real API against nginx serving the same file with sendfile.

The API runs as ``videodrop api`` starts it (gunicorn, ``api/main.py:gunicorn_argv``, the
default VIDEODROP_API_WORKERS/THREADS) on a scratch database holding one ready video, a
256 MiB file of random bytes in MEDIA_ROOT (in the page cache for both servers). nginx
runs with a throwaway configuration on a free loopback port: as many worker processes as
gunicorn has, ``sendfile on``, the same file through an ``alias``.

wrk, 32 connections, each request ``Range: bytes=a-b`` for a random 1 MiB-aligned MiB of
the file (206 every time). After a warm-up of each, the two servers alternate in short
rounds in the same run, so a busy moment of the machine hits both alike. The figure is
bytes per second; the target is at least 0.9x nginx's.

The alternative, measured in the same run: nginx in front of the API as
``deploy/nginx.conf`` sets it up (the site file as shipped, with this run's addresses), and
``VIDEODROP_ACCEL_REDIRECT=/protected/``: the API checks the token and answers with
``X-Accel-Redirect``, nginx sends the bytes. Same number of nginx workers as the reference.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg

from bench import common, wrk
from bench.common import Row, Scratch, row
from tests.harness import System, free_port, stop_process, wait_for
from videodrop.settings import Settings

SIZE = 256 * 1024 * 1024
CHUNK = 1024 * 1024
CONNECTIONS = 32
WARMUP, ROUND, ROUNDS = 3.0, 6.0, 3
TARGET = 0.9

RANGES = f"""
local size, chunk = {SIZE}, {CHUNK}
request = function()
  local first = math.random(0, math.floor(size / chunk) - 1) * chunk
  return wrk.format("GET", nil, {{["Range"] = "bytes=" .. first .. "-" .. (first + chunk - 1)}})
end
"""

# What both nginx configurations share: the process settings and the temporary folders.
PROCESS = """
worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
"""
TEMPS = """
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
"""

# The reference: nginx serving the file itself.
NGINX_CONF = PROCESS + """
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;""" + TEMPS + """
    types {{ video/mp4 mp4; }}
    server {{
        listen 127.0.0.1:{port};
        location /file/ {{ alias {folder}/; }}
    }}
}}
"""


def make_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for _ in range(SIZE // CHUNK):
            fh.write(os.urandom(CHUNK))
    path.chmod(0o644)


def add_video(database_url: str, stored_path: str) -> str:
    token = "bench-stream-" + os.urandom(16).hex()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO videos (source_id, name, status, access_token, original_filename,"
            " origin, stored_path, size, format) VALUES ('bench_stream', 'bench', 'ready',"
            " %s, 'big.mp4', 'upload', %s, %s, 'mp4')", (token, stored_path, SIZE))
    return token


# The alternative: nginx in front of the API, the site file as deploy/nginx.conf ships it.
FRONT_CONF = "user {user};" + PROCESS + """
http {{
    default_type application/octet-stream;""" + TEMPS + """
    include {root}/site.conf;
}}
"""


def start_nginx(root: Path, folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, root=root, port=port, folder=folder))
    return _nginx(root, conf), port


def start_front(root: Path, api: System, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """nginx with deploy/nginx.conf (as the tests adapt it) in front of ``api``."""
    from tests.integration.test_api_nginx import site_for

    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.conf").write_text(site_for(api, port, root))
    conf = root / "nginx.conf"
    conf.write_text(FRONT_CONF.format(user=getpass.getuser(), workers=workers, root=root))
    return _nginx(root, conf), port


def _nginx(root: Path, conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["nginx", "-p", str(root), "-e", str(root / "nginx-error.log"),
                             "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=10)


def check_range(url: str) -> None:
    import requests

    got = requests.get(url, headers={"Range": f"bytes={CHUNK}-{2 * CHUNK - 1}"}, timeout=10)
    if got.status_code != 206 or len(got.content) != CHUNK:
        raise RuntimeError(f"{url}: {got.status_code}, {len(got.content)} bytes")


def main() -> list[Row]:
    wrk.require()
    defaults = Settings()
    workers, threads = defaults.api_workers, defaults.api_threads
    with Scratch("stream", env={"VIDEODROP_API_WORKERS": str(workers),
                                "VIDEODROP_API_THREADS": str(threads)}) as scratch:
        with common.stage("a 256 MiB file of random bytes"):
            media = scratch.root / "media"
            make_file(media / "videos" / "bench_stream" / "big.mp4")
        token = add_video(scratch.database_url, "videos/bench_stream/big.mp4")
        system = scratch.system("api")
        offload = scratch.system("api", VIDEODROP_ACCEL_REDIRECT="/protected/")
        nginx, port = start_nginx(scratch.root, media / "videos" / "bench_stream", workers)
        front, front_port = start_front(scratch.root / "front", offload, workers)
        try:
            urls = {"api": f"{system.base_url}/stream/{token}/",
                    "nginx": f"http://127.0.0.1:{port}/file/big.mp4",
                    "front": f"http://127.0.0.1:{front_port}/stream/{token}/"}
            for name in ("nginx", "front"):
                wait_for(lambda n=name: check_range(urls[n]) is None,  # type: ignore[misc]
                         timeout=20, what=f"{name} to answer")
            for url in urls.values():
                check_range(url)
            for name, url in urls.items():
                with common.stage(f"warm-up {name}"):
                    wrk.run(url, RANGES, scratch.root, connections=CONNECTIONS,
                            seconds=WARMUP)
            backends = wrk.backends(scratch.database_url)
            pids = {"api": wrk.process_tree(system.procs["api"].pid) + backends,
                    "nginx": wrk.process_tree(nginx.pid),
                    "front": (wrk.process_tree(front.pid) + backends
                              + wrk.process_tree(offload.procs["api"].pid))}
            results, cpu = wrk.alternate(
                urls, RANGES, scratch.root, pids, rounds=ROUNDS, seconds=ROUND,
                connections=CONNECTIONS,
                describe=lambda load: (f"{load.bytes_per_s / 2**20:.0f} MiB/s,"
                                       f" {load.rps:.0f} req/s, p99 {load.p99_ms:.1f} ms"))
        finally:
            stop(nginx)
            stop(front)
    api, ref, alt = results["api"], results["nginx"], results["front"]
    for name, load in results.items():
        if load.errors or load.bad_status:
            raise RuntimeError(f"{name}: {load.errors} socket errors, {load.bad_status} non-2xx")
    ratio = api.bytes_per_s / ref.bytes_per_s
    setup = f"{workers} workers x {threads} threads vs nginx {workers} workers"
    return [
        row(f"stream 1 MiB ranges, {CONNECTIONS} conns: bytes/s ({setup})",
            f"{api.bytes_per_s / 2**20:.0f} MiB/s", f"{ref.bytes_per_s / 2**20:.0f} MiB/s",
            ratio, f">= {TARGET}x", ratio >= TARGET),
        row("stream 1 MiB ranges: requests/s", f"{api.rps:.0f}", f"{ref.rps:.0f}",
            api.rps / ref.rps),
        row("stream 1 MiB ranges: p99 latency", f"{api.p99_ms:.1f} ms",
            f"{ref.p99_ms:.1f} ms", api.p99_ms / ref.p99_ms if ref.p99_ms else None),
        row("stream 1 MiB ranges: server CPU per request (API: gunicorn + PostgreSQL)",
            f"{cpu['api'] / api.requests * 1e6:.0f} us",
            f"{cpu['nginx'] / ref.requests * 1e6:.0f} us",
            (cpu["api"] / api.requests) / (cpu["nginx"] / ref.requests)),
        row("stream 1 MiB ranges: alternative, nginx in front with VIDEODROP_ACCEL_REDIRECT"
            " (deploy/nginx.conf: the API checks the token, nginx sends the bytes)",
            f"{alt.bytes_per_s / 2**20:.0f} MiB/s", f"{ref.bytes_per_s / 2**20:.0f} MiB/s",
            alt.bytes_per_s / ref.bytes_per_s, "(informative)"),
    ]


if __name__ == "__main__":
    common.standalone(main, "Range streaming against nginx")
