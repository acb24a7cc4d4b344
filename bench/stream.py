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

Measured in the same rounds, each with nginx in front of the API as ``deploy/nginx.conf``
sets it up (the site file as shipped, with this run's addresses and folders; the same number
of nginx workers as the reference):

* **stream links** (``VIDEODROP_STREAM_LINKS``, ``videodrop/links.py``): nginx answers
  ``/stream/{token}/`` from the token's link without asking the API; the target row.
* **the API alone**: gunicorn answers every range itself (no nginx).
* **offload** (``VIDEODROP_ACCEL_REDIRECT=/protected/``): the API checks the token and
  answers with ``X-Accel-Redirect``, nginx sends the bytes.
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
from testbed.processes import free_port, stop_process
from testbed.system import System
from testbed.waits import wait_for

SIZE = 256 * 1024 * 1024
CHUNK = 1024 * 1024
CONNECTIONS = 32
WARMUP, ROUND, ROUNDS = 3.0, 6.0, 3
TARGET = 0.9

RANGES = f"""
local size, chunk = {SIZE}, {CHUNK}
request = function()
  local first = math.random(0, math.floor(size / chunk) - 1) * chunk
  local last = first + chunk - 1
  return wrk.format("GET", nil, client({{["Range"] = "bytes=" .. first .. "-" .. last}}))
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
    from testbed.nginx import site_for

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
    defaults = common.api_settings()
    workers, threads = defaults.api_workers, defaults.api_threads
    with Scratch("stream", env={"VIDEODROP_API_WORKERS": str(workers),
                                "VIDEODROP_API_THREADS": str(threads)}) as scratch:
        with common.stage("a 256 MiB file of random bytes"):
            media = scratch.root / "media"
            make_file(media / "videos" / "bench_stream" / "big.mp4")
        token = add_video(scratch.database_url, "videos/bench_stream/big.mp4")
        system = scratch.system("api")
        offload = scratch.system("api", VIDEODROP_ACCEL_REDIRECT="/protected/")
        # `videodrop api` makes the link of the video inserted above as it starts
        linked = scratch.system("api", VIDEODROP_STREAM_LINKS=str(scratch.root / "links"))
        nginx, port = start_nginx(scratch.root, media / "videos" / "bench_stream", workers)
        front, front_port = start_front(scratch.root / "front", offload, workers)
        links_front, links_port = start_front(scratch.root / "links-front", linked, workers)
        try:
            urls = {"api": f"{system.base_url}/stream/{token}/",
                    "nginx": f"http://127.0.0.1:{port}/file/big.mp4",
                    "front": f"http://127.0.0.1:{front_port}/stream/{token}/",
                    "links": f"http://127.0.0.1:{links_port}/stream/{token}/"}
            if not any((scratch.root / "links").glob(f"*/{token}.mp4")):
                raise RuntimeError("the API made no stream link at its start")
            for name in ("nginx", "front", "links"):
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
                              + wrk.process_tree(offload.procs["api"].pid)),
                    "links": (wrk.process_tree(links_front.pid) + backends
                              + wrk.process_tree(linked.procs["api"].pid))}
            results, cpu = wrk.alternate(
                urls, RANGES, scratch.root, pids, rounds=ROUNDS, seconds=ROUND,
                connections=CONNECTIONS,
                describe=lambda load: (f"{load.bytes_per_s / 2**20:.0f} MiB/s,"
                                       f" {load.rps:.0f} req/s, p99 {load.p99_ms:.1f} ms"))
        finally:
            stop(nginx)
            stop(front)
            stop(links_front)
    api, ref, alt, links = results["api"], results["nginx"], results["front"], results["links"]
    for name, load in results.items():
        if load.errors or load.bad_status:
            raise RuntimeError(f"{name}: {load.errors} socket errors, {load.bad_status} non-2xx")
    ratio = links.bytes_per_s / ref.bytes_per_s
    setup = f"nginx {workers} workers, both"
    per_request = {name: cpu[name] / load.requests * 1e6 for name, load in results.items()}
    return [
        row(f"stream 1 MiB ranges, {CONNECTIONS} conns: bytes/s, deploy/nginx.conf with"
            f" VIDEODROP_STREAM_LINKS (nginx answers from the token's link; {setup})",
            f"{links.bytes_per_s / 2**20:.0f} MiB/s", f"{ref.bytes_per_s / 2**20:.0f} MiB/s",
            ratio, f">= {TARGET}x", ratio >= TARGET),
        row("stream 1 MiB ranges, stream links: p99 latency", f"{links.p99_ms:.1f} ms",
            f"{ref.p99_ms:.1f} ms", links.p99_ms / ref.p99_ms if ref.p99_ms else None),
        row(f"stream 1 MiB ranges: the API alone, bytes/s (gunicorn {workers} workers x"
            f" {threads} threads)", f"{api.bytes_per_s / 2**20:.0f} MiB/s",
            f"{ref.bytes_per_s / 2**20:.0f} MiB/s", api.bytes_per_s / ref.bytes_per_s,
            "(informative)"),
        row("stream 1 MiB ranges: the API alone, p99 latency", f"{api.p99_ms:.1f} ms",
            f"{ref.p99_ms:.1f} ms", api.p99_ms / ref.p99_ms if ref.p99_ms else None),
        row("stream 1 MiB ranges: the API alone, server CPU per request (gunicorn +"
            " PostgreSQL)", f"{per_request['api']:.0f} us", f"{per_request['nginx']:.0f} us",
            per_request["api"] / per_request["nginx"]),
        row("stream 1 MiB ranges: alternative, nginx in front with VIDEODROP_ACCEL_REDIRECT"
            " (deploy/nginx.conf: the API checks the token, nginx sends the bytes)",
            f"{alt.bytes_per_s / 2**20:.0f} MiB/s", f"{ref.bytes_per_s / 2**20:.0f} MiB/s",
            alt.bytes_per_s / ref.bytes_per_s, "(informative)"),
    ]


if __name__ == "__main__":
    common.standalone(main, "Range streaming against nginx")
