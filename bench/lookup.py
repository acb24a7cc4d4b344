"""Token lookups: ``GET /api/video/{token}/`` over random tokens against a bare Falcon app
answering a constant record, both under the same gunicorn settings.

The API runs as ``videodrop api`` starts it (``api/main.py:gunicorn_argv``, the default
VIDEODROP_API_WORKERS/THREADS) on a scratch database of 10,000 probed-looking rows (the
metadata and raw ffprobe JSON of a real clip, random 256-bit tokens). The reference is
``bare_app()`` below, started with the same gunicorn arguments: one route, the JSON of a
real record from that database, no middleware, no database.

wrk, 32 connections, each request a token drawn at random from the 10,000. After a warm-up
of each, the two alternate in short rounds in the same run. The API's warm-up goes on until
its workers' token caches hold the working set (fewer than 1 % of a round's lookups read
the database, per ``videodrop_api_token_lookups_total``): the steady state of a catalog
whose videos are being read. A cold lookup, one PostgreSQL round trip, is measured by
``bench/catalog.py`` (cache off) and reported in the table as the rate of the first pass.
The API runs with its default request log: a line per request up to
VIDEODROP_REQUEST_LOG_RATE (50) lines a second per worker, the rest of each second summed up
in one line (at this load nearly every request is summed up). The alternative, in the same
rounds: a second API with ``VIDEODROP_REQUEST_LOG_RATE=0``, a line for every request.
Targets: at least 0.8x the
bare app's requests/s, p99 at most 10 ms (reported at 32 connections, where it is mostly
queueing, at 32 connections paced to offer half the bare app's rate, where it is latency
under load, and at 2 connections, where it is the service time).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import falcon
import psycopg
import requests
from psycopg.types.json import Jsonb

from bench import common, wrk
from bench.common import REPO, Row, Scratch, row
from testbed.processes import free_port, stop_process
from testbed.system import token_lookups
from testbed.waits import wait_for
from videodrop.settings import Settings

ROWS = 10_000
CONNECTIONS = 32
LIGHT = 2  # connections of the service-time run
WARMUP, ROUND, ROUNDS = 3.0, 6.0, 3
RPS_TARGET, P99_TARGET_MS = 0.8, 10.0
PACE = 0.5  # the paced run offers this fraction of the bare app's measured requests/s
RECORD_FILE = "VIDEODROP_BENCH_RECORD"  # the bare app's answer, a JSON file


def bare_app() -> falcon.App:
    """The reference: the record a lookup returns, as constant bytes; nothing else."""
    body = Path(os.environ[RECORD_FILE]).read_bytes()

    class Constant:
        def on_get(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
            resp.content_type = falcon.MEDIA_JSON
            resp.data = body

    app = falcon.App()
    app.req_options.strip_url_path_trailing_slash = False
    app.add_route("/api/video/{token}/", Constant())
    app.add_route("/healthz", Constant())
    return app


def probed(clip: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "videodrop", "probe", "--raw", str(clip)],
                         capture_output=True, check=True, cwd=REPO)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def fill(database_url: str, clip: Path) -> list[str]:
    """ROWS ready rows with the metadata and raw ffprobe JSON of ``clip``; their tokens."""
    info = probed(clip)
    raw = info.pop("ffprobe")
    tokens = [secrets.token_urlsafe(32) for _ in range(ROWS)]
    copy_sql = ("COPY videos (source_id, name, status, access_token, original_filename,"
                " origin, stored_path, size, sha256, format, duration, resolution, fps,"
                " codec, audio_codec, metadata, ffprobe) FROM STDIN")
    with psycopg.connect(database_url) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for i, token in enumerate(tokens):
            copy.write_row((f"bench_{i}", f"clip {i}", "ready", token, f"clip_{i}.mp4",
                            "inbox", f"videos/bench_{i}/clip_{i}.mp4", info.get("size"),
                            info.get("sha256"), info.get("format"), info.get("duration"),
                            info.get("resolution"), info.get("fps"), info.get("codec"),
                            info.get("audio_codec"), Jsonb(info), Jsonb(raw)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE videos")
    return tokens


def lua(tokens: list[str]) -> str:
    table = ",".join(f'"{t}"' for t in tokens)
    return f"""
local tokens = {{{table}}}
request = function()
  return wrk.format("GET", "/api/video/" .. tokens[math.random(1, #tokens)] .. "/", client())
end
"""


def paced(script: str, rate: float) -> str:
    """``script`` with a pause before each request, so that CONNECTIONS connections offer
    about ``rate`` requests/s in all (each pause drawn between 0.5 and 1.5 times the mean,
    so the connections do not march in step)."""
    pause_ms = CONNECTIONS / rate * 1000
    return script + f"""
local pause = {pause_ms:.3f}
delay = function()
  return math.floor(pause * (0.5 + math.random()))
end
"""


def warm_caches(base_url: str, url: str, script: str, root: Path, *, limit: float = 90.0,
                enough: float = 0.01) -> None:
    """Rounds of load until under ``enough`` of the lookups of a round read the database."""
    spent = 0.0
    while spent < limit:
        before = token_lookups(base_url)
        wrk.run(url, script, root, connections=CONNECTIONS, seconds=WARMUP)
        spent += WARMUP
        after = token_lookups(base_url)
        hits, misses = (after[k] - before[k] for k in ("cache", "database"))
        common.log(f"warm-up: {misses / max(1.0, hits + misses):.1%} of lookups read the"
                   " database")
        if misses <= enough * (hits + misses):
            return
    raise RuntimeError(f"the token caches did not warm up within {limit:.0f} s")


def start_bare(settings: Settings, record: Path) -> tuple[subprocess.Popen[bytes], str]:
    from api.main import gunicorn_argv  # the API's own gunicorn arguments

    port = free_port()
    argv = gunicorn_argv(settings.with_(bind=f"127.0.0.1:{port}"), [])
    argv[argv.index("api.app:get_app()")] = "bench.lookup:bare_app()"
    env = {**os.environ, RECORD_FILE: str(record), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).ok, timeout=30,
                 what="the bare app to answer")
    except BaseException:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=20)


def main() -> list[Row]:
    wrk.require()
    settings = common.api_settings()
    workers, threads = settings.api_workers, settings.api_threads
    with Scratch("lookup", env={"VIDEODROP_API_WORKERS": str(workers),
                                "VIDEODROP_API_THREADS": str(threads)}) as scratch:
        with common.stage(f"{ROWS} rows"):
            tokens = fill(scratch.database_url, common.clips(1)[0])
        system = scratch.system("api")
        every = scratch.system("api", VIDEODROP_REQUEST_LOG_RATE="0")  # the alternative
        record = requests.get(f"{system.base_url}/api/video/{tokens[0]}/", timeout=5)
        record.raise_for_status()
        (scratch.root / "record.json").write_bytes(record.content)
        bare, bare_url = start_bare(settings, scratch.root / "record.json")
        script = lua(tokens)
        urls = {"api": system.base_url + "/", "bare": bare_url + "/",
                "every": every.base_url + "/"}
        try:
            for name, url in urls.items():
                with common.stage(f"warm-up {name}"):
                    load = wrk.run(url, script, scratch.root, connections=CONNECTIONS,
                                   seconds=WARMUP)
                    if name == "api":
                        cold = load
                    if name != "bare":
                        warm_caches(url.rstrip("/"), url, script, scratch.root)
            backends = wrk.backends(scratch.database_url)
            pids = {"api": wrk.process_tree(system.procs["api"].pid) + backends,
                    "bare": wrk.process_tree(bare.pid),
                    "every": wrk.process_tree(every.procs["api"].pid) + backends}
            rounds: dict[str, list[wrk.Load]] = {}
            results, cpu = wrk.alternate(
                urls, script, scratch.root, pids, rounds=ROUNDS, seconds=ROUND,
                connections=CONNECTIONS, per_round=rounds,
                describe=lambda load: (f"{load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms,"
                                       f" p99 {load.p99_ms:.2f} ms"))
            # Service time without the queue: at 32 connections a request waits for the
            # ones ahead of it (Little: mean latency = 32 / throughput).
            light = {name: wrk.run(url, script, scratch.root, connections=LIGHT, threads=1,
                                   seconds=ROUND) for name, url in urls.items()
                     if name != "every"}
            # The same 32 connections offering half what the bare app can answer: latency
            # under load, without the queue that a closed loop at full speed builds.
            rate = PACE * results["bare"].rps
            calm = {name: wrk.run(url, paced(script, rate), scratch.root,
                                  connections=CONNECTIONS, seconds=ROUND)
                    for name, url in urls.items() if name != "every"}
        finally:
            stop(bare)
    for name, load in results.items():
        if load.errors or load.bad_status:
            raise RuntimeError(f"{name}: {load.errors} socket errors, {load.bad_status} non-2xx")
    api, ref, alt = results["api"], results["bare"], results["every"]
    ratio = api.rps / ref.rps
    # each round's ratio: one slow moment of the VM in one run moves the merged figure
    by_round = [a.rps / b.rps for a, b in zip(rounds["api"], rounds["bare"], strict=True)]
    setup = f"{workers} workers x {threads} threads, {CONNECTIONS} conns, {ROWS} rows"
    return [
        row(f"token lookup requests/s ({setup})", f"{api.rps:.0f}", f"{ref.rps:.0f}", ratio,
            f">= {RPS_TARGET}x", ratio >= RPS_TARGET),
        row(f"token lookup requests/s, ratio of each {ROUND:g} s round (the median in the"
            " ratio column)", ", ".join(f"{r:.2f}x" for r in by_round), "—",
            statistics.median(by_round), "(informative)"),
        row("token lookup requests/s: alternative, VIDEODROP_REQUEST_LOG_RATE=0 (a log line for"
            " every request)", f"{alt.rps:.0f}", f"{ref.rps:.0f}", alt.rps / ref.rps,
            "(informative)"),
        row("token lookup requests/s, cold caches (the first 3 s: most read the database)",
            f"{cold.rps:.0f}", f"{ref.rps:.0f}", cold.rps / ref.rps),
        row(f"token lookup p99 latency, {CONNECTIONS} conns at full speed (a queue: mean"
            " latency = conns / throughput)", f"{api.p99_ms:.2f} ms", f"{ref.p99_ms:.2f} ms",
            api.p99_ms / ref.p99_ms if ref.p99_ms else None),
        row(f"token lookup p99 latency, {CONNECTIONS} conns offering {PACE:g}x the bare app's"
            f" rate ({calm['api'].rps:.0f} vs {calm['bare'].rps:.0f} req/s answered)",
            f"{calm['api'].p99_ms:.2f} ms", f"{calm['bare'].p99_ms:.2f} ms",
            calm["api"].p99_ms / calm["bare"].p99_ms if calm["bare"].p99_ms else None,
            f"<= {P99_TARGET_MS:g} ms", calm["api"].p99_ms <= P99_TARGET_MS),
        row("token lookup p50 latency", f"{api.p50_ms:.2f} ms", f"{ref.p50_ms:.2f} ms",
            api.p50_ms / ref.p50_ms if ref.p50_ms else None),
        row("token lookup: server CPU per request (API: gunicorn + PostgreSQL)",
            f"{cpu['api'] / api.requests * 1e6:.0f} us",
            f"{cpu['bare'] / ref.requests * 1e6:.0f} us",
            (cpu["api"] / api.requests) / (cpu["bare"] / ref.requests)),
        row(f"token lookup p99 latency at {LIGHT} connections", f"{light['api'].p99_ms:.2f} ms",
            f"{light['bare'].p99_ms:.2f} ms", light["api"].p99_ms / light["bare"].p99_ms,
            f"<= {P99_TARGET_MS:g} ms", light["api"].p99_ms <= P99_TARGET_MS),
    ]


if __name__ == "__main__":
    common.standalone(main, "token lookups against a bare Falcon app")
